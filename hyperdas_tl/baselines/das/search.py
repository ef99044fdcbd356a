"""DAS / MDAS trained with several learning rates, the best on validation kept
(:func:`search_lr`)."""

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hyperdas_tl.baselines.das.config import DASConfig
from hyperdas_tl.baselines.das.rows import config_rows
from hyperdas_tl.baselines.das.train import DASResult, capture, check_model, train_captured
from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.target import TargetModel


@dataclass
class DASSearch:
    """DAS / MDAS trained with several learning rates; the best on validation is kept."""

    runs: list[DASResult]
    """One run per learning rate, in the order given."""
    best_index: int
    """Index of the run with the best validation Disentangle (ties: lower validation loss)."""

    @property
    def best(self) -> DASResult:
        return self.runs[self.best_index]

    @property
    def lrs(self) -> list[float]:
        return [run.config.lr for run in self.runs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_lr": self.best.config.lr,
            "runs": [
                {"config": run.config.to_dict(), "history": run.history.to_dict()}
                for run in self.runs
            ],
        }


def search_lr(
    model: TargetModel,
    batches: Sequence[InterventionBatch],
    val_batches: Sequence[InterventionBatch],
    config: DASConfig,
    lrs: Sequence[float],
) -> DASSearch:
    """Train ``config`` with each learning rate in ``lrs`` (validating every epoch, see
    :func:`train_das`) and keep the one whose best epoch has the highest validation
    Disentangle (ties: the lower validation loss, then the earlier rate). Activations are
    captured once for all learning rates."""
    lrs = list(lrs)
    if not lrs:
        raise ValueError("lrs must name at least one learning rate")
    check_model(model, config)
    configs = [dataclasses.replace(config, lr=lr) for lr in lrs]  # validates every lr
    train, val = config_rows(batches, val_batches, config)
    captured_train = capture(model, train, config.layer)
    captured_val = capture(model, val or [], config.layer)
    runs = [
        train_captured(model, captured_train, captured_val, c, time.perf_counter()) for c in configs
    ]
    keys = [(run.history.best.val_disentangle, -run.history.best.val_loss) for run in runs]  # type: ignore[union-attr]
    best_index = max(range(len(runs)), key=lambda i: (keys[i], -i))
    return DASSearch(runs=runs, best_index=best_index)
