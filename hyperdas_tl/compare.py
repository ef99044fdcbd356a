"""One comparison pipeline: every method trained and scored on the same examples, with intervals.

:func:`compare_methods` takes a model and an :class:`~hyperdas_tl.experiment.ExperimentData`
and, at one layer (given, or chosen on the validation split — never on a test split) and one
``k``:

- scores the controls (``"no intervention"``, ``"random subspace"`` of the same k, seeded,
  ``"full residual swap"`` at the entity token: the single-position ceiling);
- trains the baselines in RAVEL's protocol: ``"DAS"`` / ``"MDAS"`` learn one subspace per target
  attribute on that attribute's rows, with the learning rate and the epoch chosen on validation
  (:func:`hyperdas_tl.baselines.das.train_attribute_subspaces`), ``"probe"`` uses each
  attribute's probe-weight span; ``"DAS (pooled)"`` / ``"MDAS (pooled)"`` are the named ablation
  of one subspace for every attribute;
- trains ``"HyperDAS"`` and scores its three read-outs (``"HyperDAS (soft)"``,
  ``"HyperDAS (one_to_many)"``, ``"HyperDAS (one_to_one)"``);
- keeps every per-example verdict (:class:`ExampleRecord`) and summarises them per (domain,
  split, method) as Cause / Isolate / Disentangle with 95 % bootstrap intervals
  (:mod:`hyperdas_tl.stats`: a cluster bootstrap over base entities by default), pooled over
  seeds (each example's verdict averaged over the seeds) beside per-seed intervals and the
  mean ± sd over seeds, plus **paired** intervals of the differences the README states.

Every trained method runs once per seed; deterministic methods (no intervention, the full swap,
probes) run once. With ``out_dir`` the run is incremental and resumable: each (method, seed)
writes its records (``records/*.jsonl``) and curves (``curves/*.json``) atomically when it
finishes, and a later call with the same ``out_dir`` skips what is already there (``run.json``
holds a fingerprint of the data and settings; a different run in the same folder is an error).
:func:`write_report` writes ``summary.json`` (the schema of issue 13), ``details.json``,
``records.jsonl`` and ``summary.md``.

**Decision rule** (fixed before any run): "A beats B" only when the paired 95 % interval of
``A - B`` (Disentangle) excludes 0 (:func:`hyperdas_tl.stats.decide`).
"""

import dataclasses
import hashlib
import json
import logging
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from hyperdas_tl.atomic_write import write_text_atomically
from hyperdas_tl.baselines.controls import (
    full_residual_swap_intervention,
    random_subspace_intervention,
)
from hyperdas_tl.baselines.das import (
    OBJECTIVES,
    DASConfig,
    Objective,
    attribute_subspace_intervention,
    search_lr,
    train_attribute_subspaces,
)
from hyperdas_tl.baselines.probes import ProbeConfig, train_probes
from hyperdas_tl.data.batching import InterventionBatch, collate_examples
from hyperdas_tl.data.examples import InterventionExample
from hyperdas_tl.experiment import ExperimentData
from hyperdas_tl.hooks import resid_pre_name
from hyperdas_tl.hyperdas.config import SELECTION_MODES, HyperDASConfig
from hyperdas_tl.hyperdas.intervention import hyperdas_intervention
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.hyperdas.train import train_hyperdas
from hyperdas_tl.metrics import (
    JUDGE_MODES,
    EvalConfig,
    Intervention,
    JudgeMode,
    evaluate,
    example_id,
    no_intervention,
)
from hyperdas_tl.precision import model_dtype, precision_name
from hyperdas_tl.stats import (
    BootstrapConfig,
    Interval,
    SeedSpread,
    bootstrap_mean,
    decision_text,
    paired_difference,
    seed_spread,
)

logger = logging.getLogger(__name__)

METHODS: tuple[str, ...] = (
    "no intervention",
    "random subspace",
    "full residual swap",
    "probe",
    "DAS",
    "MDAS",
    "DAS (pooled)",
    "MDAS (pooled)",
    "HyperDAS",
)
"""Every method :func:`compare_methods` knows (``"HyperDAS"`` is scored as its read-outs)."""
DEFAULT_METHODS: tuple[str, ...] = tuple(m for m in METHODS if "pooled" not in m)
SEEDED_METHODS = frozenset(
    {"random subspace", "DAS", "MDAS", "DAS (pooled)", "MDAS (pooled)", "HyperDAS"}
)
"""Methods run once per seed; the others are deterministic and run once (seed None)."""
HYPERDAS_METHODS: tuple[str, ...] = tuple(f"HyperDAS ({mode})" for mode in SELECTION_MODES)
SPLIT_ORDER = ("train", "val_entity", "val_context", "test_entity", "test_context")
METRICS = ("cause", "isolate", "disentangle")

RUN_JSON = "run.json"
LAYER_JSON = "layer_choice.json"
SUMMARY_JSON = "summary.json"
DETAILS_JSON = "details.json"
RECORDS_JSONL = "records.jsonl"
SUMMARY_MD = "summary.md"


def scored_names(method: str) -> tuple[str, ...]:
    """The method names a requested method is scored under (HyperDAS: its three read-outs)."""
    return HYPERDAS_METHODS if method == "HyperDAS" else (method,)


# --------------------------------------------------------------------------- settings


@dataclass
class CompareSettings:
    """How :func:`compare_methods` trains, scores and summarises (beyond layer, k, methods and
    seeds)."""

    val_split: str = "val_entity"
    """Split that chooses the layer, DAS's learning rate and epoch, and the probes' fit check."""
    eval_splits: tuple[str, ...] | None = None
    """Splits scored (None: every split of the data but ``train``)."""
    modes: tuple[JudgeMode, ...] = ("teacher_forced",)
    """Judging modes; the first is the one ``summary.json`` reports (others get their own
    ``summary_<mode>.json``)."""
    max_label_tokens: int = 3
    """Teacher forcing: leading label tokens that must all match."""
    max_new_tokens: int = 8
    """Generation judging: tokens generated per prompt."""
    das_lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    """Learning rates DAS / MDAS try; the best on validation is kept (per attribute)."""
    das_max_epochs: int = 20
    """Most epochs of one DAS / MDAS run."""
    das_patience: int = 3
    """Epochs without a better validation Disentangle before a DAS / MDAS run stops."""
    layer_epochs: int = 3
    """Epochs of the per-attribute DAS that scores each candidate layer."""
    layer_objective: Objective = "das"
    """Objective of that layer-choice DAS."""
    layer_lr: float | None = None
    """Its learning rate (None: the largest of ``das_lrs``)."""
    probe_l2: float = 1e-3
    """L2 penalty of the probes."""
    probe_max_iter: int = 200
    """L-BFGS iterations of the probes."""
    hyperdas: HyperDASConfig = field(default_factory=HyperDASConfig)
    """HyperDAS settings (``layer``, ``k`` and ``seed`` are replaced by the comparison's)."""
    hyperdas_batch_size: int | None = None
    """Re-batch the training examples for HyperDAS (None: the data's batches)."""
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    """Intervals (cluster bootstrap over base entities by default)."""
    differences: tuple[tuple[str, str], ...] | None = None
    """Paired differences ``A - B`` to report (None: :func:`default_differences`)."""
    show_progress: bool = False
    """Show tqdm bars."""

    def __post_init__(self) -> None:
        self.modes = tuple(self.modes)
        if self.eval_splits is not None:
            self.eval_splits = tuple(self.eval_splits)
            if not self.eval_splits:
                raise ValueError("eval_splits must name at least one split (or be None)")
        self.das_lrs = tuple(float(lr) for lr in self.das_lrs)
        if not self.modes or any(m not in JUDGE_MODES for m in self.modes):
            raise ValueError(f"modes must be a non-empty subset of {JUDGE_MODES}, got {self.modes}")
        if self.val_split == "train" or self.val_split.startswith("test"):
            raise ValueError(
                f"val_split must be a validation split (choices are made on it), got "
                f"{self.val_split!r}"
            )
        if self.eval_splits is not None and "train" in self.eval_splits:
            raise ValueError("eval_splits must not include the training split")
        if not self.das_lrs or any(not lr > 0 for lr in self.das_lrs):
            raise ValueError(f"das_lrs must be positive learning rates, got {self.das_lrs}")
        for name in ("das_max_epochs", "das_patience", "layer_epochs", "probe_max_iter"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_label_tokens < 1 or self.max_new_tokens < 1:
            raise ValueError("max_label_tokens and max_new_tokens must be >= 1")
        if self.layer_objective not in OBJECTIVES:
            raise ValueError(f"layer_objective must be one of {OBJECTIVES}")
        if self.layer_lr is not None and not self.layer_lr > 0:
            raise ValueError(f"layer_lr must be > 0 or None, got {self.layer_lr}")
        if self.probe_l2 < 0:
            raise ValueError(f"probe_l2 must be >= 0, got {self.probe_l2}")
        if self.hyperdas_batch_size is not None and self.hyperdas_batch_size < 1:
            raise ValueError(f"hyperdas_batch_size must be >= 1, got {self.hyperdas_batch_size}")
        if self.differences is not None:
            self.differences = tuple((str(a), str(b)) for a, b in self.differences)

    @property
    def eval_config(self) -> EvalConfig:
        return EvalConfig(
            modes=self.modes,
            max_label_tokens=self.max_label_tokens,
            max_new_tokens=self.max_new_tokens,
            show_progress=self.show_progress,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hyperdas"] = self.hyperdas.to_dict()
        data["bootstrap"] = self.bootstrap.to_dict()
        for name in ("modes", "eval_splits", "das_lrs"):
            value = getattr(self, name)
            data[name] = None if value is None else list(value)
        data["differences"] = (
            None if self.differences is None else [list(pair) for pair in self.differences]
        )
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CompareSettings":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown CompareSettings fields: {sorted(unknown)}")
        data = dict(data)
        if "hyperdas" in data:
            data["hyperdas"] = HyperDASConfig.from_dict(data["hyperdas"])
        if "bootstrap" in data:
            data["bootstrap"] = BootstrapConfig.from_dict(data["bootstrap"])
        for name in ("modes", "das_lrs"):
            if name in data:
                data[name] = tuple(data[name])
        if data.get("eval_splits") is not None:
            data["eval_splits"] = tuple(data["eval_splits"])
        if data.get("differences") is not None:
            data["differences"] = tuple(tuple(pair) for pair in data["differences"])
        return cls(**data)

    def training_dict(self) -> dict[str, Any]:
        """The settings that change records (what a resumed run must share)."""
        data = self.to_dict()
        for name in ("bootstrap", "differences", "show_progress", "eval_splits", "modes"):
            data.pop(name)
        return data


def default_differences(methods: Iterable[str]) -> list[tuple[str, str]]:
    """The comparisons the README states, among ``methods`` (scored names): each HyperDAS
    read-out minus MDAS and minus DAS, and soft minus one-to-one."""
    present = set(methods)
    pairs = [
        (hyperdas, baseline)
        for hyperdas in HYPERDAS_METHODS
        for baseline in ("MDAS", "DAS")
        if hyperdas in present and baseline in present
    ]
    if {"HyperDAS (soft)", "HyperDAS (one_to_one)"} <= present:
        pairs.append(("HyperDAS (soft)", "HyperDAS (one_to_one)"))
    return pairs


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ExampleRecord:
    """One method's verdict on one example (one seed, one judging mode)."""

    method: str
    seed: int | None
    """None for deterministic methods (run once)."""
    domain: str
    split: str
    attribute: str
    """Target attribute A."""
    kind: str
    """``"cause"`` or ``"isolate"``."""
    mode: str
    """Judging mode."""
    example_id: str
    """:func:`hyperdas_tl.metrics.example_id`: the same example has the same id in every
    method's records."""
    base_entity: str
    """The cluster the bootstrap resamples."""
    correct: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExampleRecord":
        return cls(**data)


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

    @property
    def name(self) -> str:
        return f"{self.a} - {self.b}"

    @property
    def decision(self) -> str:
        """The decision rule on Disentangle: ``"A > B"``-style text or ``"no difference"``."""
        if self.disentangle is None:
            return "no difference"
        return decision_text(self.disentangle, self.a, self.b)

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "mode": self.mode,
            "a": self.a,
            "b": self.b,
            **ScoreSet(self.cause, self.isolate, self.disentangle).to_dict(),
            "decision": self.decision,
        }


@dataclass
class LayerScore:
    """Validation scores of the per-attribute DAS at one candidate layer."""

    layer: int
    cause: float | None
    isolate: float | None
    disentangle: float | None


@dataclass
class LayerChoice:
    """The layer chosen on validation and what every candidate scored."""

    layer: int
    split: str
    scores: list[LayerScore]
    settings: dict[str, Any] = field(default_factory=dict)
    """How each candidate was scored (objective, epochs, lr, k, seed)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "split": self.split,
            "scores": [asdict(s) for s in self.scores],
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LayerChoice":
        return cls(
            layer=int(data["layer"]),
            split=data["split"],
            scores=[LayerScore(**s) for s in data["scores"]],
            settings=dict(data.get("settings", {})),
        )


# --------------------------------------------------------------------------- summaries


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


def paired_method_difference(
    a: Sequence[ExampleRecord], b: Sequence[ExampleRecord], config: BootstrapConfig
) -> PairedDifference:
    """The paired difference of two methods' records on one split and mode (each example's
    verdict averaged over its method's seeds; both must hold exactly the same examples)."""
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
    return PairedDifference(
        split=first_a.split,
        mode=first_a.mode,
        a=first_a.method,
        b=first_b.method,
        cause=scores.cause,
        isolate=scores.isolate,
        disentangle=scores.disentangle,
    )


def _interval_cell(interval: Interval | None) -> dict[str, float] | None:
    if interval is None:
        return None
    return {"mean": interval.mean, "lo": interval.lo, "hi": interval.hi}


def _fmt(interval: Interval | None) -> str:
    if interval is None:
        return "—"
    return f"{interval.mean:.3f} [{interval.lo:.3f}, {interval.hi:.3f}]"


def _fmt_spread(spread: SeedSpread | None) -> str:
    if spread is None:
        return "—"
    sd = "—" if spread.sd is None else f"{spread.sd:.3f}"
    return f"{spread.mean:.3f} ± {sd}"


def _order(names: Iterable[str], order: Sequence[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(order)}
    return sorted(set(names), key=lambda n: (rank.get(n, len(rank)), n))


@dataclass
class ComparisonReport:
    """Everything :func:`compare_methods` produced."""

    domain: str
    layer: int
    k: int
    methods: tuple[str, ...]
    """Scored method names (HyperDAS as its read-outs), in report order."""
    seeds: tuple[int, ...]
    splits: tuple[str, ...]
    records: list[ExampleRecord]
    scores: list[MethodScore]
    differences: list[PairedDifference]
    settings: CompareSettings
    layer_choice: LayerChoice | None = None
    """How the layer was chosen on validation (None when it was given)."""
    curves: dict[str, Any] = field(default_factory=dict)
    """``{"<method> seed <s>": training curves}`` (DAS / MDAS per attribute and learning rate,
    HyperDAS's step history, the probes' accuracies)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Timings, which units were resumed, the caller's notes (e.g. the command line)."""

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(self.settings.modes)

    def score(self, method: str, split: str, mode: str | None = None) -> MethodScore:
        mode = mode or self.modes[0]
        found = [s for s in self.scores if (s.method, s.split, s.mode) == (method, split, mode)]
        if len(found) != 1:
            raise ValueError(f"no score for method={method!r} split={split!r} mode={mode!r}")
        return found[0]

    def difference(self, name: str, split: str, mode: str | None = None) -> PairedDifference:
        mode = mode or self.modes[0]
        found = [d for d in self.differences if (d.name, d.split, d.mode) == (name, split, mode)]
        if len(found) != 1:
            raise ValueError(f"no difference {name!r} for split={split!r} mode={mode!r}")
        return found[0]

    def summary(self, mode: str | None = None) -> dict[str, Any]:
        """issue 13's ``summary.json``: ``{domain: {split: {method: {cause, isolate,
        disentangle: {mean, lo, hi}, n_cause, n_isolate, seeds}}}, "differences": {split:
        {"A - B": {mean, lo, hi}}}}`` (pooled over seeds; differences on Disentangle)."""
        mode = mode or self.modes[0]
        by_split: dict[str, dict[str, Any]] = {}
        for split in self.splits:
            cells = {}
            for method in self.methods:
                score = self.score(method, split, mode)
                cells[method] = {
                    **{m: _interval_cell(score.pooled.get(m)) for m in METRICS},
                    "n_cause": score.n_cause,
                    "n_isolate": score.n_isolate,
                    "seeds": list(score.seeds),
                }
            by_split[split] = cells
        differences = {
            split: {
                d.name: _interval_cell(d.disentangle)
                for d in self.differences
                if d.split == split and d.mode == mode
            }
            for split in self.splits
        }
        return {self.domain: by_split, "differences": differences}

    def details(self) -> dict[str, Any]:
        """Every interval (per seed, per attribute, mean ± sd over seeds, cause / isolate
        differences and decisions), the layer choice, settings and metadata."""
        return {
            "domain": self.domain,
            "layer": self.layer,
            "k": self.k,
            "methods": list(self.methods),
            "seeds": list(self.seeds),
            "splits": list(self.splits),
            "decision_rule": (
                "A beats B only when the paired 95% bootstrap interval of A - B (Disentangle) "
                "excludes 0"
            ),
            "bootstrap": self.settings.bootstrap.to_dict(),
            "scores": [s.to_dict() for s in self.scores],
            "differences": [d.to_dict() for d in self.differences],
            "layer_choice": None if self.layer_choice is None else self.layer_choice.to_dict(),
            "settings": self.settings.to_dict(),
            "metadata": dict(self.metadata),
        }

    def to_markdown(self, mode: str | None = None) -> str:
        """Tables per split: Cause / Isolate / Disentangle with intervals and the mean ± sd
        over seeds; per attribute; the paired differences with the rule's decision."""
        mode = mode or self.modes[0]
        boot = self.settings.bootstrap
        unit = "base entities (cluster bootstrap)" if boot.cluster else "examples"
        lines = [
            f"# {self.domain}: layer {self.layer}, k = {self.k}, judged {mode}",
            "",
            f"{boot.confidence:.0%} bootstrap intervals ({boot.method}, {boot.n_resamples} "
            f"resamples of {unit}); trained methods pooled over seeds "
            f"{list(self.seeds)} (each example's verdict averaged over seeds), with the mean ± "
            "sd of the per-seed scores beside them. Decision rule: A beats B only when the "
            "paired 95 % interval of A − B (Disentangle) excludes 0.",
        ]
        if self.layer_choice is not None:
            cells = ", ".join(
                f"L{s.layer}: {'—' if s.disentangle is None else f'{s.disentangle:.3f}'}"
                for s in self.layer_choice.scores
            )
            lines += ["", f"Layer chosen on {self.layer_choice.split} (Disentangle): {cells}."]
        for split in self.splits:
            lines += [
                "",
                f"## {split}",
                "",
                "| method | seeds | Cause | Isolate | Disentangle | Disentangle over seeds "
                "| n cause | n isolate |",
                "|---|---|---|---|---|---|---|---|",
            ]
            scores = [self.score(m, split, mode) for m in self.methods]
            for s in scores:
                lines.append(
                    f"| {s.method} | {len(s.seeds) or '—'} | {_fmt(s.pooled.cause)} "
                    f"| {_fmt(s.pooled.isolate)} | {_fmt(s.pooled.disentangle)} "
                    f"| {_fmt_spread(s.over_seeds.get('disentangle'))} | {s.n_cause} "
                    f"| {s.n_isolate} |"
                )
            attributes = sorted({a for s in scores for a in s.attributes})
            lines += [
                "",
                "| method | " + " | ".join(f"{a} Cause | {a} Isolate" for a in attributes) + " |",
                "|---|" + "---|---|" * len(attributes),
            ]
            for s in scores:
                cells = []
                for a in attributes:
                    attribute = s.attributes.get(a)
                    cells += [
                        _fmt(None if attribute is None else attribute.cause),
                        _fmt(None if attribute is None else attribute.isolate),
                    ]
                lines.append(f"| {s.method} | " + " | ".join(cells) + " |")
            differences = [d for d in self.differences if d.split == split and d.mode == mode]
            if differences:
                lines += [
                    "",
                    "| A − B (paired) | Δ Cause | Δ Isolate | Δ Disentangle | decision |",
                    "|---|---|---|---|---|",
                ]
                for d in differences:
                    lines.append(
                        f"| {d.name} | {_fmt(d.cause)} | {_fmt(d.isolate)} "
                        f"| {_fmt(d.disentangle)} | {d.decision} |"
                    )
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- writing


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, text)


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _records_text(records: Iterable[ExampleRecord]) -> str:
    return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)


def read_records(path: str | Path) -> list[ExampleRecord]:
    """The records of a JSON-lines file."""
    with open(path, encoding="utf-8") as handle:
        return [ExampleRecord.from_dict(json.loads(line)) for line in handle if line.strip()]


def write_report(report: ComparisonReport, out_dir: str | Path) -> None:
    """``summary.json`` (first judging mode; ``summary_<mode>.json`` for the others),
    ``details.json``, ``records.jsonl`` and ``summary.md`` (+ ``summary_<mode>.md``), each
    written atomically."""
    out = Path(out_dir)
    for index, mode in enumerate(report.modes):
        suffix = "" if index == 0 else f"_{mode}"
        _atomic_write(out / f"summary{suffix}.json", _json(report.summary(mode)))
        _atomic_write(out / f"summary{suffix}.md", report.to_markdown(mode))
    _atomic_write(out / DETAILS_JSON, _json(report.details()))
    _atomic_write(out / RECORDS_JSONL, _records_text(report.records))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _unit_name(method: str, seed: int | None) -> str:
    return f"{_slug(method)}.seed{'none' if seed is None else seed}"


# --------------------------------------------------------------------------- training units


@dataclass
class _Context:
    model: Any
    data: ExperimentData
    batches: dict[str, list[InterventionBatch]]
    layer: int
    k: int
    attributes: tuple[str, ...]
    splits: tuple[str, ...]
    settings: CompareSettings


@dataclass
class _UnitResult:
    interventions: dict[str, Intervention]
    """``{scored method name: intervention}``."""
    curves: dict[str, Any]


def _das_config(ctx: _Context, objective: Objective, seed: int) -> DASConfig:
    return DASConfig(
        layer=ctx.layer,
        k=ctx.k,
        objective=objective,
        epochs=ctx.settings.das_max_epochs,
        lr=ctx.settings.das_lrs[0],
        max_label_tokens=ctx.settings.max_label_tokens,
        seed=seed,
        show_progress=ctx.settings.show_progress,
        batch_size=ctx.data.config.batch_size,
        patience=ctx.settings.das_patience,
    )


def _run_das(ctx: _Context, method: str, seed: int) -> _UnitResult:
    objective: Objective = "mdas" if method.startswith("MDAS") else "das"
    config = _das_config(ctx, objective, seed)
    train, val = ctx.batches["train"], ctx.batches[ctx.settings.val_split]
    if "pooled" in method:
        search = search_lr(ctx.model, train, val, config, ctx.settings.das_lrs)
        intervention = search.best.intervention.intervention(ctx.model)
        return _UnitResult({method: intervention}, {"pooled": search.to_dict()})
    subspaces = train_attribute_subspaces(
        ctx.model, train, val, config, ctx.attributes, ctx.settings.das_lrs
    )
    return _UnitResult({method: subspaces.intervention(ctx.model)}, subspaces.to_dict())


def _run_probe(ctx: _Context) -> _UnitResult:
    batches = ctx.batches["train"] + ctx.batches[ctx.settings.val_split]
    bases, curves = {}, {}
    for attribute in ctx.attributes:
        sweep = train_probes(
            ctx.model,
            batches,
            attribute,
            ProbeConfig(
                layers=(ctx.layer,),
                l2=ctx.settings.probe_l2,
                max_iter=ctx.settings.probe_max_iter,
                train_split="train",
                test_split=ctx.settings.val_split,
                show_progress=ctx.settings.show_progress,
            ),
        )
        probe = sweep.probes[ctx.layer]
        basis = probe.subspace()  # its rank, at most n_classes - 1
        if basis.shape[1] > ctx.k:
            basis = probe.subspace(ctx.k)
        bases[attribute] = basis.to(next(iter(ctx.model.parameters())).device)
        curves[attribute] = {**sweep.to_dict(), "k": int(basis.shape[1])}
    return _UnitResult(
        {"probe": attribute_subspace_intervention(ctx.model, ctx.layer, bases)}, curves
    )


def rebatch(
    examples: Sequence[InterventionExample],
    tokenizer: Any,
    batch_size: int,
    *,
    seed: int = 0,
    max_label_tokens: int = 3,
) -> list[InterventionBatch]:
    """``examples`` shuffled (seeded) and collated into batches of ``batch_size``."""
    if not examples:
        raise ValueError("no examples to batch")
    order = list(examples)
    random.Random(seed).shuffle(order)
    return [
        collate_examples(order[i : i + batch_size], tokenizer, max_label_tokens=max_label_tokens)
        for i in range(0, len(order), batch_size)
    ]


def _run_hyperdas(ctx: _Context, seed: int) -> _UnitResult:
    settings = ctx.settings
    config = dataclasses.replace(
        settings.hyperdas, layer=ctx.layer, k=ctx.k, seed=seed, data=ctx.data.config.to_dict()
    )
    train = ctx.batches["train"]
    if settings.hyperdas_batch_size is not None:
        device = next(iter(ctx.model.parameters())).device
        train = [
            b.to(device)
            for b in rebatch(
                ctx.data.examples["train"],
                ctx.model.tokenizer,
                settings.hyperdas_batch_size,
                seed=seed,
                max_label_tokens=settings.max_label_tokens,
            )
        ]
    hyperdas = HyperDAS(ctx.model, config)
    trained = train_hyperdas(
        hyperdas,
        train,
        hyperdas.config,
        val_batches=ctx.batches[settings.val_split],
        progress=settings.show_progress,
    )
    interventions = {
        f"HyperDAS ({mode})": hyperdas_intervention(hyperdas, mode) for mode in SELECTION_MODES
    }
    curves = {
        "config": hyperdas.config.to_dict(),
        "steps": trained.steps,
        "history": trained.history,
    }
    return _UnitResult(interventions, curves)


def _run_unit(ctx: _Context, method: str, seed: int | None) -> _UnitResult:
    if method == "no intervention":
        return _UnitResult({method: no_intervention}, {})
    if method == "full residual swap":
        return _UnitResult({method: full_residual_swap_intervention(ctx.model, ctx.layer)}, {})
    if method == "random subspace":
        intervention = random_subspace_intervention(ctx.model, ctx.layer, ctx.k, seed=int(seed))  # type: ignore[arg-type]
        return _UnitResult({method: intervention}, {"seed": seed, "k": ctx.k})
    if method == "probe":
        return _run_probe(ctx)
    if method in ("DAS", "MDAS", "DAS (pooled)", "MDAS (pooled)"):
        return _run_das(ctx, method, int(seed))  # type: ignore[arg-type]
    if method == "HyperDAS":
        return _run_hyperdas(ctx, int(seed))  # type: ignore[arg-type]
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def _score_unit(ctx: _Context, result: _UnitResult, seed: int | None) -> list[ExampleRecord]:
    records = []
    for name, intervention in result.interventions.items():
        for split in ctx.splits:
            scored = evaluate(
                ctx.model,
                ctx.batches[split],
                intervention,
                method=name,
                setting=split,
                config=ctx.settings.eval_config,
            )
            records.extend(
                ExampleRecord(
                    method=name,
                    seed=seed,
                    domain=j.domain,
                    split=j.split,
                    attribute=j.attribute,
                    kind=j.kind,
                    mode=j.mode,
                    example_id=j.example_id,
                    base_entity=j.base_entity,
                    correct=j.correct,
                )
                for j in scored.judgements
            )
    return records


# --------------------------------------------------------------------------- layer choice


def choose_layer(
    model: Any,
    data: ExperimentData,
    layers: Sequence[int],
    k: int,
    *,
    settings: CompareSettings | None = None,
    seed: int = 0,
) -> LayerChoice:
    """The candidate layer whose per-attribute DAS (``settings.layer_objective``, a short run:
    ``layer_epochs`` at ``layer_lr``) scores the best teacher-forced Disentangle on
    ``settings.val_split`` (macro over attributes; the shallowest layer on ties). Test splits
    are never read."""
    settings = settings or CompareSettings()
    layers = list(layers)
    if not layers:
        raise ValueError("layers must name at least one candidate layer")
    for layer in layers:
        resid_pre_name(model, layer)
    device = next(iter(model.parameters())).device
    train = [b.to(device) for b in data.batches["train"]]
    val = [b.to(device) for b in _split_batches(data, settings.val_split)]
    attributes = _attributes(data)
    lr = settings.layer_lr if settings.layer_lr is not None else max(settings.das_lrs)
    scoring = EvalConfig(
        modes=("teacher_forced",),
        max_label_tokens=settings.max_label_tokens,
        show_progress=settings.show_progress,
    )
    scores = []
    for layer in layers:
        config = DASConfig(
            layer=layer,
            k=k,
            objective=settings.layer_objective,
            epochs=settings.layer_epochs,
            lr=lr,
            max_label_tokens=settings.max_label_tokens,
            seed=seed,
            show_progress=settings.show_progress,
            batch_size=data.config.batch_size,
        )
        subspaces = train_attribute_subspaces(model, train, val, config, attributes, [lr])
        result = evaluate(
            model, val, subspaces.intervention(model), method=f"DAS L{layer}", config=scoring
        )
        domains = [d for d in result.domains if d.mode == "teacher_forced"]
        values = {m: _mean_present(getattr(d, m) for d in domains) for m in METRICS}
        scores.append(LayerScore(layer=layer, **values))
        logger.info("layer %d: val Disentangle %s", layer, values["disentangle"])
    best = max(
        scores,
        key=lambda s: (-1.0 if s.disentangle is None else s.disentangle, -s.layer),
    )
    return LayerChoice(
        layer=best.layer,
        split=settings.val_split,
        scores=scores,
        settings={
            "objective": settings.layer_objective,
            "epochs": settings.layer_epochs,
            "lr": lr,
            "k": k,
            "seed": seed,
            "attributes": list(attributes),
        },
    )


# --------------------------------------------------------------------------- the pipeline


def _mean_present(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _split_batches(data: ExperimentData, split: str) -> list[InterventionBatch]:
    batches = data.batches.get(split)
    if not batches:
        raise ValueError(f"the data has no {split!r} batches; it has {sorted(data.batches)}")
    return batches


def _attributes(data: ExperimentData) -> tuple[str, ...]:
    present = {e.target_attribute for e in data.examples.get("train", [])}
    attributes = tuple(a for a in data.config.attributes if a in present)
    if not attributes:
        raise ValueError("no training example targets any of the data's attributes")
    return attributes


PER_ATTRIBUTE_METHODS = frozenset({"DAS", "MDAS", "probe"})
"""Methods that learn one subspace per target attribute from its own cause rows."""


def check_attribute_rows(data: ExperimentData, methods: Sequence[str], val_split: str) -> None:
    """Refuse, before any training, data on which a per-attribute method cannot run: every
    target attribute needs cause examples in ``train`` and in ``val_split``."""
    if not PER_ATTRIBUTE_METHODS & set(methods):
        return
    counts = data.counts()
    missing = [
        f"{attribute} has no cause examples in {split!r}"
        for attribute in data.config.attributes
        for split in ("train", val_split)
        if not counts.get(split, {}).get(f"{attribute}/cause")
    ]
    if missing:
        raise ValueError(
            "per-attribute methods (DAS, MDAS, probe) need each attribute's cause rows: "
            + "; ".join(missing)
            + " (raise max_templates / max_entities, or drop the attribute)"
        )


def _fingerprint(
    model: Any, data: ExperimentData, layer: Any, k: int, settings: CompareSettings
) -> dict[str, Any]:
    digest = hashlib.sha1()
    for split in sorted(data.examples):
        digest.update(split.encode())
        for example in data.examples[split]:
            digest.update(example_id(example).encode())
    cfg = model.cfg
    return {
        "model": {
            "name": str(getattr(cfg, "model_name", "")),
            "n_layers": int(cfg.n_layers),
            "d_model": int(cfg.d_model),
            "dtype": precision_name(model_dtype(model)),
        },
        "data": data.config.to_dict(),
        "examples_sha1": digest.hexdigest(),
        "layer": layer,
        "k": k,
        "training": settings.training_dict(),
    }


def _check_run_folder(out: Path, fingerprint: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Create ``run.json`` or check that it describes this run; record this invocation."""
    path = out / RUN_JSON
    expected = json.loads(json.dumps(fingerprint))
    invocations: list[Any] = []
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        previous = saved.get("fingerprint", {})
        if previous != expected:
            changed = sorted(
                key
                for key in set(expected) | set(previous)
                if expected.get(key) != previous.get(key)
            )
            raise ValueError(
                f"{out} holds a different comparison (differs in {changed}); choose another "
                "output folder or delete it"
            )
        invocations = list(saved.get("invocations", []))
    invocations.append(json.loads(json.dumps(metadata, default=str)))
    _atomic_write(path, _json({"fingerprint": expected, "invocations": invocations}))


def compare_methods(
    model: Any,
    data: ExperimentData,
    layer: int | Sequence[int],
    k: int,
    methods: Sequence[str] = DEFAULT_METHODS,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    settings: CompareSettings | None = None,
    out_dir: str | Path | None = None,
    metadata: dict[str, Any] | None = None,
    on_unit: Callable[[str, int | None, float], None] | None = None,
) -> ComparisonReport:
    """Train and score ``methods`` on the same examples of ``data`` (see the module docstring).

    Args:
        model: the frozen TransformerLens target.
        data: batches and examples per split (``train``, ``settings.val_split`` and the
            evaluation splits).
        layer: the intervention layer, or candidate layers to choose from on
            ``settings.val_split`` (:func:`choose_layer`).
        k: subspace dimension of DAS, MDAS, the random control and HyperDAS (probes use at
            most ``k`` and at most their rank).
        methods: names from :data:`METHODS`.
        seeds: seeds of every trained method (deterministic methods run once).
        settings: training, scoring and interval settings.
        out_dir: folder for incremental, resumable outputs (records, curves, summaries).
        metadata: JSON-serialisable notes stored with the run (e.g. the command line).
        on_unit: called as ``on_unit(method, seed, seconds)`` after each (method, seed) that
            ran (not after resumed ones).
    """
    settings = settings or CompareSettings()
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown methods {unknown}; choose from {METHODS}")
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    resid_d = int(model.cfg.d_model)
    if not 1 <= k <= resid_d:
        raise ValueError(f"k must be in [1, d_model={resid_d}], got {k}")
    _split_batches(data, "train")
    _split_batches(data, settings.val_split)
    splits = settings.eval_splits or tuple(s for s in data.batches if s != "train")
    splits = tuple(_order(splits, SPLIT_ORDER))
    for split in splits:
        _split_batches(data, split)
    attributes = _attributes(data)
    check_attribute_rows(data, methods, settings.val_split)
    if any("DAS" in m and m != "HyperDAS" for m in methods) and len(settings.das_lrs) < 3:
        logger.warning(
            "DAS / MDAS choose among %d learning rate(s); RAVEL's protocol wants at least 3",
            len(settings.das_lrs),
        )
    domains = {e.domain for examples in data.examples.values() for e in examples}
    if len(domains) != 1:
        raise ValueError(f"one domain per comparison, got {sorted(domains)}")
    domain = domains.pop()

    metadata = dict(metadata or {})
    out = Path(out_dir) if out_dir is not None else None
    layer_arg: Any = layer if isinstance(layer, int) else [int(x) for x in layer]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        _check_run_folder(out, _fingerprint(model, data, layer_arg, k, settings), metadata)

    layer_choice = None
    if isinstance(layer, int):
        resid_pre_name(model, layer)
        chosen = layer
    else:
        cached = out / LAYER_JSON if out is not None else None
        if cached is not None and cached.exists():
            layer_choice = LayerChoice.from_dict(json.loads(cached.read_text(encoding="utf-8")))
            logger.info("layer choice resumed from %s: layer %d", cached, layer_choice.layer)
        else:
            start = time.perf_counter()
            layer_choice = choose_layer(model, data, layer, k, settings=settings, seed=seeds[0])
            metadata.setdefault("seconds", {})["layer_choice"] = time.perf_counter() - start
            if cached is not None:
                _atomic_write(cached, _json(layer_choice.to_dict()))
        chosen = layer_choice.layer

    device = next(iter(model.parameters())).device
    ctx = _Context(
        model=model,
        data=data,
        batches={s: [b.to(device) for b in bs] for s, bs in data.batches.items()},
        layer=chosen,
        k=k,
        attributes=attributes,
        splits=splits,
        settings=settings,
    )
    records: list[ExampleRecord] = []
    curves: dict[str, Any] = {}
    seconds = metadata.setdefault("seconds", {})
    resumed = []
    for method in methods:
        for seed in seeds if method in SEEDED_METHODS else [None]:
            name = _unit_name(method, seed)
            record_path = out / "records" / f"{name}.jsonl" if out is not None else None
            curve_path = out / "curves" / f"{name}.json" if out is not None else None
            label = f"{method} seed {seed}" if seed is not None else method
            if record_path is not None and record_path.exists():
                records.extend(read_records(record_path))
                if curve_path is not None and curve_path.exists():
                    curves[label] = json.loads(curve_path.read_text(encoding="utf-8"))
                resumed.append(label)
                logger.info("%s: records found in %s, skipped", label, record_path)
                continue
            start = time.perf_counter()
            result = _run_unit(ctx, method, seed)
            unit_records = _score_unit(ctx, result, seed)
            elapsed = time.perf_counter() - start
            unit_curves = {**result.curves, "seconds": elapsed}
            if record_path is not None and curve_path is not None:
                _atomic_write(curve_path, _json(unit_curves))
                _atomic_write(record_path, _records_text(unit_records))  # last: marks it done
            records.extend(unit_records)
            curves[label] = unit_curves
            seconds[label] = elapsed
            logger.info("%s: trained and scored in %.1fs", label, elapsed)
            if on_unit is not None:
                on_unit(method, seed, elapsed)
            del result
    metadata["resumed"] = resumed

    report = build_report(
        records,
        domain=domain,
        layer=chosen,
        k=k,
        methods=methods,
        seeds=seeds,
        splits=splits,
        settings=settings,
        layer_choice=layer_choice,
        curves=curves,
        metadata=metadata,
    )
    if out is not None:
        write_report(report, out)
    return report


def build_report(
    records: Sequence[ExampleRecord],
    *,
    domain: str,
    layer: int,
    k: int,
    methods: Sequence[str],
    seeds: Sequence[int],
    splits: Sequence[str],
    settings: CompareSettings,
    layer_choice: LayerChoice | None = None,
    curves: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> ComparisonReport:
    """Summaries and paired differences of ``records`` (e.g. re-read from ``records.jsonl``)."""
    scored = [name for m in methods for name in scored_names(m)]
    groups: dict[tuple[str, str, str], list[ExampleRecord]] = defaultdict(list)
    for r in records:
        if r.method in scored and r.split in splits:
            groups[(r.method, r.split, r.mode)].append(r)
    scores = []
    for mode in settings.modes:
        for split in splits:
            for method in scored:
                mine = groups.get((method, split, mode))
                if not mine:
                    raise ValueError(f"no records of {method!r} on {split!r} ({mode})")
                scores.append(summarise_method(mine, settings.bootstrap))
    pairs = (
        settings.differences
        if settings.differences is not None
        else tuple(default_differences(scored))
    )
    differences = []
    for a, b in pairs:
        if a not in scored or b not in scored:
            logger.warning("difference %s - %s skipped: a method was not run", a, b)
            continue
        for mode in settings.modes:
            for split in splits:
                differences.append(
                    paired_method_difference(
                        groups[(a, split, mode)], groups[(b, split, mode)], settings.bootstrap
                    )
                )
    return ComparisonReport(
        domain=domain,
        layer=layer,
        k=k,
        methods=tuple(scored),
        seeds=tuple(seeds),
        splits=tuple(splits),
        records=list(records),
        scores=scores,
        differences=differences,
        settings=settings,
        layer_choice=layer_choice,
        curves=dict(curves or {}),
        metadata=dict(metadata or {}),
    )
