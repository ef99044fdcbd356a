"""One DAS / MDAS run's settings (:class:`DASConfig`) and the two objectives."""

from dataclasses import asdict, dataclass
from typing import Any, Literal

from hyperdas_tl.config_dict import check_known_fields

Objective = Literal["das", "mdas"]
OBJECTIVES: tuple[Objective, ...] = ("das", "mdas")


@dataclass
class DASConfig:
    """One DAS / MDAS run."""

    layer: int
    """Intervene at ``blocks.{layer}.hook_resid_pre``."""
    k: int = 16
    """Subspace dimension (columns of the basis)."""
    objective: Objective = "das"
    """``"das"``: cause examples only; ``"mdas"``: cause and isolate examples."""
    epochs: int = 3
    """Passes over the training batches (the most, when ``patience`` stops earlier)."""
    max_steps: int | None = None
    """Stop after this many optimiser steps (None: run every epoch)."""
    lr: float = 1e-3
    """Adam learning rate."""
    max_label_tokens: int = 3
    """Cross-entropy on the first this-many label tokens of each row."""
    seed: int = 0
    """Seeds the basis initialisation and the batch order."""
    show_progress: bool = True
    """Show a tqdm bar over steps."""
    attribute: str | None = None
    """Train only on rows whose example targets this attribute (RAVEL's protocol: one subspace
    per attribute). None pools the rows of every attribute (the "pooled" ablation)."""
    batch_size: int | None = None
    """Rows per step once the objective's (and attribute's) rows are selected: the selected rows
    are regrouped into batches of this size (a per-attribute DAS keeps ~1/4 of each mixed
    batch otherwise). None: the given batches, filtered."""
    patience: int | None = None
    """With validation batches: stop after this many epochs without a better validation
    Disentangle (or, at equal Disentangle, a lower validation loss); the best epoch's basis is
    kept either way. None: run every epoch."""

    def __post_init__(self) -> None:
        if isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < 0:
            raise ValueError(f"layer must be a non-negative int, got {self.layer!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.max_label_tokens < 1:
            raise ValueError(f"max_label_tokens must be >= 1, got {self.max_label_tokens}")
        if self.attribute is not None and (
            not isinstance(self.attribute, str) or not self.attribute
        ):
            raise ValueError(
                f"attribute must be a non-empty string or None, got {self.attribute!r}"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")
        if self.patience is not None and (isinstance(self.patience, bool) or self.patience < 1):
            raise ValueError(f"patience must be >= 1 or None, got {self.patience!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DASConfig":
        check_known_fields(cls, data)
        return cls(**data)
