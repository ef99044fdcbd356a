"""What the notebooks share: their two profiles and one HyperDAS checkpoint.

Notebook 2 trains HyperDAS and saves it under ``$HYPERDAS_TL_CACHE/notebooks/<profile>/``;
notebooks 3 and 4 load it from there with :func:`load_or_train` (or train it themselves when it
is missing or was trained with other settings), so CI trains once.

Profiles (chosen by ``$HYPERDAS_TL_PROFILE``):

- ``"small"`` (CI): the ``quick`` run profile of :data:`hyperdas_tl.hyperdas.run.PROFILES`
  (offline GeoNames cities, Country + Continent) cut to 30 training steps, judged teacher
  forced only: a few minutes per notebook on one CPU thread.
- ``"full"``: the ``small`` run profile (400 steps, teacher forced + generation), on real RAVEL
  cities when ``$HYPERDAS_TL_RAVEL`` names the archive, else on the GeoNames cities.
"""

import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from hyperdas_tl.cache import cache_dir
from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.data.examples import InterventionExample
from hyperdas_tl.experiment import ExperimentData, build_experiment_data
from hyperdas_tl.hyperdas.checkpoint import (
    has_checkpoint,
    load_hyperdas,
    read_checkpoint_config,
    save_checkpoint,
)
from hyperdas_tl.hyperdas.config import SELECTION_MODES
from hyperdas_tl.hyperdas.model import HyperDAS, config_for_target
from hyperdas_tl.hyperdas.run import PROFILES, Profile
from hyperdas_tl.hyperdas.selection import read_out
from hyperdas_tl.hyperdas.train import TrainResult, train_hyperdas
from hyperdas_tl.models import load_model, module_device
from hyperdas_tl.target import TargetModel

logger = logging.getLogger(__name__)

PROFILE_ENV_VAR = "HYPERDAS_TL_PROFILE"
NOTEBOOK_PROFILES = ("small", "full")
MODEL_NAME = "smollm2-135m"
SMALL_STEPS = 30


def profile_name_from_env(default: str = "small") -> str:
    """``$HYPERDAS_TL_PROFILE`` (default ``"small"``), validated."""
    name = os.environ.get(PROFILE_ENV_VAR, default)
    if name not in NOTEBOOK_PROFILES:
        raise ValueError(f"{PROFILE_ENV_VAR} must be one of {NOTEBOOK_PROFILES}, got {name!r}")
    return name


def notebook_profile(name: str) -> Profile:
    """The run :class:`~hyperdas_tl.hyperdas.run.Profile` of a notebook profile (module
    docstring)."""
    if name == "small":
        quick = PROFILES["quick"]
        return replace(
            quick,
            hyperdas=quick.hyperdas.with_fields(n_steps=SMALL_STEPS, eval_every=SMALL_STEPS,
                                                val_batches=2),
            eval_modes=("teacher_forced",),
        )  # fmt: skip
    if name == "full":
        small = PROFILES["small"]
        ravel = os.environ.get("HYPERDAS_TL_RAVEL")
        if ravel:
            return replace(small, data=replace(small.data, source="ravel", ravel_path=ravel))
        return small
    raise ValueError(f"notebook profile must be one of {NOTEBOOK_PROFILES}, got {name!r}")


def notebook_dir(name: str) -> Path:
    """``$HYPERDAS_TL_CACHE/notebooks/<profile>/`` (created)."""
    if name not in NOTEBOOK_PROFILES:
        raise ValueError(f"notebook profile must be one of {NOTEBOOK_PROFILES}, got {name!r}")
    return cache_dir("notebooks", name)


@dataclass
class NotebookRun:
    """The target, data and HyperDAS a notebook works on."""

    profile_name: str
    profile: Profile
    target: TargetModel
    data: ExperimentData
    hyperdas: HyperDAS
    checkpoint: Path
    train: TrainResult | None
    """The training run (None when the checkpoint was loaded)."""

    @property
    def loaded(self) -> bool:
        return self.train is None


def _wanted_config(profile: Profile, target: TargetModel) -> dict[str, Any]:
    config = profile.hyperdas.with_fields(target_model=MODEL_NAME, data=profile.data.to_dict())
    return config_for_target(config, target).to_dict()  # what HyperDAS records when built


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def load_or_train(
    profile_name: str,
    *,
    target: TargetModel = None,
    retrain: bool = False,
    show_progress: bool = False,
) -> NotebookRun:
    """Load the profile's HyperDAS checkpoint if one trained with exactly this profile's
    settings exists (and ``retrain`` is False); else train it and save it there."""
    profile = notebook_profile(profile_name)
    target = target if target is not None else load_model(MODEL_NAME)
    data = build_experiment_data(target, profile.data, model_name=MODEL_NAME)
    checkpoint = notebook_dir(profile_name) / "checkpoint"
    wanted = _wanted_config(profile, target)
    if not retrain and has_checkpoint(checkpoint):
        found, _ = read_checkpoint_config(checkpoint)
        if _as_json(found.to_dict()) == _as_json(wanted):
            model = load_hyperdas(checkpoint, target).eval()
            return NotebookRun(profile_name, profile, target, data, model, checkpoint, None)
        logger.info("%s was trained with other settings; training again", checkpoint)
    config = profile.hyperdas.with_fields(target_model=MODEL_NAME, data=profile.data.to_dict())
    model = HyperDAS(target, config)
    train = train_hyperdas(
        model,
        data.batches["train"],
        val_batches=data.batches.get("val_entity"),
        show_progress=show_progress,
    )
    save_checkpoint(checkpoint, model)
    return NotebookRun(profile_name, profile, target, data, model.eval(), checkpoint, train)


@dataclass
class ExampleSelection:
    """One example's selection in every read-out, trimmed to its real tokens (what
    :func:`hyperdas_tl.viz.selection_pattern_html` takes)."""

    read_outs: dict[str, Float[Tensor, "src_pos_plus_null base_pos"]]
    """``{read-out: [src_pos + 1, base_pos]}`` over the prompt tokens, null row last."""
    source_tokens: list[str]
    base_tokens: list[str]
    example: InterventionExample | None


@torch.no_grad()
def example_selection(hyperdas: HyperDAS, batch: InterventionBatch, row: int) -> ExampleSelection:
    """The soft selection of row ``row`` of ``batch`` and its one-to-many / one-to-one
    read-outs (one HyperDAS forward), restricted to the prompt tokens of base and source."""
    if not 0 <= row < len(batch):
        raise ValueError(f"row must be in [0, {len(batch)}), got {row}")
    device = module_device(hyperdas.target)
    batch = batch.to(device)
    soft = hyperdas(batch, "soft").soft_selection
    n_base = int(batch.base_intervenable[row].sum())
    n_source = int(batch.source_intervenable[row].sum())
    tokenizer = hyperdas.target.tokenizer
    base_mask, source_mask = hyperdas.position_masks(batch)
    read_outs = {}
    for mode in SELECTION_MODES:
        weights = read_out(
            soft, mode, base_mask, source_mask, hyperdas.config.architecture.one_to_one_floor
        )[row]
        read_outs[mode] = torch.cat([weights[:n_source], weights[-1:]])[:, :n_base].float().cpu()
    return ExampleSelection(
        read_outs=read_outs,
        source_tokens=[tokenizer.decode([t]) for t in batch.source_ids[row, :n_source].tolist()],
        base_tokens=[tokenizer.decode([t]) for t in batch.base_ids[row, :n_base].tolist()],
        example=batch.examples[row] if batch.examples else None,
    )
