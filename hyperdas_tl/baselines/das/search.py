"""DAS / MDAS trained with several learning rates, the best on validation kept
(:func:`search_lr`), each finished run optionally kept on disk
(:mod:`~hyperdas_tl.baselines.das.run_store`) so a stopped search resumes."""

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperdas_tl.baselines.das import run_store
from hyperdas_tl.baselines.das.config import DASConfig
from hyperdas_tl.baselines.das.rows import config_rows
from hyperdas_tl.baselines.das.train import DASResult, capture, check_model, train_captured
from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.models import module_device
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
    *,
    store: Path | None = None,
) -> DASSearch:
    """Train ``config`` with each learning rate in ``lrs`` (validating every epoch, see
    :func:`train_das`) and keep the one whose best epoch has the highest validation
    Disentangle (ties: the lower validation loss, then the earlier rate). Activations are
    captured once for all learning rates.

    With ``store`` (a folder), each run is written there when it finishes
    (:func:`~hyperdas_tl.baselines.das.run_store.save_run`) and a run already there is read
    back instead of trained (it must have the same config): a search stopped part-way resumes
    with the runs it had finished, and gives what the uninterrupted search gives.
    """
    lrs = list(lrs)
    if not lrs:
        raise ValueError("lrs must name at least one learning rate")
    if len(set(map(float, lrs))) != len(lrs):
        raise ValueError(f"lrs repeat: {lrs}")
    check_model(model, config)
    configs = [dataclasses.replace(config, lr=lr) for lr in lrs]  # validates every lr
    d_model, device = int(model.cfg.d_model), str(module_device(model))
    paths = [None if store is None else run_store.run_path(store, c.lr) for c in configs]
    runs: list[DASResult | None] = [
        run_store.load_run(path, c, d_model, device) if path and path.exists() else None
        for path, c in zip(paths, configs, strict=True)
    ]
    if any(run is None for run in runs):
        train, val = config_rows(batches, val_batches, config)
        captured_train = capture(model, train, config.layer)
        captured_val = capture(model, val or [], config.layer)
        for index, (path, c) in enumerate(zip(paths, configs, strict=True)):
            if runs[index] is not None:
                continue
            run = train_captured(model, captured_train, captured_val, c, time.perf_counter())
            if path is not None:
                run_store.save_run(path, run)
            runs[index] = run
    runs = [run for run in runs if run is not None]
    keys = [(run.history.best.val_disentangle, -run.history.best.val_loss) for run in runs]  # type: ignore[union-attr]
    best_index = max(range(len(runs)), key=lambda i: (keys[i], -i))
    return DASSearch(runs=runs, best_index=best_index)
