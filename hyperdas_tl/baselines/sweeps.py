"""Layer and subspace-dimension sweeps of DAS / MDAS, scored by the metrics module.

Each point trains one subspace (:func:`~hyperdas_tl.baselines.das.train_das` with the base
config's layer or ``k`` replaced) and scores it on the evaluation batches in every judging mode.
Choose the best point on a validation split and report the test split separately.
"""

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tqdm.auto import tqdm

from hyperdas_tl.baselines.das import DASConfig, DASResult, train_das
from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.metrics import EvalConfig, EvalResult, JudgeMode, evaluate, results_to_markdown
from hyperdas_tl.target import TargetModel

logger = logging.getLogger(__name__)

SweepKind = Literal["layer", "dimension"]


@dataclass
class SweepPoint:
    """One trained-and-scored point of a sweep."""

    config: DASConfig
    result: EvalResult
    train_seconds: float
    final_loss: float
    trained: DASResult | None = field(default=None, repr=False, compare=False)
    """The trained subspace (kept only when the sweep is asked to)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "result": self.result.to_dict(),
            "train_seconds": self.train_seconds,
            "final_loss": self.final_loss,
        }


@dataclass
class SweepResult:
    """All points of one sweep."""

    kind: SweepKind
    points: list[SweepPoint]

    def best(
        self,
        mode: JudgeMode,
        *,
        metric: Literal["cause", "isolate", "disentangle"] = "disentangle",
        domain: str | None = None,
        split: str | None = None,
    ) -> SweepPoint:
        """The point with the highest domain-average ``metric`` (earliest point on ties)."""
        if not self.points:
            raise ValueError("the sweep has no points")

        def value(point: SweepPoint) -> float:
            scores = [
                getattr(d, metric)
                for d in point.result.domains
                if d.mode == mode and domain in (None, d.domain) and split in (None, d.split)
            ]
            scores = [s for s in scores if s is not None]
            return sum(scores) / len(scores) if scores else float("-inf")

        return max(self.points, key=value)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "points": [p.to_dict() for p in self.points]}

    def to_markdown(self) -> str:
        return results_to_markdown([p.result for p in self.points])


def _run_point(
    model: TargetModel,
    train_batches: Sequence[InterventionBatch],
    eval_batches: Sequence[InterventionBatch],
    config: DASConfig,
    eval_config: EvalConfig,
    setting: str,
    keep: bool,
) -> SweepPoint:
    trained = train_das(model, train_batches, config)
    method = f"{config.objective.upper()} L{config.layer} k{config.k}"
    result = evaluate(
        model,
        eval_batches,
        trained.intervention.intervention(model),
        method=method,
        setting=setting,
        config=eval_config,
        metadata={"das_config": config.to_dict(), "train_seconds": trained.history.seconds},
    )
    return SweepPoint(
        config=config,
        result=result,
        train_seconds=trained.history.seconds,
        final_loss=trained.history.step_loss[-1],
        trained=trained if keep else None,
    )


def layer_sweep(
    model: TargetModel,
    train_batches: Sequence[InterventionBatch],
    eval_batches: Sequence[InterventionBatch],
    layers: Sequence[int],
    base_config: DASConfig,
    eval_config: EvalConfig | None = None,
    *,
    setting: str = "default",
    keep_trained: bool = False,
) -> SweepResult:
    """Train and score ``base_config`` at each of ``layers``."""
    return _sweep(
        "layer", "layer", layers, "layers must name at least one layer",
        model, train_batches, eval_batches, base_config, eval_config, setting, keep_trained,
    )  # fmt: skip


def dimension_sweep(
    model: TargetModel,
    train_batches: Sequence[InterventionBatch],
    eval_batches: Sequence[InterventionBatch],
    ks: Sequence[int],
    base_config: DASConfig,
    eval_config: EvalConfig | None = None,
    *,
    setting: str = "default",
    keep_trained: bool = False,
) -> SweepResult:
    """Train and score ``base_config`` with each subspace dimension in ``ks``."""
    return _sweep(
        "dimension", "k", ks, "ks must name at least one dimension",
        model, train_batches, eval_batches, base_config, eval_config, setting, keep_trained,
    )  # fmt: skip


def _sweep(
    kind: str,
    field_name: str,
    values: Sequence[int],
    empty_error: str,
    model: TargetModel,
    train_batches: Sequence[InterventionBatch],
    eval_batches: Sequence[InterventionBatch],
    base_config: DASConfig,
    eval_config: EvalConfig | None,
    setting: str,
    keep_trained: bool,
) -> SweepResult:
    """Train and score ``base_config`` with ``field_name`` set to each of ``values``."""
    if not values:
        raise ValueError(empty_error)
    eval_config = eval_config or EvalConfig()
    points = [
        _run_point(
            model,
            train_batches,
            eval_batches,
            dataclasses.replace(base_config, **{field_name: value}),
            eval_config,
            setting,
            keep_trained,
        )
        for value in tqdm(values, desc=f"{kind} sweep", disable=not eval_config.show_progress)
    ]
    return SweepResult(kind, points)
