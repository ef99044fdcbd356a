"""HyperDAS (Sun et al., ICLR 2025) on a frozen TransformerLens target.

- :class:`HyperDASArchitecture`, :class:`HyperDASTraining` and their composition
  :class:`HyperDASConfig` (``config.py``): what is saved with the weights, what drives a run.
- :class:`HyperDAS` (``model.py``): hypernetwork (``hypernetwork.py``), position selection
  (``selection.py``) and Householder subspace (``subspace.py``) over the target; its forward
  returns a :class:`HyperDASOutput`.
- :func:`train_hyperdas` (``train.py``) with the loss of ``loss.py``; one
  :class:`TrainingStep` (``history.py``) per optimiser step.
- :func:`save_checkpoint` / :func:`load_hyperdas` (``checkpoint.py``).

The names below are imported on first use, so ``hyperdas_tl.hyperdas.config`` (what the command
line builds its options from) loads without torch.
"""

from hyperdas_tl.lazy_exports import lazy_exports

_EXPORTS = {
    "TrainerState": "hyperdas_tl.hyperdas.checkpoint",
    "load_hyperdas": "hyperdas_tl.hyperdas.checkpoint",
    "load_training_state": "hyperdas_tl.hyperdas.checkpoint",
    "save_checkpoint": "hyperdas_tl.hyperdas.checkpoint",
    "SELECTION_MODES": "hyperdas_tl.hyperdas.config",
    "HyperDASArchitecture": "hyperdas_tl.hyperdas.config",
    "HyperDASConfig": "hyperdas_tl.hyperdas.config",
    "HyperDASTraining": "hyperdas_tl.hyperdas.config",
    "default_k": "hyperdas_tl.hyperdas.config",
    "Hypernetwork": "hyperdas_tl.hyperdas.hypernetwork",
    "HyperDASLoss": "hyperdas_tl.hyperdas.loss",
    "hyperdas_loss": "hyperdas_tl.hyperdas.loss",
    "sparsity_weight": "hyperdas_tl.hyperdas.loss",
    "HyperDAS": "hyperdas_tl.hyperdas.model",
    "HyperDASOutput": "hyperdas_tl.hyperdas.model",
    "TargetStates": "hyperdas_tl.hyperdas.model",
    "PositionSelection": "hyperdas_tl.hyperdas.selection",
    "read_out": "hyperdas_tl.hyperdas.selection",
    "HouseholderSubspace": "hyperdas_tl.hyperdas.subspace",
    "TrainingStep": "hyperdas_tl.hyperdas.history",
    "Accuracy": "hyperdas_tl.hyperdas.train",
    "NonFiniteLossError": "hyperdas_tl.hyperdas.train",
    "TrainResult": "hyperdas_tl.hyperdas.train",
    "teacher_forced_accuracy": "hyperdas_tl.hyperdas.train",
    "train_hyperdas": "hyperdas_tl.hyperdas.train",
}

__all__ = sorted(_EXPORTS)


_, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
