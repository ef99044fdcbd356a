"""Interleaved timing: every variant in turn (A, B, C, A, B, C, ...) after a warm-up, so machine
load that drifts during a run hits every variant alike; tables of mins, medians and their
ratios."""

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Timing:
    """Wall times of one variant over the interleaved repetitions."""

    times_s: list[float]
    phases_s: dict[str, list[float]] = field(default_factory=dict)
    """Per-phase times of each repetition, for variants that report phases."""

    @property
    def min_s(self) -> float:
        return min(self.times_s)

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "min_s": self.min_s,
            "median_s": self.median_s,
            "times_s": self.times_s,
        }
        if self.phases_s:
            out["phases"] = {
                name: {"min_s": min(v), "median_s": statistics.median(v)}
                for name, v in self.phases_s.items()
            }
        return out


def interleaved(
    variants: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, Timing]:
    """Time every variant ``repeats`` times in turn (A, B, C, A, B, C, ...), after ``warmup``
    untimed rounds. A variant may return ``{phase: seconds}`` to report a breakdown."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    timings = {name: Timing(times_s=[]) for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            gc.collect()
            start = time.perf_counter()
            result = fn()
            timings[name].times_s.append(time.perf_counter() - start)
            phases = result if isinstance(result, dict) else {}
            for phase, seconds in phases.items():
                timings[name].phases_s.setdefault(phase, []).append(seconds)
    return timings


def ratio_rows(
    timings: dict[str, Timing], reference: str, per_example: int | None = None
) -> list[dict[str, Any]]:
    """One table row per variant: min, median and both ratios to ``reference``."""
    ref = timings[reference]
    rows = []
    for name, timing in timings.items():
        row = {
            "variant": name,
            "min_s": timing.min_s,
            "median_s": timing.median_s,
            "ratio_min": timing.min_s / ref.min_s,
            "ratio_median": timing.median_s / ref.median_s,
        }
        if per_example is not None:
            row["examples_per_s"] = per_example / timing.median_s
        rows.append(row)
    return rows
