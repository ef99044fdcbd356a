"""HyperDAS's teacher-forced scores on a set of batches, the reference every control is measured
against, and the shared machinery the controls score through.

Every Cause/Isolate here is teacher forced (:mod:`hyperdas_tl.metrics`'s convention: the first
``max_label_tokens`` label tokens must all be the argmax), judged on the logits of
:meth:`HyperDAS.forward` rather than through a second hooked forward: the two are the same run
(``tests/hyperdas/test_intervention.py``), and the target's states of a batch can then be computed
once (:func:`target_states_for`) and shared by every control through ``states=``.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.faithfulness.checks import check_batches, check_states
from hyperdas_tl.faithfulness.result_dict import ResultDict
from hyperdas_tl.hyperdas.config import SELECTION_MODES, SelectionMode, check_selection_mode
from hyperdas_tl.hyperdas.intervention import BasisTransform
from hyperdas_tl.hyperdas.model import HyperDAS, TargetStates, check_batch
from hyperdas_tl.metrics import (
    EvalResult,
    Judgement,
    batch_judgements,
    mean_present,
    summarise,
    teacher_forced_correct,
)
from hyperdas_tl.models import module_device


@dataclass(frozen=True)
class Score(ResultDict):
    """Teacher-forced Cause / Isolate / Disentangle, macro-averaged over target attributes (each
    ``None`` where no example of that kind was scored)."""

    cause: float | None
    isolate: float | None
    disentangle: float | None
    n_cause: int
    n_isolate: int

    @classmethod
    def of(cls, result: EvalResult) -> "Score":
        """The macro average of ``result``'s teacher-forced attribute scores."""
        scores = [s for s in result.attributes if s.mode == "teacher_forced"]
        if not scores:
            raise ValueError(f"{result.method!r} has no teacher-forced scores")

        cause = mean_present(s.cause for s in scores)
        isolate = mean_present(s.isolate for s in scores)
        both = cause is not None and isolate is not None
        return cls(
            cause=cause,
            isolate=isolate,
            disentangle=(cause + isolate) / 2 if both else None,  # type: ignore[operator]
            n_cause=sum(s.n_cause for s in scores),
            n_isolate=sum(s.n_isolate for s in scores),
        )


@torch.no_grad()
def target_states_for(
    hyperdas: HyperDAS, batches: Sequence[InterventionBatch]
) -> list[TargetStates]:
    """The frozen target's states of every batch (pass them as ``states=`` to share them between
    controls; each holds every ``hook_resid_pre`` of base and source)."""
    check_batches(batches)
    device = module_device(hyperdas.target)
    return [hyperdas.target_states(batch.to(device)) for batch in batches]


@torch.no_grad()
def intervened_logits(
    hyperdas: HyperDAS,
    batch: InterventionBatch,
    selection_mode: SelectionMode = "soft",
    *,
    states: TargetStates | None = None,
    zero_source: bool = False,
    basis_override: BasisTransform | None = None,
) -> Float[Tensor, "batch base_pos d_vocab"]:
    """Logits of the base run under HyperDAS (or one of its control variants).

    Args:
        hyperdas: the (trained) HyperDAS.
        batch: the examples (on the target's device).
        selection_mode: the read-out.
        states: the target's states of ``batch`` (computed when None).
        zero_source: hypernetwork and interchange see the source's states zeroed
            (:func:`hyperdas_tl.hyperdas.intervention.hyperdas_intervention`'s control).
        basis_override: ``R(e) -> basis`` used by the interchange instead of ``R(e)``; the
            selection is HyperDAS's own.
    """
    check_selection_mode(selection_mode)
    states = states if states is not None else hyperdas.target_states(batch)
    if zero_source:
        states = states.with_zeroed_source()
    if basis_override is None:
        return hyperdas(batch, selection_mode, states=states).logits
    # HyperDAS.forward with R(e) swapped between its weights and its intervened pass
    check_batch(batch, hyperdas.target)
    weights = hyperdas.intervention_weights(batch, states, selection_mode)
    weights.check_finite()
    weights = replace(weights, basis=basis_override(weights.basis))
    return hyperdas.intervene(batch, states, weights)


@torch.no_grad()
def score_hyperdas(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    selection_mode: SelectionMode = "soft",
    *,
    method: str | None = None,
    states: Sequence[TargetStates] | None = None,
    zero_source: bool = False,
    basis_override: BasisTransform | None = None,
    max_label_tokens: int = 3,
) -> EvalResult:
    """Teacher-forced Cause/Isolate of HyperDAS (or a control variant, see
    :func:`intervened_logits`) on ``batches``: the verdicts of
    ``metrics.evaluate(target, batches, hyperdas_intervention(...), config=EvalConfig(
    modes=("teacher_forced",)))``, reusing ``states`` when given."""
    judgements, _ = teacher_forced_judgements(
        hyperdas, batches, selection_mode, states, zero_source, basis_override, max_label_tokens
    )
    return teacher_forced_result(
        method or f"HyperDAS ({selection_mode})",
        judgements,
        metadata={"layer": hyperdas.layer, "k": hyperdas.k},
    )


def teacher_forced_result(
    method: str, judgements: list[Judgement], metadata: dict[str, Any] | None = None
) -> EvalResult:
    """The :class:`EvalResult` of teacher-forced ``judgements`` (setting: their splits)."""
    attributes, domains = summarise(judgements)
    return EvalResult(
        method=method,
        setting="+".join(sorted({j.split for j in judgements})),
        modes=("teacher_forced",),
        attributes=attributes,
        domains=domains,
        metadata=metadata or {},
    )


def teacher_forced_judgements(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    selection_mode: SelectionMode,
    states: Sequence[TargetStates] | None,
    zero_source: bool,
    basis_override: BasisTransform | None,
    max_label_tokens: int,
) -> tuple[list[Judgement], bool]:
    """Teacher-forced verdicts of every row under :func:`intervened_logits`, and whether every
    logit was finite."""
    check_batches(batches, need_examples=True)
    check_states(states, batches)
    device = module_device(hyperdas.target)
    finite = True
    judgements: list[Judgement] = []
    for index, batch in enumerate(batches):
        batch = batch.to(device)
        logits = intervened_logits(
            hyperdas,
            batch,
            selection_mode,
            states=None if states is None else states[index],
            zero_source=zero_source,
            basis_override=basis_override,
        )
        finite = finite and bool(torch.isfinite(logits).all())
        correct = teacher_forced_correct(logits, batch.labels, max_label_tokens)
        judgements.extend(batch_judgements(batch, "teacher_forced", correct))
    return judgements, finite


def hyperdas_scores(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    *,
    selection_modes: Sequence[SelectionMode] = SELECTION_MODES,
    states: Sequence[TargetStates] | None = None,
    max_label_tokens: int = 3,
) -> dict[str, EvalResult]:
    """``{read-out: EvalResult}``: HyperDAS's own teacher-forced scores (the reference of the
    controls; pass one as ``reference=`` to avoid scoring it again)."""
    return {
        mode: score_hyperdas(
            hyperdas, batches, mode, states=states, max_label_tokens=max_label_tokens
        )
        for mode in selection_modes
    }


def majority_label_rate(batches: Sequence[InterventionBatch]) -> float:
    """The Cause a constant answer would reach: per target attribute, the share of its cause
    examples whose label is the attribute's most frequent cause label, macro-averaged (fitted on
    these very examples, so an upper bound for any source-blind predictor of one answer). A
    control that must not see the source can reach this much by falling back to a prior."""
    check_batches(batches, need_examples=True)
    labels: dict[str, Counter] = {}
    for batch in batches:
        for e in batch.examples:
            if e.is_cause:
                labels.setdefault(e.target_attribute, Counter())[e.label.strip().lower()] += 1
    if not labels:
        return 0.0
    shares = [c.most_common(1)[0][1] / sum(c.values()) for c in labels.values()]
    return sum(shares) / len(shares)
