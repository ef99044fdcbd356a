"""HyperDAS checkpoints: a folder of safetensors + JSON, no pickles.

::

    checkpoint/
      config.json              HyperDASConfig (its architecture: target name, layer, k, N, ...;
                               the training run and data settings), the target's config
                               (n_layers, d_model, d_vocab, heads, n_ctx...)
                               and the checkpoint's identity (see below); written last
      weights.safetensors      HyperDAS.state_dict() (never the frozen target), with the
                               identity in its safetensors metadata
      optimizer.safetensors    AdamW state tensors       (training checkpoints only)
      trainer_state.json       step, history, optimiser param groups   (idem)

**Identity.** Every checkpoint records which target it belongs to: the target model's name, a
hash of the target's config (:func:`target_fingerprint`), the layer, ``k`` and ``d_model``,
once in ``config.json`` and once inside ``weights.safetensors``. Loading checks that
``config.json``'s settings, its identity block and the weights' metadata all agree (an edited
``config.json`` that says layer 5 for weights trained at layer 10 is refused, naming the field)
and that the given target matches (a checkpoint of another model says which model it was
trained on instead of failing later on a layer or tensor size).

**Crash safety.** :func:`save_checkpoint` writes a fresh ``checkpoint.tmp/`` (every file
fsynced, ``config.json`` last and by rename, so a ``.tmp`` with a ``config.json`` is complete),
then swaps it in: ``checkpoint -> checkpoint.old``, ``checkpoint.tmp -> checkpoint`` (each an
atomic rename), then deletes ``.old``. A process killed at any point leaves at least one complete
copy; :func:`recover_checkpoint` (run by :func:`has_checkpoint`, every loader and the next save)
finishes or undoes the interrupted swap, keeping the newest complete copy and never deleting the
only one. Two processes must not write the same checkpoint at once (the CLI locks ``--out``,
see :mod:`hyperdas_tl.run_dir`).

Every problem with a checkpoint's files (missing, truncated, invalid JSON, inconsistent) raises
:class:`CheckpointError` (a ``ValueError``) naming the file.
"""

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from hyperdas_tl.atomic_write import fsync_dir, fsync_file
from hyperdas_tl.hyperdas.config import HyperDASConfig
from hyperdas_tl.hyperdas.history import TrainingStep
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.models import module_device
from hyperdas_tl.target import TargetModel

logger = logging.getLogger(__name__)

FORMAT = "hyperdas_tl.hyperdas.checkpoint"
VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Version 1 (no identity) still loads; the identity checks need version 2."""
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_FILE = "trainer_state.json"
TMP_SUFFIX = ".tmp"
OLD_SUFFIX = ".old"
TARGET_CONFIG_FIELDS = (
    "n_layers",
    "d_model",
    "d_vocab",
    "n_heads",
    "d_head",
    "d_mlp",
    "n_key_value_heads",
    "n_ctx",
    "act_fn",
    "positional_embedding_type",
)
"""The target config fields a checkpoint depends on (hashed into its identity). Weight
processing and dtype are left out: they do not change what a HyperDAS checkpoint means."""
IDENTITY_KEYS = ("target_model", "target_config_sha256", "layer", "k", "d_model")
METADATA_PREFIX = "hyperdas_tl."


class CheckpointError(ValueError):
    """A checkpoint's files are missing, unreadable, inconsistent or for another target."""


@dataclass
class TrainerState:
    """Where a training run stands."""

    step: int = 0
    """Optimiser steps completed."""
    history: list[TrainingStep] = field(default_factory=list)
    """One record per completed step (loss parts, and validation accuracy when evaluated)."""


def target_shape(target: TargetModel) -> dict[str, int]:
    """The target dimensions a checkpoint depends on most (width, depth, vocabulary)."""
    return {
        "n_layers": int(target.cfg.n_layers),
        "d_model": int(target.cfg.d_model),
        "d_vocab": int(target.cfg.d_vocab),
    }


def target_fingerprint(target: TargetModel) -> dict[str, Any]:
    """The target's :data:`TARGET_CONFIG_FIELDS` as JSON values (None where the config lacks
    one)."""
    out: dict[str, Any] = {}
    for name in TARGET_CONFIG_FIELDS:
        value = getattr(target.cfg, name, None)
        if value is not None and not isinstance(value, bool | int | float | str):
            value = str(value)
        out[name] = int(value) if isinstance(value, int) and not isinstance(value, bool) else value
    return out


def target_config_hash(fingerprint: dict[str, Any]) -> str:
    """Short sha256 of a :func:`target_fingerprint`."""
    blob = json.dumps(fingerprint, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def checkpoint_identity(config: HyperDASConfig, fingerprint: dict[str, Any]) -> dict[str, str]:
    """What a checkpoint belongs to (:data:`IDENTITY_KEYS`), as strings (safetensors metadata
    holds strings only)."""
    arch = config.architecture
    return {
        "target_model": str(arch.target_model),
        "target_config_sha256": target_config_hash(fingerprint),
        "layer": str(arch.layer),
        "k": str(arch.k),
        "d_model": str(fingerprint["d_model"]),
    }


# ---------------------------------------------------------------------------------------------
# The folder swap and its recovery


def _sibling(directory: Path, suffix: str) -> Path:
    return directory.with_name(directory.name + suffix)


def _is_complete(folder: Path) -> bool:
    """A folder the saver finished: ``config.json`` is written last (by rename), after every
    other file was fsynced."""
    if not ((folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()):
        return False
    return (folder / TRAINER_FILE).is_file() == (folder / OPTIMIZER_FILE).is_file()


def recover_checkpoint(directory: str | Path) -> None:
    """Finish or undo a save that was interrupted (see the module docstring): afterwards
    ``directory`` holds the newest complete copy among ``directory``, ``.tmp`` and ``.old``,
    and neither leftover remains. A no-op (no writes) when there are no leftovers."""
    directory = Path(directory)
    tmp, old = _sibling(directory, TMP_SUFFIX), _sibling(directory, OLD_SUFFIX)
    if not tmp.exists() and not old.exists():
        return
    if _is_complete(tmp):  # the newest copy: the swap had not finished
        if directory.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(directory, old)
        os.replace(tmp, directory)
        logger.warning("%s: finished the swap of an interrupted checkpoint save", directory)
    elif tmp.exists():  # a save killed while writing: the previous copy stands
        shutil.rmtree(tmp)
        logger.warning("%s: removed an incomplete checkpoint save (%s)", directory, tmp.name)
    if not directory.exists() and _is_complete(old):
        os.replace(old, directory)
        logger.warning("%s: restored the checkpoint from %s", directory, old.name)
    if old.exists():
        shutil.rmtree(old)
    fsync_dir(directory.parent)


def has_checkpoint(directory: str | Path) -> bool:
    """Whether ``directory`` holds a HyperDAS checkpoint (after :func:`recover_checkpoint`, so
    a copy left as ``.tmp``/``.old`` by a killed save counts)."""
    directory = Path(directory)
    recover_checkpoint(directory)
    return (directory / CONFIG_FILE).is_file() and (directory / WEIGHTS_FILE).is_file()


def _write_json(path: Path, payload: Any, **dump_kwargs: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(payload, **dump_kwargs))
        handle.flush()
        os.fsync(handle.fileno())


def save_checkpoint(
    directory: str | Path,
    model: HyperDAS,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    trainer_state: TrainerState | None = None,
) -> Path:
    """Write ``model`` (and, for training checkpoints, optimiser + trainer state) crash-safely
    (see the module docstring)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    recover_checkpoint(directory)  # never lose the only complete copy of an earlier crash
    tmp, old = _sibling(directory, TMP_SUFFIX), _sibling(directory, OLD_SUFFIX)
    fingerprint = target_fingerprint(model.target)
    identity = checkpoint_identity(model.config, fingerprint)
    metadata = {"format": "pt", **{METADATA_PREFIX + k: v for k, v in identity.items()}}
    try:
        tmp.mkdir()
        weights = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(weights, tmp / WEIGHTS_FILE, metadata=metadata)
        fsync_file(tmp / WEIGHTS_FILE)
        if optimizer is not None:
            tensors, groups = _flatten_optimizer(optimizer.state_dict())
            save_file(tensors, tmp / OPTIMIZER_FILE, metadata={"format": "pt"})
            fsync_file(tmp / OPTIMIZER_FILE)
            state = trainer_state or TrainerState()
            history = [record.to_dict() for record in state.history]
            trainer = {"step": state.step, "history": history, "param_groups": groups}
            _write_json(tmp / TRAINER_FILE, trainer, indent=2)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "config": model.config.to_dict(),
            "target": fingerprint,
            "identity": identity,
        }
        partial = tmp / (CONFIG_FILE + ".partial")
        _write_json(partial, meta, indent=2, sort_keys=True)
        os.replace(partial, tmp / CONFIG_FILE)  # from here on the copy in tmp is complete
        fsync_dir(tmp)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError | SafetensorError):
            raise CheckpointError(f"could not write the checkpoint {tmp} ({error})") from error
        raise
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    fsync_dir(directory.parent)
    if old.exists():
        shutil.rmtree(old)
    logger.info("Saved HyperDAS checkpoint to %s", directory)
    return directory


# ---------------------------------------------------------------------------------------------
# Reading and checking


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: not a complete HyperDAS checkpoint")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from error


def _read_safetensors(path: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: not a complete HyperDAS checkpoint")
    try:
        return load_file(path, device=device)
    except (SafetensorError, OSError, RuntimeError) as error:
        raise CheckpointError(f"{path} is truncated or corrupt ({error})") from error


def read_weights_identity(directory: str | Path) -> dict[str, str] | None:
    """The identity stored in ``weights.safetensors``'s metadata (None for version-1 files);
    reads the header only."""
    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: not a complete HyperDAS checkpoint")
    try:
        with safe_open(path, "pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, RuntimeError) as error:
        raise CheckpointError(f"{path} is truncated or corrupt ({error})") from error
    found = {
        k[len(METADATA_PREFIX) :]: v for k, v in metadata.items() if k.startswith(METADATA_PREFIX)
    }
    return found or None


def _read_meta(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no HyperDAS checkpoint at {directory} ({CONFIG_FILE} missing)")
    meta = _read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path} is not a HyperDAS checkpoint (format {found!r})")
    if meta.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} has checkpoint version {meta.get('version')}, expected one of "
            f"{READABLE_VERSIONS}"
        )
    for key in ("config", "target"):
        if not isinstance(meta.get(key), dict):
            raise CheckpointError(f"{path} has no {key!r} section")
    return meta


def read_checkpoint_config(directory: str | Path) -> tuple[HyperDASConfig, dict[str, Any]]:
    """The config and target config recorded in a checkpoint."""
    directory = Path(directory)
    recover_checkpoint(directory)
    meta = _read_meta(directory)
    try:
        config = HyperDASConfig.from_dict(meta["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{directory / CONFIG_FILE}: invalid config ({error})") from error
    return config, meta["target"]


def check_checkpoint_consistent(directory: str | Path) -> HyperDASConfig:
    """Raise :class:`CheckpointError` unless ``config.json``'s settings, its identity block and
    the identity inside ``weights.safetensors`` agree (version-1 checkpoints have no identity
    and pass)."""
    directory = Path(directory)
    config, target = read_checkpoint_config(directory)
    meta = _read_meta(directory)
    weights_identity = read_weights_identity(directory)
    if meta["version"] < 2 or weights_identity is None:
        return config
    sources = {
        f"{CONFIG_FILE} (its settings)": checkpoint_identity(config, target),
        f"{CONFIG_FILE} (its identity block)": meta.get("identity") or {},
        WEIGHTS_FILE: weights_identity,
    }
    reference_name, reference = WEIGHTS_FILE, weights_identity
    for key in IDENTITY_KEYS:
        for name, identity in sources.items():
            if name == reference_name or identity.get(key) == reference.get(key):
                continue
            raise CheckpointError(
                f"checkpoint {directory} is inconsistent: {name} says {key}={identity.get(key)} "
                f"but {WEIGHTS_FILE} was saved with {key}={reference.get(key)}; the config was "
                "edited or the files come from different checkpoints (restore the original "
                f"{CONFIG_FILE} or retrain)"
            )
    return config


def check_target_matches(directory: str | Path, target: TargetModel) -> HyperDASConfig:
    """Raise ``ValueError`` unless the checkpoint is consistent and ``target`` has the config
    it was trained on (the message names the model and the fields that differ)."""
    config = check_checkpoint_consistent(directory)
    _, recorded = read_checkpoint_config(directory)
    actual = target_fingerprint(target)
    arch = config.architecture
    differ = [k for k in TARGET_CONFIG_FIELDS if k in recorded and recorded[k] != actual[k]]
    target_name = getattr(target.cfg, "model_name", None)
    if differ:
        was = ", ".join(f"{k}={recorded[k]}" for k in differ)
        has = ", ".join(f"{k}={actual[k]}" for k in differ)
        raise CheckpointError(
            f"checkpoint {directory} was trained on model {arch.target_model!r} with {was}, "
            f"but the given target ({target_name!r}) has {has}; load the same target model "
            f"(layer {arch.layer}, d_model {recorded['d_model']})"
        )
    if isinstance(target_name, str) and target_name != arch.target_model:
        logger.warning(
            "checkpoint %s was trained on model %r; the given target is %r (same architecture)",
            directory,
            arch.target_model,
            target_name,
        )
    return config


def load_hyperdas(directory: str | Path, target: TargetModel) -> HyperDAS:
    """A :class:`HyperDAS` on ``target`` with the checkpoint's config and weights (exact)."""
    config = check_target_matches(directory, target)
    model = HyperDAS(target, config)
    load_weights(directory, model)
    return model


def load_weights(directory: str | Path, model: HyperDAS) -> None:
    """Load a checkpoint's weights into an existing model with the same architecture."""
    directory = Path(directory)
    config = check_target_matches(directory, model.target)
    saved, built = config.weight_fields(), model.config.weight_fields()
    for name, value in saved.items():
        if value != built[name]:
            raise ValueError(
                f"checkpoint {directory} has {name}={value!r} but the model has "
                f"{name}={built[name]!r}"
            )
    device = module_device(model)
    path = directory / WEIGHTS_FILE
    weights = _read_safetensors(path, device=str(device))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not fit the model: missing tensors {missing[:3]}, unexpected tensors "
            f"{unexpected[:3]}"
        )
    for name, tensor in weights.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise CheckpointError(
                f"{path}: tensor {name} has shape {tuple(tensor.shape)} but the model (layer "
                f"{model.layer}, k={model.k}) expects {tuple(expected[name].shape)}"
            )
    model.load_state_dict(weights, strict=True)


def check_training_files(directory: str | Path) -> None:
    """Raise :class:`CheckpointError` unless the checkpoint holds a readable training state
    (``trainer_state.json`` parses, ``optimizer.safetensors``'s header reads)."""
    directory = Path(directory)
    if not (directory / TRAINER_FILE).is_file():
        raise CheckpointError(
            f"{directory} holds no training state ({TRAINER_FILE} missing): it was saved "
            "without the optimiser and cannot be resumed"
        )
    trainer = _read_json(directory / TRAINER_FILE)
    if not isinstance(trainer, dict) or not {"step", "history", "param_groups"} <= set(trainer):
        raise CheckpointError(f"{directory / TRAINER_FILE} lacks step / history / param_groups")
    path = directory / OPTIMIZER_FILE
    try:
        with safe_open(path, "pt") as handle:
            handle.keys()
    except (SafetensorError, OSError, RuntimeError) as error:
        raise CheckpointError(f"{path} is missing, truncated or corrupt ({error})") from error


def load_training_state(directory: str | Path, optimizer: torch.optim.Optimizer) -> TrainerState:
    """Restore ``optimizer`` from a training checkpoint and return the trainer state."""
    directory = Path(directory)
    recover_checkpoint(directory)
    if not (directory / TRAINER_FILE).is_file():
        raise FileNotFoundError(f"{directory} holds no training state ({TRAINER_FILE} missing)")
    trainer = _read_json(directory / TRAINER_FILE)
    # On CPU: load_state_dict moves moment tensors to their parameters' device and keeps
    # "step" where AdamW expects it.
    tensors = _read_safetensors(directory / OPTIMIZER_FILE, device="cpu")
    try:
        optimizer.load_state_dict(_unflatten_optimizer(tensors, trainer["param_groups"]))
        history = [TrainingStep.from_dict(record) for record in trainer["history"]]
        return TrainerState(step=int(trainer["step"]), history=history)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"{directory / TRAINER_FILE} / {OPTIMIZER_FILE} do not fit this model's optimiser "
            f"({type(error).__name__}: {error})"
        ) from error


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
