"""Finished DAS / MDAS runs kept on disk, so a stopped learning-rate search resumes where it
stopped instead of training every run again.

One run is one file, ``<store>/lr<lr>.safetensors``: the trained basis's ``state_dict`` as
tensors, and the run's :class:`~hyperdas_tl.baselines.das.config.DASConfig` and
:class:`~hyperdas_tl.baselines.das.train.DASHistory` as JSON in the safetensors metadata (no
pickles). It is written in one atomic rename once the run has finished
(:func:`~hyperdas_tl.atomic_write.write_bytes_atomically`), so a file that exists is a whole
run. Each run seeds its own basis and batch order (nothing draws from torch's global
generator), so a run read back is the run the uninterrupted search would have trained: the same
basis bit for bit and the same history.
"""

import json
import logging
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from hyperdas_tl.atomic_write import write_bytes_atomically
from hyperdas_tl.baselines.das.config import DASConfig
from hyperdas_tl.baselines.das.module import DASIntervention
from hyperdas_tl.baselines.das.train import DASHistory, DASResult

logger = logging.getLogger(__name__)

FORMAT = "hyperdas_tl.das_run/1"
"""The ``format`` metadata entry of a stored run."""


def run_path(store: Path, lr: float) -> Path:
    """The file of the run with learning rate ``lr`` (the float's ``repr``: distinct rates
    never share a file)."""
    return Path(store) / f"lr{float(lr)!r}.safetensors"


def save_run(path: Path, result: DASResult) -> Path:
    """Write ``result`` to ``path`` atomically (creating its folder)."""
    tensors = {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in result.intervention.state_dict().items()
    }
    metadata = {
        "format": FORMAT,
        "config": json.dumps(result.config.to_dict()),
        "history": json.dumps(result.history.to_dict()),
        "d_model": str(result.intervention.subspace.d_model),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomically(path, save_tensors(tensors, metadata=metadata))


def load_run(path: Path, config: DASConfig, d_model: int, device: str = "cpu") -> DASResult:
    """The finished run stored at ``path``, which must have been trained with ``config`` on a
    model of width ``d_model`` (anything else is an error naming the file): its basis frozen on
    ``device``, as :func:`~hyperdas_tl.baselines.das.train.train_captured` returns it."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path} is not a readable stored DAS run: {error}") from error
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a stored DAS run (format {metadata.get('format')!r})")
    stored = DASConfig.from_dict(json.loads(metadata["config"]))
    if stored != config:
        changed = sorted(
            name for name, value in config.to_dict().items() if stored.to_dict()[name] != value
        )
        raise ValueError(
            f"{path} holds a DAS run trained with other settings (differs in {changed}); "
            "delete it to train this run again"
        )
    if int(metadata["d_model"]) != d_model:
        raise ValueError(
            f"{path} holds a basis for d_model={metadata['d_model']}, the model has {d_model}"
        )
    module = DASIntervention(d_model, config.layer, config.k, seed=config.seed)
    module.load_state_dict(load_tensors(path.read_bytes()))
    module = module.to(device).eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    history = DASHistory.from_dict(json.loads(metadata["history"]))
    logger.info("%s: finished run read back (best epoch %s)", path, history.best_epoch)
    return DASResult(intervention=module, config=config, history=history)
