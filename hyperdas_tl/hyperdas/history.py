"""One record per HyperDAS training step: :class:`TrainingStep`.

:func:`~hyperdas_tl.hyperdas.train.train_hyperdas` returns them (``TrainResult.history``) and a
training checkpoint keeps them (``trainer_state.json``), so a resumed run continues the same
history. ``to_dict`` leaves out the validation accuracy of steps that did not evaluate, as the
JSON files always have.
"""

from dataclasses import asdict, dataclass
from typing import Any

from hyperdas_tl.config_dict import check_known_fields


@dataclass(frozen=True)
class TrainingStep:
    """What one optimiser step did."""

    step: int
    """Steps completed after this one (1 for the first)."""
    loss: float
    """The total loss of the step's batch."""
    ce: float
    """Its weighted label cross-entropy."""
    sparsity: float
    """Its sparsity penalty (before weighting)."""
    sparsity_weight: float
    """The weight of the sparsity penalty at this step (the schedule's value)."""
    grad_norm: float
    """Global gradient norm before clipping."""
    running_loss: float
    """Exponential moving average of ``loss`` (decay 0.9), carried across a resume."""
    val_cause: float | None = None
    """Teacher-forced Cause on the validation slice (None: not evaluated at this step, or no
    cause examples)."""
    val_isolate: float | None = None
    """Teacher-forced Isolate on the validation slice (idem)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the validation keys only where they were measured."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingStep":
        """Inverse of :meth:`to_dict`; unknown keys raise."""
        check_known_fields(cls, data, comma_separated=True)
        return cls(
            step=int(data["step"]),
            **{k: float(v) for k, v in data.items() if k != "step" and v is not None},
        )
