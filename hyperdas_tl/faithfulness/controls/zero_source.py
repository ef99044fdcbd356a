"""Zero source: the hypernetwork and the interchange see the source's states zeroed; the label
cannot come from the source, so Cause must collapse."""

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.faithfulness.result_dict import NOT_IN_DICT, ResultDict
from hyperdas_tl.faithfulness.scoring import (
    Score,
    majority_label_rate,
    score_hyperdas,
    teacher_forced_judgements,
    teacher_forced_result,
)
from hyperdas_tl.hyperdas.config import SelectionMode, check_selection_mode
from hyperdas_tl.hyperdas.model import HyperDAS, TargetStates
from hyperdas_tl.metrics import EvalResult


@dataclass
class ZeroSourceResult(ResultDict):
    """HyperDAS with the source's states zeroed for the hypernetwork and the interchange."""

    selection_mode: str
    hyperdas: Score
    zero_source: Score
    finite: bool
    """Whether every zero-source logit was finite."""
    majority_label_rate: float = 0.0
    """Cause of the best constant answer (:func:`majority_label_rate`): what falling back to a
    prior reaches without any source."""
    results: list[EvalResult] = field(default_factory=list, repr=False, metadata=NOT_IN_DICT)
    """HyperDAS's and the control's per-attribute results."""


@torch.no_grad()
def zero_source_control(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    *,
    selection_mode: SelectionMode = "soft",
    states: Sequence[TargetStates] | None = None,
    reference: EvalResult | None = None,
    max_label_tokens: int = 3,
) -> ZeroSourceResult:
    """Cause with the source's residual states zeroed (expect ≈ 0: the answer must come from
    the source, not from the hypernetwork)."""
    check_selection_mode(selection_mode)
    judgements, finite = teacher_forced_judgements(
        hyperdas, batches, selection_mode, states, True, None, max_label_tokens
    )
    control = teacher_forced_result(f"zero source ({selection_mode})", judgements)
    if reference is None:
        reference = score_hyperdas(
            hyperdas, batches, selection_mode, states=states, max_label_tokens=max_label_tokens
        )
    return ZeroSourceResult(
        selection_mode=selection_mode,
        hyperdas=Score.of(reference),
        zero_source=Score.of(control),
        finite=finite,
        majority_label_rate=majority_label_rate(batches),
        results=[reference, control],
    )
