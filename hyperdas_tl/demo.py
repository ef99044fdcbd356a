"""The main job (``make demo``): HyperDAS beside a no-op and per-attribute DAS, with intervals.

One call of :func:`hyperdas_tl.compare.compare_methods` on the offline GeoNames city data
(Country + Continent, SmolLM2-135M): ``"no intervention"``, RAVEL-protocol ``"DAS"`` (one
subspace per attribute, learning rate and epoch chosen on validation) and ``"HyperDAS"`` (its
three read-outs), all on the same examples, every score with a 95 % cluster-bootstrap interval
and the paired differences HyperDAS − no-op and HyperDAS − DAS. Beside them, the Cause a
constant answer reaches on the same test examples (:func:`majority_label_rate`): a method that
does not beat it on Cause has not shown that it moves the attribute.

The read-out reported as HyperDAS's best is chosen on the validation split, never on the test
split, and the verdicts follow the README's decision rule (an interval must exclude the bar).
"""

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hyperdas_tl.atomic_write import write_text_atomically
from hyperdas_tl.compare import (
    HYPERDAS_METHODS,
    NO_INTERVENTION,
    SUMMARY_JSON,
    CompareSettings,
    ComparisonReport,
    compare_methods,
)
from hyperdas_tl.experiment import DataConfig, ExperimentData
from hyperdas_tl.faithfulness import majority_label_rate
from hyperdas_tl.hyperdas.config import HyperDASConfig
from hyperdas_tl.target import TargetModel

logger = logging.getLogger(__name__)

DEMO_METHODS = ("no intervention", "DAS", "HyperDAS")
DEMO_MD = "demo.md"


def demo_data_config() -> DataConfig:
    """The demo's data: enough entities and every template, so that each test cell holds
    about 50 examples spread over about 25 held-out cities."""
    return DataConfig(
        source="geonames",
        attributes=("Country", "Continent"),
        instance_attributes=("Country", "Continent"),
        max_entities=120,
        max_templates=8,
        train_pairs=256,
        eval_pairs=96,
        batch_size=16,
    )


def demo_compare_settings() -> CompareSettings:
    """DAS as RAVEL trains it (three learning rates, epochs until validation stops improving),
    HyperDAS at the size chosen by measurement (README, "The demo")."""
    return CompareSettings(
        val_split="val_entity",
        eval_splits=("val_entity", "test_entity"),
        das_lrs=(3e-3, 1e-2, 3e-2),
        das_max_epochs=4,
        das_patience=1,
        hyperdas=HyperDASConfig.build(
            n_hypernet_layers=2, n_steps=100, lr=3e-4, head_lr=1e-3, null_init_weight=0.5,
            eval_every=50,
        ),
    )  # fmt: skip


@dataclass
class DemoConfig:
    """What the demo runs: data, layer, rank, seeds and the comparison's settings."""

    data: DataConfig = field(default_factory=demo_data_config)
    layer: int = 6
    k: int = 32
    seeds: tuple[int, ...] = (0,)
    settings: CompareSettings = field(default_factory=demo_compare_settings)
    test_split: str = "test_entity"
    """Split the verdicts are read on (the validation split chooses the best read-out)."""

    def __post_init__(self) -> None:
        self.seeds = tuple(int(s) for s in self.seeds)
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        splits = self.settings.eval_splits or ()
        for split in (self.settings.val_split, self.test_split):
            if split not in splits:
                raise ValueError(f"the demo scores {split!r}; add it to settings.eval_splits")
        if not self.test_split.startswith("test"):
            raise ValueError(f"test_split must be a test split, got {self.test_split!r}")
        differences = [
            pair for mode in HYPERDAS_METHODS for pair in ((mode, NO_INTERVENTION), (mode, "DAS"))
        ]
        self.settings = replace(self.settings, differences=tuple(differences))


@dataclass
class Verdict:
    """One claim of the demo, decided by an interval."""

    claim: str
    interval: tuple[float, float, float] | None
    """(mean, lo, hi) of what the claim is about."""
    bar: float = 0.0
    """The claim holds when the interval's lower end is above this."""

    @property
    def holds(self) -> bool:
        return self.interval is not None and self.interval[1] > self.bar

    def text(self) -> str:
        if self.interval is None:
            return f"{self.claim}: not measured"
        mean, lo, hi = self.interval
        word = "yes" if self.holds else "no"
        return f"{self.claim}: {word} ({mean:.3f} [{lo:.3f}, {hi:.3f}])"


@dataclass
class DemoResult:
    """The comparison, the constant-answer bar and the verdicts."""

    report: ComparisonReport
    best_readout: str
    """HyperDAS read-out with the highest Disentangle on the validation split."""
    constant_cause: dict[str, float]
    """``{split: Cause of the best constant answer}`` on the scored examples."""
    verdicts: list[Verdict]
    test_split: str
    """Split the verdicts were read on."""

    @property
    def shows_effect(self) -> bool:
        return all(v.holds for v in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_readout": self.best_readout,
            "constant_cause": self.constant_cause,
            "verdicts": [
                {"claim": v.claim, "interval": v.interval, "holds": v.holds} for v in self.verdicts
            ],
            "shows_effect": self.shows_effect,
        }

    def to_markdown(self) -> str:
        split = self.test_split
        lines = [
            self.report.to_markdown().rstrip(),
            "",
            f"## The demo's verdicts ({split})",
            "",
            f"Best HyperDAS read-out on {self.report.settings.val_split} (Disentangle): "
            f"{self.best_readout}.",
            f"Cause of the best constant answer on {split}: {self.constant_cause[split]:.3f}.",
            "",
            *[f"- {v.text()}" for v in self.verdicts],
        ]
        return "\n".join(lines) + "\n"


def _interval(cell: Any) -> tuple[float, float, float] | None:
    if cell is None:
        return None
    return (float(cell.mean), float(cell.lo), float(cell.hi))


def demo_verdicts(
    report: ComparisonReport, constant_cause: float, test_split: str
) -> tuple[str, list[Verdict]]:
    """Pick the best read-out on validation; decide on ``test_split`` whether it beats the
    no-op's Disentangle (paired interval above 0), the constant answer's Cause (interval above
    the bar) and DAS's Disentangle (paired interval above 0)."""
    val = report.settings.val_split
    readouts = [m for m in HYPERDAS_METHODS if m in report.methods]
    if not readouts:
        raise ValueError("the report holds no HyperDAS read-out")

    def val_disentangle(method: str) -> float:
        cell = report.score(method, val).pooled.disentangle
        return -1.0 if cell is None else cell.mean

    best = max(readouts, key=val_disentangle)
    cause = _interval(report.score(best, test_split).pooled.cause)
    verdicts = [
        Verdict(
            f"{best} Disentangle above the no-op's (paired)",
            _interval(report.difference(f"{best} - {NO_INTERVENTION}", test_split).disentangle),
        ),
        Verdict(
            f"{best} Cause above the constant answer's {constant_cause:.3f}", cause, constant_cause
        ),
    ]
    if "DAS" in report.methods:
        verdicts.append(
            Verdict(
                f"{best} Disentangle above DAS's (paired)",
                _interval(report.difference(f"{best} - DAS", test_split).disentangle),
            )
        )
    return best, verdicts


def run_demo(
    model: TargetModel,
    data: ExperimentData,
    config: DemoConfig,
    *,
    out_dir: str | Path | None = None,
    metadata: dict[str, Any] | None = None,
) -> DemoResult:
    """Compare the demo's methods on ``data`` (built from ``config.data``) and decide."""
    splits = config.settings.eval_splits or ()
    for split in splits:
        if not data.batches.get(split):
            raise ValueError(f"the data has no {split!r} examples")
    constant = {split: majority_label_rate(data.batches[split]) for split in splits}
    report = compare_methods(
        model,
        data,
        config.layer,
        config.k,
        DEMO_METHODS,
        config.seeds,
        settings=config.settings,
        out_dir=out_dir,
        metadata=metadata,
    )
    best, verdicts = demo_verdicts(report, constant[config.test_split], config.test_split)
    result = DemoResult(report, best, constant, verdicts, config.test_split)
    logger.info("demo: %s", "; ".join(v.text() for v in verdicts))
    if out_dir is not None:
        out = Path(out_dir)
        write_text_atomically(out / DEMO_MD, result.to_markdown())
        summary = report.summary()  # what compare_methods wrote to summary.json, plus the demo's
        summary["demo"] = result.to_dict()
        if metadata and "provenance" in metadata:
            summary["provenance"] = metadata["provenance"]  # what `reproduce` re-runs
        text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
        write_text_atomically(out / SUMMARY_JSON, text)
    return result
