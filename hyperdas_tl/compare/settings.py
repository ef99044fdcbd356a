"""How a comparison trains, scores and summarises: :class:`CompareSettings`, and the paired
differences it reports by default."""

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from hyperdas_tl.baselines.das import OBJECTIVES, Objective
from hyperdas_tl.compare.methods import (
    HYPERDAS_ENTITY_POSITION,
    HYPERDAS_METHODS,
    NO_INTERVENTION,
)
from hyperdas_tl.config_dict import check_known_fields
from hyperdas_tl.hyperdas.config import HyperDASConfig
from hyperdas_tl.metrics import JUDGE_MODES, EvalConfig, JudgeMode
from hyperdas_tl.stats import BootstrapConfig


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
        if len(set(self.das_lrs)) != len(self.das_lrs):
            raise ValueError(f"das_lrs repeat a learning rate: {self.das_lrs}")
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
        check_known_fields(cls, data)
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
    read-out minus MDAS and minus DAS, soft minus one-to-one, the entity-position ablation
    minus MDAS, DAS and each read-out, and every trained method (DAS, MDAS, each HyperDAS
    read-out, the ablation) minus the no-op (has it done anything at all?)."""
    present = set(methods)
    pairs = [
        (hyperdas, baseline)
        for hyperdas in HYPERDAS_METHODS
        for baseline in ("MDAS", "DAS")
        if hyperdas in present and baseline in present
    ]
    if {"HyperDAS (soft)", "HyperDAS (one_to_one)"} <= present:
        pairs.append(("HyperDAS (soft)", "HyperDAS (one_to_one)"))
    if HYPERDAS_ENTITY_POSITION in present:
        pairs += [
            (HYPERDAS_ENTITY_POSITION, other)
            for other in ("MDAS", "DAS", *HYPERDAS_METHODS)
            if other in present
        ]
    if NO_INTERVENTION in present:
        pairs += [
            (method, NO_INTERVENTION)
            for method in ("DAS", "MDAS", *HYPERDAS_METHODS, HYPERDAS_ENTITY_POSITION)
            if method in present
        ]
    return pairs
