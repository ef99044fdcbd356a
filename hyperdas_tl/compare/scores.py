"""Cause / Isolate / Disentangle with bootstrap intervals, of one method (:class:`MethodScore`)
and of the paired difference of two (:class:`PairedDifference`), from their records."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hyperdas_tl.compare.records import ExampleRecord
from hyperdas_tl.stats import (
    BootstrapConfig,
    Interval,
    SeedSpread,
    bootstrap_mean,
    decision_text,
    paired_difference,
    seed_spread,
)

METRICS = ("cause", "isolate", "disentangle")


@dataclass(frozen=True)
class ScoreSet:
    """Cause / Isolate / Disentangle with intervals (None where a kind has no example)."""

    cause: Interval | None
    isolate: Interval | None
    disentangle: Interval | None

    def get(self, metric: str) -> Interval | None:
        return getattr(self, metric)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for metric in METRICS:
            interval = self.get(metric)
            out[metric] = None if interval is None else interval.to_dict()
        return out


@dataclass
class MethodScore:
    """One method on one split of one domain, in one judging mode."""

    domain: str
    split: str
    method: str
    mode: str
    pooled: ScoreSet
    """Over the examples, each example's verdict averaged over the seeds."""
    n_cause: int
    n_isolate: int
    seeds: list[int]
    """Seeds run ([] for a deterministic method)."""
    per_seed: dict[int, ScoreSet]
    """Each seed's own intervals (empty for a deterministic method)."""
    over_seeds: dict[str, SeedSpread]
    """Mean ± sd over seeds of each metric's point estimate (empty when deterministic)."""
    attributes: dict[str, ScoreSet]
    """Per target attribute (pooled over seeds)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "split": self.split,
            "method": self.method,
            "mode": self.mode,
            "pooled": self.pooled.to_dict(),
            "n_cause": self.n_cause,
            "n_isolate": self.n_isolate,
            "seeds": list(self.seeds),
            "per_seed": {str(s): v.to_dict() for s, v in self.per_seed.items()},
            "over_seeds": {m: v.to_dict() for m, v in self.over_seeds.items()},
            "attributes": {a: v.to_dict() for a, v in self.attributes.items()},
        }


@dataclass
class PairedDifference:
    """``A - B`` on the same examples of one split (seed-averaged verdicts, paired)."""

    split: str
    mode: str
    a: str
    b: str
    cause: Interval | None
    isolate: Interval | None
    disentangle: Interval | None
    """Mean of the cause and isolate differences (macro over attributes), resampled jointly."""
    per_seed: dict[int, Interval] = field(default_factory=dict)
    """Disentangle of ``A - B`` seed by seed (each seed of a trained method against the same seed
    of the other, or against a deterministic one); empty when fewer than two seeds are shared."""

    @property
    def name(self) -> str:
        return f"{self.a} - {self.b}"

    @property
    def decision(self) -> str:
        """The decision rule on Disentangle, with the seed condition
        (:func:`hyperdas_tl.stats.decide_over_seeds`): ``"A > B"``-style text, ``"no difference"``
        or ``"no consistent difference"``."""
        if self.disentangle is None:
            return "no difference"
        return decision_text(self.disentangle, self.a, self.b, list(self.per_seed.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "mode": self.mode,
            "a": self.a,
            "b": self.b,
            **ScoreSet(self.cause, self.isolate, self.disentangle).to_dict(),
            "per_seed": {str(seed): v.to_dict() for seed, v in self.per_seed.items()},
            "decision": self.decision,
        }


def _cell_values(
    records: Sequence[ExampleRecord],
) -> dict[tuple[str, int], tuple[ExampleRecord, list[float]]]:
    """``{(example id, occurrence): (first record, verdicts over seeds)}`` in record order."""
    grouped: dict[tuple[str, int], tuple[ExampleRecord, list[float]]] = {}
    seen: dict[tuple[Any, str], int] = defaultdict(int)
    for r in records:
        occurrence = seen[(r.seed, r.example_id)]
        seen[(r.seed, r.example_id)] += 1
        key = (r.example_id, occurrence)
        if key not in grouped:
            grouped[key] = (r, [])
        grouped[key][1].append(float(r.correct))
    return grouped


def score_set(
    values: Sequence[float],
    kinds: Sequence[str],
    attributes: Sequence[str],
    clusters: Sequence[str],
    config: BootstrapConfig,
    *,
    paired_with: Sequence[float] | None = None,
) -> ScoreSet:
    """Cause / Isolate / Disentangle intervals, macro-averaged over attributes (Disentangle over
    the attributes that have both kinds, as :func:`hyperdas_tl.metrics.summarise`); with
    ``paired_with`` (another method's values on the same examples), the intervals of the paired
    difference ``values - paired_with`` (:func:`hyperdas_tl.stats.paired_difference`)."""
    values_array = np.asarray(values, dtype=float)
    other = None if paired_with is None else np.asarray(paired_with, dtype=float)
    kinds_array, attributes_array = np.asarray(kinds), np.asarray(attributes)
    clusters_array = np.asarray(clusters)

    def interval(rows: np.ndarray, cells: np.ndarray) -> Interval | None:
        if not rows.any():
            return None
        if other is None:
            return bootstrap_mean(
                values_array[rows], clusters=clusters_array[rows], cells=cells[rows], config=config
            )
        return paired_difference(
            values_array[rows],
            other[rows],
            clusters=clusters_array[rows],
            cells=cells[rows],
            config=config,
        )

    cause = interval(kinds_array == "cause", attributes_array)
    isolate = interval(kinds_array == "isolate", attributes_array)
    # Disentangle as RAVEL (and metrics.summarise) defines it: per attribute (cause + isolate) / 2,
    # averaged over the attributes that have both kinds
    complete = [
        a
        for a in sorted(set(attributes_array.tolist()))
        if {"cause", "isolate"} <= set(kinds_array[attributes_array == a].tolist())
    ]
    kind_cells = np.array(
        [f"{a}\x00{k}" for a, k in zip(attributes_array, kinds_array, strict=True)]
    )
    disentangle = interval(np.isin(attributes_array, complete), kind_cells)
    return ScoreSet(cause=cause, isolate=isolate, disentangle=disentangle)


def summarise_method(records: Sequence[ExampleRecord], config: BootstrapConfig) -> MethodScore:
    """The :class:`MethodScore` of one (domain, split, method, mode)'s records (every seed)."""
    if not records:
        raise ValueError("no records to summarise")
    first = records[0]
    keys = {(r.domain, r.split, r.method, r.mode) for r in records}
    if len(keys) != 1:
        raise ValueError(f"records of one method/split/mode expected, got {sorted(keys)}")
    grouped = _cell_values(records)
    rows = [row for row, _ in grouped.values()]
    means = [float(np.mean(v)) for _, v in grouped.values()]

    def scores(selected: Sequence[ExampleRecord], values: Sequence[float]) -> ScoreSet:
        return score_set(
            values,
            [r.kind for r in selected],
            [r.attribute for r in selected],
            [r.base_entity for r in selected],
            config,
        )

    pooled = scores(rows, means)
    seeds = sorted({r.seed for r in records if r.seed is not None})
    per_seed: dict[int, ScoreSet] = {}
    for seed in seeds:
        mine = [r for r in records if r.seed == seed]
        per_seed[seed] = scores(mine, [float(r.correct) for r in mine])
    over_seeds = {}
    if seeds:
        for metric in METRICS:
            points = [per_seed[s].get(metric) for s in seeds]
            if all(p is not None for p in points):
                over_seeds[metric] = seed_spread([p.mean for p in points])  # type: ignore[union-attr]
    attributes = {}
    for attribute in sorted({r.attribute for r in rows}):
        index = [i for i, r in enumerate(rows) if r.attribute == attribute]
        attributes[attribute] = scores([rows[i] for i in index], [means[i] for i in index])
    return MethodScore(
        domain=first.domain,
        split=first.split,
        method=first.method,
        mode=first.mode,
        pooled=pooled,
        n_cause=sum(r.kind == "cause" for r in rows),
        n_isolate=sum(r.kind == "isolate" for r in rows),
        seeds=seeds,
        per_seed=per_seed,
        over_seeds=over_seeds,
        attributes=attributes,
    )


def shared_seeds(a: Sequence[ExampleRecord], b: Sequence[ExampleRecord]) -> list[int]:
    """The seeds two methods' records can be paired on one by one: those both hold, or every
    seed of one when the other is deterministic (seed None); [] when both are."""
    seeds_a = {r.seed for r in a} - {None}
    seeds_b = {r.seed for r in b} - {None}
    if seeds_a and seeds_b:
        return sorted(seeds_a & seeds_b)
    return sorted(seeds_a | seeds_b)


def records_by_shared_seed(
    a: Sequence[ExampleRecord], b: Sequence[ExampleRecord]
) -> dict[int, tuple[list[ExampleRecord], list[ExampleRecord]]]:
    """``{seed: (A's records, B's records)}`` for each of :func:`shared_seeds`; a deterministic
    side (seed None) gives all its records to every seed."""
    return {
        seed: ([r for r in a if r.seed in (seed, None)], [r for r in b if r.seed in (seed, None)])
        for seed in shared_seeds(a, b)
    }


def paired_method_difference(
    a: Sequence[ExampleRecord], b: Sequence[ExampleRecord], config: BootstrapConfig
) -> PairedDifference:
    """The paired difference of two methods' records on one split and mode (each example's
    verdict averaged over its method's seeds; both must hold exactly the same examples), and,
    when they share two or more seeds (:func:`shared_seeds`), its Disentangle seed by seed."""
    pooled = _paired_scores(a, b, config)
    per_seed: dict[int, Interval] = {}
    by_seed = records_by_shared_seed(a, b)
    if len(by_seed) >= 2:
        for seed, (seed_a, seed_b) in by_seed.items():
            scores = _paired_scores(seed_a, seed_b, config)
            if scores.disentangle is not None:
                per_seed[seed] = scores.disentangle
    first_a, first_b = a[0], b[0]
    return PairedDifference(
        split=first_a.split,
        mode=first_a.mode,
        a=first_a.method,
        b=first_b.method,
        cause=pooled.cause,
        isolate=pooled.isolate,
        disentangle=pooled.disentangle,
        per_seed=per_seed,
    )


def _paired_scores(
    a: Sequence[ExampleRecord], b: Sequence[ExampleRecord], config: BootstrapConfig
) -> ScoreSet:
    """The paired :class:`ScoreSet` of ``A - B`` (each example's verdicts averaged)."""
    if not a or not b:
        raise ValueError("both methods need records")
    first_a, first_b = a[0], b[0]
    if (first_a.split, first_a.mode) != (first_b.split, first_b.mode):
        raise ValueError("a paired difference needs records of the same split and mode")
    grouped_a, grouped_b = _cell_values(a), _cell_values(b)
    if set(grouped_a) != set(grouped_b):
        missing = len(set(grouped_a) ^ set(grouped_b))
        raise ValueError(
            f"{first_a.method} and {first_b.method} were scored on different examples of "
            f"{first_a.split} ({missing} not shared); a paired difference needs the same ones"
        )
    keys = list(grouped_a)
    rows = [grouped_a[k][0] for k in keys]
    scores = score_set(
        [float(np.mean(grouped_a[k][1])) for k in keys],
        [r.kind for r in rows],
        [r.attribute for r in rows],
        [r.base_entity for r in rows],
        config,
        paired_with=[float(np.mean(grouped_b[k][1])) for k in keys],
    )
    return scores
