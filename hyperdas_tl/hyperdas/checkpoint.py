"""HyperDAS checkpoints: a folder of safetensors + JSON, no pickles.

::

    checkpoint/
      config.json              HyperDASConfig (target name, layer, k, N, data settings, ...)
                               + the target's shape (n_layers, d_model, d_vocab)
      weights.safetensors      HyperDAS.state_dict() (never the frozen target)
      optimizer.safetensors    AdamW state tensors       (training checkpoints only)
      trainer_state.json       step, history, optimiser param groups   (idem)

A checkpoint is written to a temporary sibling folder and swapped in, so a run killed while
saving leaves the previous checkpoint intact. :func:`load_hyperdas` refuses a target whose
width, depth or vocabulary does not match the one the checkpoint was trained on.
"""

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from hyperdas_tl.hyperdas.config import HyperDASConfig
from hyperdas_tl.hyperdas.model import HyperDAS

logger = logging.getLogger(__name__)

FORMAT = "hyperdas_tl.hyperdas.checkpoint"
VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_FILE = "trainer_state.json"
ARCHITECTURE_FIELDS = (
    "target_model",
    "layer",
    "k",
    "n_hypernet_layers",
    "state_routing",
    "n_selection_heads",
    "null_init_weight",
    "skip_attention_sink",
    "selection_score",
    "train_embedding",
    "seed",
)


@dataclass
class TrainerState:
    """Where a training run stands."""

    step: int = 0
    """Optimiser steps completed."""
    history: list[dict[str, int | float]] = field(default_factory=list)
    """One record per completed step (loss parts, and validation accuracy when evaluated)."""


def target_shape(target: nn.Module) -> dict[str, int]:
    """The target dimensions a checkpoint depends on."""
    return {
        "n_layers": int(target.cfg.n_layers),
        "d_model": int(target.cfg.d_model),
        "d_vocab": int(target.cfg.d_vocab),
    }


def has_checkpoint(directory: str | Path) -> bool:
    """Whether ``directory`` holds a HyperDAS checkpoint."""
    directory = Path(directory)
    return (directory / CONFIG_FILE).is_file() and (directory / WEIGHTS_FILE).is_file()


def save_checkpoint(
    directory: str | Path,
    model: HyperDAS,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    trainer_state: TrainerState | None = None,
) -> Path:
    """Write ``model`` (and, for training checkpoints, optimiser + trainer state) atomically."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(directory.name + ".tmp")
    old = directory.with_name(directory.name + ".old")
    for stale in (tmp, old):
        if stale.exists():
            shutil.rmtree(stale)
    tmp.mkdir()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "target": target_shape(model.target),
    }
    (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    weights = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(weights, tmp / WEIGHTS_FILE, metadata={"format": "pt"})
    if optimizer is not None:
        tensors, groups = _flatten_optimizer(optimizer.state_dict())
        save_file(tensors, tmp / OPTIMIZER_FILE, metadata={"format": "pt"})
        state = trainer_state or TrainerState()
        trainer = {"step": state.step, "history": state.history, "param_groups": groups}
        (tmp / TRAINER_FILE).write_text(json.dumps(trainer, indent=2))
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    if old.exists():
        shutil.rmtree(old)
    logger.info("Saved HyperDAS checkpoint to %s", directory)
    return directory


def read_checkpoint_config(directory: str | Path) -> tuple[HyperDASConfig, dict[str, int]]:
    """The config and target shape recorded in a checkpoint."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no HyperDAS checkpoint at {directory} ({CONFIG_FILE} missing)")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a HyperDAS checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path} has checkpoint version {meta.get('version')}, expected {VERSION}")
    return HyperDASConfig.from_dict(meta["config"]), meta["target"]


def check_target_matches(directory: str | Path, target: nn.Module) -> HyperDASConfig:
    """Raise ``ValueError`` unless ``target`` has the shape the checkpoint was trained on."""
    config, recorded = read_checkpoint_config(directory)
    actual = target_shape(target)
    for key in ("d_model", "n_layers", "d_vocab"):
        if recorded[key] != actual[key]:
            raise ValueError(
                f"checkpoint {directory} was trained on {config.target_model!r} with "
                f"{key}={recorded[key]}, but the given target has {key}={actual[key]}; load "
                f"the same target model (layer {config.layer}, d_model {recorded['d_model']})"
            )
    return config


def load_hyperdas(directory: str | Path, target: nn.Module) -> HyperDAS:
    """A :class:`HyperDAS` on ``target`` with the checkpoint's config and weights (exact)."""
    config = check_target_matches(directory, target)
    model = HyperDAS(target, config)
    load_weights(directory, model)
    return model


def load_weights(directory: str | Path, model: HyperDAS) -> None:
    """Load a checkpoint's weights into an existing model with the same architecture."""
    config = check_target_matches(directory, model.target)
    for name in ARCHITECTURE_FIELDS:
        if getattr(config, name) != getattr(model.config, name):
            raise ValueError(
                f"checkpoint {directory} has {name}={getattr(config, name)!r} but the model has "
                f"{name}={getattr(model.config, name)!r}"
            )
    device = next(model.parameters()).device
    weights = load_file(Path(directory) / WEIGHTS_FILE, device=str(device))
    model.load_state_dict(weights, strict=True)


def load_training_state(directory: str | Path, optimizer: torch.optim.Optimizer) -> TrainerState:
    """Restore ``optimizer`` from a training checkpoint and return the trainer state."""
    directory = Path(directory)
    if not (directory / TRAINER_FILE).is_file():
        raise FileNotFoundError(f"{directory} holds no training state ({TRAINER_FILE} missing)")
    trainer = json.loads((directory / TRAINER_FILE).read_text())
    # On CPU: load_state_dict moves moment tensors to their parameters' device and keeps
    # "step" where AdamW expects it.
    tensors = load_file(directory / OPTIMIZER_FILE, device="cpu")
    optimizer.load_state_dict(_unflatten_optimizer(tensors, trainer["param_groups"]))
    return TrainerState(step=int(trainer["step"]), history=list(trainer["history"]))


def _flatten_optimizer(
    state_dict: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    tensors: dict[str, torch.Tensor] = {}
    for index, state in state_dict["state"].items():
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                value = torch.tensor(value)
            tensors[f"state.{index}.{key}"] = value.detach().contiguous().clone()
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()}
        for group in state_dict["param_groups"]
    ]
    return tensors, groups


def _unflatten_optimizer(
    tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]
) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    param_groups = [
        {k: (tuple(v) if k == "betas" else v) for k, v in group.items()} for group in groups
    ]
    return {"state": state, "param_groups": param_groups}
