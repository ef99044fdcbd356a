"""Everything a comparison produced (:class:`ComparisonReport`): ``summary.json`` (the schema of
issue 13), ``details.json``, markdown tables; :func:`build_report` makes one from records and
:func:`write_report` writes it."""

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperdas_tl.compare.layer_choice import LayerChoice
from hyperdas_tl.compare.methods import scored_names
from hyperdas_tl.compare.records import ExampleRecord, records_bytes
from hyperdas_tl.compare.run_folder import (
    DETAILS_JSON,
    RECORDS_JSONL,
    json_text,
    write_binary_file,
    write_file,
)
from hyperdas_tl.compare.scores import (
    METRICS,
    MethodScore,
    PairedDifference,
    paired_method_difference,
    summarise_method,
)
from hyperdas_tl.compare.settings import CompareSettings, default_differences
from hyperdas_tl.stats import Interval, SeedSpread

logger = logging.getLogger(__name__)


def _interval_cell(interval: Interval | None) -> dict[str, float] | None:
    if interval is None:
        return None
    return {"mean": interval.mean, "lo": interval.lo, "hi": interval.hi}


def format_interval(interval: Interval | None) -> str:
    """``"0.470 [0.382, 0.560]"``, or ``"—"`` for no interval (the tables' cell format)."""
    if interval is None:
        return "—"
    return f"{interval.mean:.3f} [{interval.lo:.3f}, {interval.hi:.3f}]"


def _fmt_spread(spread: SeedSpread | None) -> str:
    if spread is None:
        return "—"
    sd = "—" if spread.sd is None else f"{spread.sd:.3f}"
    return f"{spread.mean:.3f} ± {sd}"


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
            "paired 95 % interval of A − B (Disentangle) excludes 0 and no seed's own paired "
            "interval lies on the other side of 0 (else: no consistent difference).",
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
                    f"| {s.method} | {len(s.seeds) or '—'} | {format_interval(s.pooled.cause)} "
                    f"| {format_interval(s.pooled.isolate)} "
                    f"| {format_interval(s.pooled.disentangle)} "
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
                        format_interval(None if attribute is None else attribute.cause),
                        format_interval(None if attribute is None else attribute.isolate),
                    ]
                lines.append(f"| {s.method} | " + " | ".join(cells) + " |")
            differences = [d for d in self.differences if d.split == split and d.mode == mode]
            if differences:
                lines += [
                    "",
                    "| A − B (paired) | Δ Cause | Δ Isolate | Δ Disentangle | Δ Disentangle "
                    "per seed | decision |",
                    "|---|---|---|---|---|---|",
                ]
                for d in differences:
                    seeds = "; ".join(
                        f"{seed}: {format_interval(v)}" for seed, v in d.per_seed.items()
                    )
                    lines.append(
                        f"| {d.name} | {format_interval(d.cause)} | {format_interval(d.isolate)} "
                        f"| {format_interval(d.disentangle)} | {seeds or '—'} | {d.decision} |"
                    )
        return "\n".join(lines) + "\n"


def write_report(report: ComparisonReport, out_dir: str | Path) -> None:
    """``summary.json`` (first judging mode; ``summary_<mode>.json`` for the others),
    ``details.json``, ``records.jsonl.gz`` and ``summary.md`` (+ ``summary_<mode>.md``), each
    written atomically."""
    out = Path(out_dir)
    for index, mode in enumerate(report.modes):
        suffix = "" if index == 0 else f"_{mode}"
        write_file(out / f"summary{suffix}.json", json_text(report.summary(mode)))
        write_file(out / f"summary{suffix}.md", report.to_markdown(mode))
    write_file(out / DETAILS_JSON, json_text(report.details()))
    write_binary_file(out / RECORDS_JSONL, records_bytes(report.records))


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
    """Summaries and paired differences of ``records`` (e.g. re-read from ``records.jsonl.gz``)."""
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
