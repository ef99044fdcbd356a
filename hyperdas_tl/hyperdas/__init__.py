"""HyperDAS (Sun et al., ICLR 2025) on a frozen TransformerLens target.

- :class:`HyperDASConfig` (``config.py``): architecture + training settings.
- :class:`HyperDAS` (``model.py``): hypernetwork (``hypernetwork.py``), position selection
  (``selection.py``) and Householder subspace (``subspace.py``) over the target; its forward
  returns a :class:`HyperDASOutput`.
- :func:`train_hyperdas` (``train.py``) with the loss of ``loss.py``.
- :func:`save_checkpoint` / :func:`load_hyperdas` (``checkpoint.py``).
"""

from hyperdas_tl.hyperdas.checkpoint import (
    TrainerState,
    load_hyperdas,
    load_training_state,
    save_checkpoint,
)
from hyperdas_tl.hyperdas.config import SELECTION_MODES, HyperDASConfig, default_k
from hyperdas_tl.hyperdas.hypernetwork import Hypernetwork
from hyperdas_tl.hyperdas.loss import HyperDASLoss, hyperdas_loss, sparsity_weight
from hyperdas_tl.hyperdas.model import HyperDAS, HyperDASOutput, TargetStates
from hyperdas_tl.hyperdas.selection import PositionSelection, read_out
from hyperdas_tl.hyperdas.subspace import HouseholderSubspace
from hyperdas_tl.hyperdas.train import (
    Accuracy,
    NonFiniteLossError,
    TrainResult,
    teacher_forced_accuracy,
    train_hyperdas,
)

__all__ = [
    "SELECTION_MODES",
    "Accuracy",
    "HouseholderSubspace",
    "HyperDAS",
    "HyperDASConfig",
    "HyperDASLoss",
    "HyperDASOutput",
    "Hypernetwork",
    "NonFiniteLossError",
    "PositionSelection",
    "TargetStates",
    "TrainResult",
    "TrainerState",
    "default_k",
    "hyperdas_loss",
    "load_hyperdas",
    "load_training_state",
    "read_out",
    "save_checkpoint",
    "sparsity_weight",
    "teacher_forced_accuracy",
    "train_hyperdas",
]
