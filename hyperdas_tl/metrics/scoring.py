"""The one scoring loop: :func:`evaluate_interventions` judges interventions on every batch in
every mode of an :class:`EvalConfig`, each batch by all of them in turn, and returns an
:class:`~hyperdas_tl.metrics.result.EvalResult` per intervention; :func:`evaluate` is that loop
for one intervention."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from jaxtyping import Bool
from torch import Tensor
from tqdm.auto import tqdm

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.metrics.interventions import Intervention
from hyperdas_tl.metrics.judging import (
    JUDGE_MODES,
    JudgeMode,
    judge_generation,
    judge_teacher_forced,
)
from hyperdas_tl.metrics.result import EvalResult
from hyperdas_tl.metrics.scores import Judgement, example_id, summarise
from hyperdas_tl.models import module_device
from hyperdas_tl.target import TargetModel


@dataclass
class EvalConfig:
    """How :func:`evaluate` judges."""

    modes: tuple[JudgeMode, ...] = JUDGE_MODES
    """Judging modes to run (each scored separately)."""
    max_label_tokens: int = 3
    """Teacher forcing: how many leading label tokens must all match (HyperDAS uses 3)."""
    max_new_tokens: int = 8
    """Generation: tokens generated per prompt (the label must fit in them to match)."""
    show_progress: bool = True
    """Show a tqdm bar over batches."""

    def __post_init__(self) -> None:
        self.modes = tuple(self.modes)
        if not self.modes:
            raise ValueError("modes must name at least one judging mode")
        unknown = [m for m in self.modes if m not in JUDGE_MODES]
        if unknown:
            raise ValueError(f"unknown judging modes {unknown}; choose from {JUDGE_MODES}")
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes repeat: {self.modes}")
        if not 1 <= self.max_label_tokens:
            raise ValueError(f"max_label_tokens must be >= 1, got {self.max_label_tokens}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "modes": list(self.modes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalConfig":
        return cls(**{**data, "modes": tuple(data["modes"])})


def judge_batch(
    model: TargetModel,
    batch: InterventionBatch,
    intervention: Intervention,
    mode: JudgeMode,
    config: EvalConfig,
) -> Bool[Tensor, " batch"]:
    """Per-row verdicts of ``batch`` in one judging mode."""
    if mode == "teacher_forced":
        return judge_teacher_forced(model, batch, intervention, config.max_label_tokens)
    if mode == "generation":
        return judge_generation(model, batch, intervention, config.max_new_tokens)
    raise ValueError(f"unknown judging mode {mode!r}; choose from {JUDGE_MODES}")


def batch_judgements(
    batch: InterventionBatch, mode: JudgeMode, correct: Bool[Tensor, " batch"]
) -> list[Judgement]:
    """Attach each row's grouping (from ``batch.examples``) to its verdict."""
    if len(batch.examples) != len(batch):
        raise ValueError(
            f"the batch carries {len(batch.examples)} examples for {len(batch)} rows; scoring "
            "groups rows by their InterventionExample (domain, target attribute, split)"
        )
    judgements = []
    for example, is_cause, verdict in zip(
        batch.examples, batch.is_cause.tolist(), correct.tolist(), strict=True
    ):
        if example.is_cause != bool(is_cause):
            raise ValueError(f"batch.is_cause disagrees with example kind {example.kind!r}")
        judgements.append(
            Judgement(
                domain=example.domain,
                attribute=example.target_attribute,
                split=example.split,
                kind=example.kind,
                mode=mode,
                correct=bool(verdict),
                example_id=example_id(example),
                base_entity=example.base_entity,
            )
        )
    return judgements


@torch.no_grad()
def evaluate(
    model: TargetModel,
    batches: Iterable[InterventionBatch],
    intervention: Intervention,
    *,
    method: str,
    setting: str = "default",
    config: EvalConfig | None = None,
    metadata: dict[str, Any] | None = None,
) -> EvalResult:
    """Score ``intervention`` on every batch in every judging mode of ``config``.

    Batches are moved to the model's device; the model is left in eval mode and nothing random
    runs, so the result is deterministic.
    """
    results = evaluate_interventions(
        model, batches, {method: intervention}, setting=setting, config=config, metadata=metadata
    )
    return results[method]


@torch.no_grad()
def evaluate_interventions(
    model: TargetModel,
    batches: Iterable[InterventionBatch],
    interventions: Mapping[str, Intervention],
    *,
    setting: str = "default",
    config: EvalConfig | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, EvalResult]:
    """``{method: result}``: each intervention scored as :func:`evaluate` scores it.

    Each batch is judged by every intervention before the next batch is taken (same batch
    object), so interventions that share per-batch work (the read-outs of one HyperDAS share
    its frozen passes, :func:`hyperdas_tl.hyperdas.intervention.hyperdas_read_outs`) compute
    it once. The results do not depend on this order: nothing random runs.
    """
    if not interventions:
        raise ValueError("no interventions to score")
    config = config or EvalConfig()
    device = module_device(model)
    judgements: dict[str, list[Judgement]] = {method: [] for method in interventions}
    n_batches = len(batches) if isinstance(batches, Sequence) else None
    label = ", ".join(interventions)
    for batch in tqdm(
        batches, desc=f"scoring {label}", total=n_batches, disable=not config.show_progress
    ):
        batch = batch.to(device)
        for method, intervention in interventions.items():
            for mode in config.modes:
                correct = judge_batch(model, batch, intervention, mode, config)
                judgements[method].extend(batch_judgements(batch, mode, correct))
    results = {}
    for method, scored in judgements.items():
        if not scored:
            raise ValueError("no examples to score")
        attributes, domains = summarise(scored)
        results[method] = EvalResult(
            method=method,
            setting=setting,
            modes=config.modes,
            attributes=attributes,
            domains=domains,
            metadata=dict(metadata or {}),
            judgements=scored,
        )
    return results
