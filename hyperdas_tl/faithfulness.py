"""Faithfulness controls: does HyperDAS *find* the concept in the target, or *inject* it?

A hypernetwork that reads the source text could learn to write the counterfactual label into the
base run itself, whatever the target computes. Each control below removes one way the label
could legitimately reach the base run and checks that HyperDAS's success goes with it:

- :func:`source_equals_base_control`: the source is the base prompt itself, so an interchange
  has nothing new to bring; the predictions must stay the model's own (exactly so wherever the
  selection only mixes a base position with its own state).
- :func:`random_subspace_control`: HyperDAS's selection, but ``R(e)`` replaced by a random
  orthonormal basis of the same ``k``: Cause must drop far below HyperDAS's.
- :func:`zero_source_control`: the hypernetwork and the interchange see the source's states
  zeroed; the label cannot come from the source, so Cause must collapse.
- :func:`nonsense_source_control`: the source entity replaced by a name the model does not know
  ("Zorblaxia"); the run must not produce the *original* counterfactual label.
- :func:`random_target_control`: the same HyperDAS (same config, same steps) trained against a
  random-init copy of the target (same architecture and tokenizer, no knowledge); its Cause must
  stay far below the real model's.

And three descriptions of what HyperDAS learned: :func:`selection_statistics` (how much selection
mass lands on entity tokens, which tokens are picked), :func:`soft_hard_gap` (Cause/Isolate of
the soft read-out minus the hard ones) and :func:`householder_vectors` (the reflection vectors
``v(e)`` per attribute, with a 2-D PCA projection).

Scoring. Every Cause/Isolate here is teacher forced (:mod:`hyperdas_tl.metrics`'s convention: the
first ``max_label_tokens`` label tokens must all be the argmax), judged on the logits of
:meth:`HyperDAS.forward` rather than through a second hooked forward: the two are the same run
(``tests/hyperdas/test_intervention.py``), and the target's states of a batch can then be computed
once (:func:`target_states_for`) and shared by every control through ``states=``.
"""

import copy
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from hyperdas_tl.data.batching import (
    InterventionBatch,
    collate_examples,
    entity_token_positions,
    judged_label_positions,
)
from hyperdas_tl.hooks import soft_interchange_hook_for
from hyperdas_tl.hyperdas.config import SELECTION_MODES, SelectionMode
from hyperdas_tl.hyperdas.model import HyperDAS, TargetStates
from hyperdas_tl.hyperdas.selection import read_out
from hyperdas_tl.hyperdas.subspace import orthonormality_error
from hyperdas_tl.hyperdas.train import train_hyperdas
from hyperdas_tl.interchange import random_orthonormal_basis
from hyperdas_tl.metrics import (
    EvalResult,
    Judgement,
    batch_judgements,
    summarise,
    teacher_forced_correct,
)
from hyperdas_tl.partial_forward import resid_stream_states, run_from_layer

BasisTransform = Callable[[Tensor], Tensor]
HypernetworkInit = Literal["real", "random"]

OWN_MASS_ATOL = 1e-4
"""An example whose own_state_mass is within this of 1 must keep its predictions."""
DEFAULT_NONSENSE = "Zorblaxia"
"""A name no model knows (nonsense-source control)."""


# --------------------------------------------------------------------------- scores


@dataclass(frozen=True)
class Score:
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

        def mean(values: list[float | None]) -> float | None:
            present = [v for v in values if v is not None]
            return sum(present) / len(present) if present else None

        cause = mean([s.cause for s in scores])
        isolate = mean([s.isolate for s in scores])
        both = cause is not None and isolate is not None
        return cls(
            cause=cause,
            isolate=isolate,
            disentangle=(cause + isolate) / 2 if both else None,  # type: ignore[operator]
            n_cause=sum(s.n_cause for s in scores),
            n_isolate=sum(s.n_isolate for s in scores),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_batches(batches: Sequence[InterventionBatch], *, need_examples: bool = False) -> None:
    if not batches:
        raise ValueError("batches is empty: the controls need at least one batch of examples")
    if need_examples:
        for batch in batches:
            if len(batch.examples) != len(batch):
                raise ValueError(
                    f"a batch carries {len(batch.examples)} InterventionExamples for {len(batch)} "
                    "rows; this control needs the examples (build batches with collate_examples)"
                )


def _check_mode(mode: str) -> None:
    if mode not in SELECTION_MODES:
        raise ValueError(f"selection_mode must be one of {SELECTION_MODES}, got {mode!r}")


def _check_states(
    states: Sequence[TargetStates] | None, batches: Sequence[InterventionBatch]
) -> None:
    if states is not None and len(states) != len(batches):
        raise ValueError(f"got {len(states)} precomputed states for {len(batches)} batches")


def _device(hyperdas: HyperDAS) -> torch.device:
    return next(hyperdas.target.parameters()).device


@torch.no_grad()
def target_states_for(
    hyperdas: HyperDAS, batches: Sequence[InterventionBatch]
) -> list[TargetStates]:
    """The frozen target's states of every batch (pass them as ``states=`` to share them between
    controls; each holds every ``hook_resid_pre`` of base and source)."""
    _check_batches(batches)
    device = _device(hyperdas)
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
    _check_mode(selection_mode)
    states = states if states is not None else hyperdas.target_states(batch)
    if zero_source:
        states = states.with_zeroed_source()
    output = hyperdas(batch, selection_mode, states=states)
    if basis_override is None:
        return output.logits
    layer = hyperdas.layer
    basis = basis_override(output.basis)
    hook = soft_interchange_hook_for(
        hyperdas.target, layer, states.source.at(layer), output.selection, basis
    )
    with hyperdas.target.hooks(fwd_hooks=[hook]):
        return run_from_layer(
            hyperdas.target, states.base.at(layer), layer, batch.base_attention_mask
        )


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
    judgements, _ = _teacher_forced_judgements(
        hyperdas, batches, selection_mode, states, zero_source, basis_override, max_label_tokens
    )
    attributes, domains = summarise(judgements)
    splits = sorted({j.split for j in judgements})
    return EvalResult(
        method=method or f"HyperDAS ({selection_mode})",
        setting="+".join(splits),
        modes=("teacher_forced",),
        attributes=attributes,
        domains=domains,
        metadata={"layer": hyperdas.layer, "k": hyperdas.config.k},
    )


def _teacher_forced_judgements(
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
    _check_batches(batches, need_examples=True)
    _check_states(states, batches)
    device = _device(hyperdas)
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
    selection_modes: Sequence[SelectionMode] = SELECTION_MODES,  # type: ignore[assignment]
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
    _check_batches(batches, need_examples=True)
    labels: dict[str, Counter] = {}
    for batch in batches:
        for e in batch.examples:
            if e.is_cause:
                labels.setdefault(e.target_attribute, Counter())[e.label.strip().lower()] += 1
    if not labels:
        return 0.0
    shares = [c.most_common(1)[0][1] / sum(c.values()) for c in labels.values()]
    return sum(shares) / len(shares)


# --------------------------------------------------------------------------- source == base


def source_equals_base_batch(batch: InterventionBatch, *, pad_id: int = 0) -> InterventionBatch:
    """``batch`` with every source replaced by its own base prompt: ``source_ids`` = the prompt
    part of ``base_ids`` (label tokens dropped), masks = the base's intervenable positions,
    ``source_entity_last = base_entity_last``, examples with ``source_prompt/source_entity`` =
    the base's. ``pad_id`` fills the (masked) padding."""
    n_prompt = batch.base_intervenable.long().sum(dim=1)
    if bool((n_prompt == 0).any()):
        raise ValueError("every base row needs at least one prompt (intervenable) position")
    width = int(n_prompt.max())
    mask = batch.base_intervenable[:, :width].bool()
    ids = torch.where(
        mask, batch.base_ids[:, :width], torch.full_like(mask, pad_id, dtype=torch.long)
    )
    return replace(
        batch,
        source_ids=ids,
        source_attention_mask=mask.long(),
        source_intervenable=mask.clone(),
        source_entity_last=batch.base_entity_last.clone(),
        examples=[
            replace(e, source_prompt=e.base_prompt, source_entity=e.base_entity)
            for e in batch.examples
        ],
    )


def own_state_mass(
    selection: Float[Tensor, "batch src_pos_plus_null base_pos"],
    base_mask: Bool[Tensor, "batch base_pos"],
) -> Float[Tensor, " batch"]:
    """Per example, the mean over intervenable base positions ``j`` of ``A[null, j] + A[j, j]``:
    how much of each base position reads its own state when source == base. 1 means the
    interchange leaves the run exactly unchanged."""
    src_pos, base_pos = selection.shape[1] - 1, selection.shape[2]
    n = min(src_pos, base_pos)
    own = selection[:, -1].clone()
    diagonal = torch.diagonal(selection[:, :n, :n], dim1=1, dim2=2)
    own[:, :n] = own[:, :n] + diagonal
    mask = base_mask.bool().to(own.dtype)
    return (own * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)


@dataclass
class SourceEqualsBaseResult:
    """Source == base: fraction of examples whose judged predictions did not change."""

    unchanged: dict[str, float]
    """``{read-out: fraction}`` of examples whose argmax at every judged label position equals
    the unintervened run's."""
    own_state_mass: dict[str, float]
    """``{read-out: mean own_state_mass}`` (1 = provably unchanged)."""
    max_logit_change: dict[str, float]
    """``{read-out: max |Δ logit|}`` at the judged positions."""
    unexplained_changes: dict[str, int]
    """``{read-out: n}`` examples whose predictions changed although their selection only mixed
    same-position states (own_state_mass = 1): must be 0, whatever HyperDAS learned."""
    n_examples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def source_equals_base_control(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    *,
    selection_modes: Sequence[SelectionMode] = SELECTION_MODES,  # type: ignore[assignment]
    states: Sequence[TargetStates] | None = None,
    max_label_tokens: int = 3,
) -> SourceEqualsBaseResult:
    """Replace every source by its own base prompt (:func:`source_equals_base_batch`) and count
    the examples whose predictions equal the unintervened ones (expect ≈ 1)."""
    _check_batches(batches)
    _check_states(states, batches)
    for mode in selection_modes:
        _check_mode(mode)
    device = _device(hyperdas)
    unchanged = {m: 0 for m in selection_modes}
    own = {m: 0.0 for m in selection_modes}
    change = {m: 0.0 for m in selection_modes}
    unexplained = {m: 0 for m in selection_modes}
    total = 0
    for index, batch in enumerate(batches):
        batch = source_equals_base_batch(batch.to(device))
        if states is None:
            batch_states = hyperdas.target_states(batch)
        else:  # the base is unchanged; only the new source needs a pass
            source = resid_stream_states(
                hyperdas.target, batch.source_ids, batch.source_attention_mask
            )
            batch_states = TargetStates(base=states[index].base, source=source)
        base = batch_states.base
        clean = hyperdas.target.unembed(base.final)
        judged = judged_label_positions(batch.labels, max_label_tokens)
        clean_top = clean.argmax(dim=-1)
        for mode in selection_modes:
            output = hyperdas(batch, mode, states=batch_states)
            same = (output.logits.argmax(dim=-1) == clean_top) | ~judged
            kept = same.all(dim=1)
            mass = own_state_mass(output.selection, hyperdas.position_masks(batch)[0])
            unchanged[mode] += int(kept.sum())
            own[mode] += float(mass.sum())
            unexplained[mode] += int((~kept & (mass >= 1.0 - OWN_MASS_ATOL)).sum())
            delta = (output.logits - clean).abs().amax(dim=-1)[judged]
            change[mode] = max(change[mode], float(delta.max()) if delta.numel() else 0.0)
        total += len(batch)
    return SourceEqualsBaseResult(
        unchanged={m: unchanged[m] / total for m in selection_modes},
        own_state_mass={m: own[m] / total for m in selection_modes},
        max_logit_change=change,
        unexplained_changes=unexplained,
        n_examples=total,
    )


# --------------------------------------------------------------------------- random subspace


@dataclass
class RandomSubspaceResult:
    """HyperDAS's selection with ``R(e)`` replaced by a random orthonormal basis of rank k."""

    selection_mode: str
    k: int
    per_example: bool
    seed: int
    hyperdas: Score
    random_subspace: Score
    orthonormality_error: float
    """Max ``|RᵀR - I|`` over the random bases used."""
    results: list[EvalResult] = field(default_factory=list, repr=False)
    """HyperDAS's and the control's per-attribute results."""

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k not in ("results",)}
        data["hyperdas"], data["random_subspace"] = (
            self.hyperdas.to_dict(),
            self.random_subspace.to_dict(),
        )
        return data


def random_subspace_control(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    seed: int = 0,
    *,
    selection_mode: SelectionMode = "soft",
    per_example: bool = True,
    states: Sequence[TargetStates] | None = None,
    reference: EvalResult | None = None,
    max_label_tokens: int = 3,
) -> RandomSubspaceResult:
    """Cause/Isolate with HyperDAS's selection but a random orthonormal basis of the same ``k``
    (one per example, or one shared by all), against HyperDAS's own (expect far lower Cause).

    The bases are drawn from a generator seeded with ``seed``, batch after batch, so the result
    is a function of ``(seed, batches)``.
    """
    _check_mode(selection_mode)
    generator = torch.Generator().manual_seed(seed)
    d_model, k = int(hyperdas.target.cfg.d_model), int(hyperdas.config.k)  # type: ignore[arg-type]
    shared = None if per_example else random_orthonormal_basis(d_model, k, generator=generator)
    errors: list[float] = []

    def override(basis: Tensor) -> Tensor:
        if shared is not None:
            random = shared
        else:
            random = random_orthonormal_basis(d_model, k, batch=basis.shape[0], generator=generator)
        random = random.to(dtype=basis.dtype, device=basis.device)
        errors.append(orthonormality_error(random))
        return random

    control = score_hyperdas(
        hyperdas,
        batches,
        selection_mode,
        method=f"random subspace ({selection_mode}, k={k})",
        states=states,
        basis_override=override,
        max_label_tokens=max_label_tokens,
    )
    if reference is None:
        reference = score_hyperdas(
            hyperdas, batches, selection_mode, states=states, max_label_tokens=max_label_tokens
        )
    return RandomSubspaceResult(
        selection_mode=selection_mode,
        k=k,
        per_example=per_example,
        seed=seed,
        hyperdas=Score.of(reference),
        random_subspace=Score.of(control),
        orthonormality_error=max(errors),
        results=[reference, control],
    )


# --------------------------------------------------------------------------- zero source


@dataclass
class ZeroSourceResult:
    """HyperDAS with the source's states zeroed for the hypernetwork and the interchange."""

    selection_mode: str
    hyperdas: Score
    zero_source: Score
    finite: bool
    """Whether every zero-source logit was finite."""
    majority_label_rate: float = 0.0
    """Cause of the best constant answer (:func:`majority_label_rate`): what falling back to a
    prior reaches without any source."""
    results: list[EvalResult] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "selection_mode": self.selection_mode,
            "hyperdas": self.hyperdas.to_dict(),
            "zero_source": self.zero_source.to_dict(),
            "finite": self.finite,
            "majority_label_rate": self.majority_label_rate,
        }


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
    _check_mode(selection_mode)
    judgements, finite = _teacher_forced_judgements(
        hyperdas, batches, selection_mode, states, True, None, max_label_tokens
    )
    attributes, domains = summarise(judgements)
    control = EvalResult(
        method=f"zero source ({selection_mode})",
        setting="+".join(sorted({j.split for j in judgements})),
        modes=("teacher_forced",),
        attributes=attributes,
        domains=domains,
    )
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


# --------------------------------------------------------------------------- nonsense source


def replace_entity(prompt: str, entity: str, nonsense: str) -> str:
    """``prompt`` with every mention of ``entity`` (on word boundaries when there are such
    mentions, else every occurrence) replaced by ``nonsense``."""
    if entity not in prompt:
        raise ValueError(f"entity {entity!r} does not occur in prompt {prompt!r}")
    bounded = re.compile(rf"(?<!\w){re.escape(entity)}(?!\w)")
    if bounded.search(prompt):
        return bounded.sub(lambda _: nonsense, prompt)
    return prompt.replace(entity, nonsense)


def nonsense_source_batches(
    batches: Sequence[InterventionBatch],
    tokenizer: Any,
    nonsense: str = DEFAULT_NONSENSE,
    *,
    max_label_tokens: int = 3,
) -> list[InterventionBatch]:
    """The cause examples of ``batches``, re-collated with the source entity replaced by
    ``nonsense`` (label kept: the ORIGINAL counterfactual label). Empty batches are dropped."""
    if not nonsense.strip():
        raise ValueError("nonsense must be a non-empty entity name")
    _check_batches(batches, need_examples=True)
    out = []
    for batch in batches:
        examples = [
            replace(
                e,
                source_prompt=replace_entity(e.source_prompt, e.source_entity, nonsense),
                source_entity=nonsense,
            )
            for e in batch.examples
            if e.is_cause
        ]
        if examples:
            out.append(collate_examples(examples, tokenizer, max_label_tokens=max_label_tokens))
    return out


@dataclass
class NonsenseSourceResult:
    """The source entity replaced by a nonsense name, on the cause examples."""

    nonsense: str
    selection_mode: str
    n_examples: int
    original_cause: float
    """HyperDAS's Cause on these examples with their real source."""
    counterfactual_label_rate: float
    """Fraction still predicting the ORIGINAL counterfactual label (high = injection)."""
    base_label_rate: float
    """Fraction predicting the base entity's own label (the intervention changed nothing)."""
    majority_label_rate: float = 0.0
    """Cause of the best constant answer on these examples (:func:`majority_label_rate`)."""
    samples: list[dict[str, str]] = field(default_factory=list)
    """A few rewritten examples (base prompt, nonsense source prompt, original label)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rate(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    selection_mode: SelectionMode,
    max_label_tokens: int,
) -> tuple[int, int]:
    hits = total = 0
    device = _device(hyperdas)
    for batch in batches:
        batch = batch.to(device)
        logits = intervened_logits(hyperdas, batch, selection_mode)
        hits += int(teacher_forced_correct(logits, batch.labels, max_label_tokens).sum())
        total += len(batch)
    return hits, total


@torch.no_grad()
def nonsense_source_control(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    tokenizer: Any,
    nonsense: str = DEFAULT_NONSENSE,
    *,
    selection_mode: SelectionMode = "soft",
    max_label_tokens: int = 3,
    n_samples: int = 3,
) -> NonsenseSourceResult:
    """How often the run still yields the original counterfactual label when the source entity
    is a name the model does not know (expect ≈ 0; high = the hypernetwork injects the label)."""
    _check_mode(selection_mode)
    _check_batches(batches, need_examples=True)
    causes = [
        collate_examples([e for e in b.examples if e.is_cause], tokenizer,
                         max_label_tokens=max_label_tokens)
        for b in batches
        if any(e.is_cause for e in b.examples)
    ]  # fmt: skip
    if not causes:
        raise ValueError("the nonsense-source control needs cause examples; batches hold none")
    rewritten = nonsense_source_batches(
        causes, tokenizer, nonsense, max_label_tokens=max_label_tokens
    )
    base_labelled = [
        collate_examples(
            [replace(e, label=e.base_label) for e in b.examples],
            tokenizer,
            max_label_tokens=max_label_tokens,
        )
        for b in rewritten
    ]
    original, n = _rate(hyperdas, causes, selection_mode, max_label_tokens)
    counterfactual, _ = _rate(hyperdas, rewritten, selection_mode, max_label_tokens)
    base, _ = _rate(hyperdas, base_labelled, selection_mode, max_label_tokens)
    samples = [
        {"base_prompt": e.base_prompt, "source_prompt": e.source_prompt, "label": e.label}
        for e in (rewritten[0].examples[:n_samples] if rewritten else [])
    ]
    return NonsenseSourceResult(
        nonsense=nonsense,
        selection_mode=selection_mode,
        n_examples=n,
        original_cause=original / n,
        counterfactual_label_rate=counterfactual / n,
        base_label_rate=base / n,
        majority_label_rate=majority_label_rate(causes),
        samples=samples,
    )


# --------------------------------------------------------------------------- random target


def random_init_copy(target: Any, *, seed: int = 0) -> Any:
    """A random-init copy of ``target``: the same HF architecture and config (``LlamaForCausalLM``
    at the target's sizes, seeded) and the same tokenizer, booted as a frozen bridge."""
    from transformers import AutoModelForCausalLM

    from hyperdas_tl.models import boot_bridge

    original = getattr(target, "original_model", None)
    if original is None or getattr(original, "config", None) is None:
        raise ValueError("target must be a TransformerBridge wrapping an HF model")
    parameter = next(target.parameters())
    config = copy.deepcopy(original.config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hf_model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    hf_model = hf_model.to(device=parameter.device, dtype=parameter.dtype).eval()
    bridge = boot_bridge(
        f"random-init-{config.model_type}",
        hf_model,
        target.tokenizer,
        device=parameter.device,
        dtype=parameter.dtype,
    )
    for p in bridge.parameters():
        p.requires_grad_(False)
    return bridge


@dataclass
class RandomTargetResult:
    """HyperDAS trained against a random-init copy of the target."""

    seed: int
    n_steps: int
    hypernetwork_init: str
    """``"real"``: the hypernetwork starts from the real target's blocks (as the audited HyperDAS
    did), so only the target's knowledge is removed; ``"random"``: from the random copy's."""
    real: Score
    """The audited HyperDAS on the real target (same examples, same read-out)."""
    random_target: Score
    """The HyperDAS trained on the random target, scored on it."""
    random_target_clean: Score
    """The random target without intervention (its own outputs vs the labels)."""
    loss: list[float] = field(default_factory=list)
    """Training loss per step of the random-target run."""
    selection_mode: str = "soft"
    majority_label_rate: float = 0.0
    """Cause of the best constant answer on the test examples (:func:`majority_label_rate`): a
    hypernetwork can learn to make any target say the most frequent label."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "n_steps": self.n_steps,
            "hypernetwork_init": self.hypernetwork_init,
            "selection_mode": self.selection_mode,
            "real": self.real.to_dict(),
            "random_target": self.random_target.to_dict(),
            "random_target_clean": self.random_target_clean.to_dict(),
            "majority_label_rate": self.majority_label_rate,
            "loss_first": self.loss[: max(1, len(self.loss) // 10)],
            "loss_last": self.loss[-max(1, len(self.loss) // 10) :],
        }


def random_target_control(
    hyperdas: HyperDAS,
    train_batches: Sequence[InterventionBatch],
    test_batches: Sequence[InterventionBatch],
    *,
    seed: int = 0,
    n_steps: int | None = None,
    hypernetwork_init: HypernetworkInit = "real",
    selection_mode: SelectionMode = "soft",
    reference: EvalResult | None = None,
    progress: bool = False,
    max_label_tokens: int = 3,
) -> RandomTargetResult:
    """Train a HyperDAS with ``hyperdas.config`` (``n_steps`` overrides its steps) against
    :func:`random_init_copy` of the target, then score it on ``test_batches`` (expect a Cause far
    below the real model's: a target that knows nothing cannot be made to say the label unless
    the hypernetwork injects it)."""
    _check_mode(selection_mode)
    _check_batches(train_batches)
    _check_batches(test_batches, need_examples=True)
    if hypernetwork_init not in ("real", "random"):
        raise ValueError(f"hypernetwork_init must be 'real' or 'random', got {hypernetwork_init!r}")
    # the control keeps no checkpoints of its own
    config = replace(hyperdas.config, checkpoint_every=None)
    config = config if n_steps is None else replace(config, n_steps=n_steps)
    random_target = random_init_copy(hyperdas.target, seed=seed)
    model = HyperDAS(random_target, config)
    if hypernetwork_init == "real":
        # same seed, same shapes: selection and subspace start as the audited model's did
        model.hypernetwork = HyperDAS(hyperdas.target, config).hypernetwork
    device = _device(hyperdas)
    train = train_hyperdas(model, [b.to(device) for b in train_batches], config, progress=progress)
    control = score_hyperdas(
        model, test_batches, selection_mode, method="HyperDAS on a random target",
        max_label_tokens=max_label_tokens,
    )  # fmt: skip
    judgements: list[Judgement] = []
    with torch.no_grad():
        for batch in test_batches:
            batch = batch.to(device)
            logits = random_target(batch.base_ids, attention_mask=batch.base_attention_mask)
            correct = teacher_forced_correct(logits, batch.labels, max_label_tokens)
            judgements.extend(batch_judgements(batch, "teacher_forced", correct))
    attributes, domains = summarise(judgements)
    clean = EvalResult(
        "random target, no intervention", "", ("teacher_forced",), attributes, domains
    )
    if reference is None:
        reference = score_hyperdas(
            hyperdas, test_batches, selection_mode, max_label_tokens=max_label_tokens
        )
    return RandomTargetResult(
        seed=seed,
        n_steps=config.n_steps,
        hypernetwork_init=hypernetwork_init,
        real=Score.of(reference),
        random_target=Score.of(control),
        random_target_clean=Score.of(clean),
        loss=[float(r["loss"]) for r in train.history],
        selection_mode=selection_mode,
        majority_label_rate=majority_label_rate(test_batches),
    )


# --------------------------------------------------------------------------- selection statistics


@dataclass
class ReadOutSelection:
    """Where one read-out's selection mass goes, over a set of examples."""

    base_entity_share: float
    """Share of the base's replaced mass (``Σ_j 1 - A[null, j]``) on the base entity's tokens."""
    source_entity_share: float
    """Share of the weight the source gives out (``Σ_ij A[i, j]``) from the source entity's
    tokens."""
    replaced_per_example: float
    """Mean ``Σ_j (1 - A[null, j])`` per example: how many base positions' worth is replaced."""
    top_base_tokens: list[tuple[str, float]]
    """Base tokens carrying the most replaced mass, with their share."""
    top_source_tokens: list[tuple[str, float]]
    """Source tokens giving out the most weight, with their share."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["top_base_tokens"] = [list(t) for t in self.top_base_tokens]
        data["top_source_tokens"] = [list(t) for t in self.top_source_tokens]
        return data


@dataclass
class SelectionStats:
    """Selection statistics per read-out (see :func:`selection_statistics`)."""

    read_outs: dict[str, ReadOutSelection]
    n_examples: int
    base_entity_token_share: float
    """Share of intervenable base tokens that are entity tokens (the chance level of
    ``base_entity_share`` for a selection blind to the entity)."""
    source_entity_token_share: float
    """Share of intervenable source tokens that are entity tokens."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "read_outs": {m: r.to_dict() for m, r in self.read_outs.items()},
            "n_examples": self.n_examples,
            "base_entity_token_share": self.base_entity_token_share,
            "source_entity_token_share": self.source_entity_token_share,
        }


def _top(counter: Counter, total: float, n: int) -> list[tuple[str, float]]:
    return [(token, mass / total if total else 0.0) for token, mass in counter.most_common(n)]


@torch.no_grad()
def selection_statistics(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    *,
    states: Sequence[TargetStates] | None = None,
    n_top: int = 10,
) -> SelectionStats:
    """Which tokens each read-out selects: selection mass on the entity tokens (from the
    tokenizer's offsets, :func:`~hyperdas_tl.data.batching.entity_token_positions`) vs the rest,
    and the most-selected tokens. One HyperDAS forward per batch (soft); the hard read-outs are
    read from its soft weights exactly as :meth:`HyperDAS.forward` reads them."""
    _check_batches(batches, need_examples=True)
    _check_states(states, batches)
    tokenizer = hyperdas.target.tokenizer
    device = _device(hyperdas)
    sums = {
        m: {"base_entity": 0.0, "base": 0.0, "src_entity": 0.0, "src": 0.0} for m in SELECTION_MODES
    }
    base_tokens = {m: Counter() for m in SELECTION_MODES}
    source_tokens = {m: Counter() for m in SELECTION_MODES}
    n_tokens = {"base_entity": 0, "base": 0, "src_entity": 0, "src": 0}
    total = 0
    for index, batch in enumerate(batches):
        batch = batch.to(device)
        output = hyperdas(batch, "soft", states=None if states is None else states[index])
        soft = output.soft_selection
        base_mask, source_mask = hyperdas.position_masks(batch)
        entity_base = torch.zeros_like(base_mask)
        entity_source = torch.zeros_like(source_mask)
        for row, example in enumerate(batch.examples):
            entity_base[
                row, entity_token_positions(tokenizer, example.base_prompt, example.base_entity)
            ] = True
            entity_source[
                row, entity_token_positions(tokenizer, example.source_prompt, example.source_entity)
            ] = True
        entity_base &= base_mask
        entity_source &= source_mask
        n_tokens["base_entity"] += int(entity_base.sum())
        n_tokens["base"] += int(base_mask.sum())
        n_tokens["src_entity"] += int(entity_source.sum())
        n_tokens["src"] += int(source_mask.sum())
        base_text = [[tokenizer.decode([t]) for t in row] for row in batch.base_ids.tolist()]
        source_text = [[tokenizer.decode([t]) for t in row] for row in batch.source_ids.tolist()]
        for mode in SELECTION_MODES:
            selection = read_out(
                soft,
                mode,  # type: ignore[arg-type]
                base_mask,
                source_mask,
                hyperdas.config.one_to_one_floor,
            )
            replaced = (1.0 - selection[:, -1]) * base_mask
            given = selection[:, :-1].sum(dim=-1) * source_mask
            s = sums[mode]
            s["base_entity"] += float(replaced[entity_base].sum())
            s["base"] += float(replaced.sum())
            s["src_entity"] += float(given[entity_source].sum())
            s["src"] += float(given.sum())
            for row in range(len(batch)):
                for pos in torch.nonzero(replaced[row] > 0).flatten().tolist():
                    base_tokens[mode][base_text[row][pos]] += float(replaced[row, pos])
                for pos in torch.nonzero(given[row] > 0).flatten().tolist():
                    source_tokens[mode][source_text[row][pos]] += float(given[row, pos])
        total += len(batch)

    def share(a: float | int, b: float | int) -> float:
        return a / b if b > 0 else 0.0

    read_outs = {
        mode: ReadOutSelection(
            base_entity_share=share(s["base_entity"], s["base"]),
            source_entity_share=share(s["src_entity"], s["src"]),
            replaced_per_example=s["base"] / total,
            top_base_tokens=_top(base_tokens[mode], s["base"], n_top),
            top_source_tokens=_top(source_tokens[mode], s["src"], n_top),
        )
        for mode, s in sums.items()
    }
    return SelectionStats(
        read_outs=read_outs,
        n_examples=total,
        base_entity_token_share=share(n_tokens["base_entity"], n_tokens["base"]),
        source_entity_token_share=share(n_tokens["src_entity"], n_tokens["src"]),
    )


# --------------------------------------------------------------------------- soft vs hard


@dataclass
class ReadOutGap:
    """Scores of every read-out and the soft read-out's lead over each hard one."""

    scores: dict[str, Score]
    gaps: dict[str, dict[str, float | None]]
    """``{hard read-out: {"cause"|"isolate"|"disentangle": soft - hard}}``."""

    def to_dict(self) -> dict[str, Any]:
        return {"scores": {m: s.to_dict() for m, s in self.scores.items()}, "gaps": self.gaps}


def soft_hard_gap(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    *,
    states: Sequence[TargetStates] | None = None,
    reference: dict[str, EvalResult] | None = None,
    max_label_tokens: int = 3,
) -> ReadOutGap:
    """Cause/Isolate/Disentangle of soft minus one-to-many and minus one-to-one (positive: the
    hard read-outs lose what the soft mixture carried)."""
    results = dict(reference or {})
    for mode in SELECTION_MODES:
        if mode not in results:
            results[mode] = score_hyperdas(
                hyperdas,
                batches,
                mode,
                states=states,
                max_label_tokens=max_label_tokens,  # type: ignore[arg-type]
            )
    scores = {mode: Score.of(results[mode]) for mode in SELECTION_MODES}

    def minus(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    soft = scores["soft"]
    gaps = {
        mode: {
            metric: minus(getattr(soft, metric), getattr(scores[mode], metric))
            for metric in ("cause", "isolate", "disentangle")
        }
        for mode in ("one_to_many", "one_to_one")
    }
    return ReadOutGap(scores=scores, gaps=gaps)


# --------------------------------------------------------------------------- Householder vectors


@dataclass
class HouseholderVectors:
    """The reflection vectors ``v(e)`` of ``R(e) = (I - 2 v vᵀ) R0``, one per example."""

    vectors: Float[Tensor, "n d_model"]
    """Unit vectors ``v(e)``."""
    attributes: list[str]
    """Target attribute (concept) of each example."""
    projection: Float[Tensor, "n 2"]
    """The vectors on their first two principal components."""
    explained_variance: tuple[float, float]
    """Share of the variance on each of the two components."""
    centroid_accuracy: float
    """Fraction of vectors closer (cosine) to their own attribute's mean than to any other's
    (leave-in; 1/n_attributes is chance)."""
    mean_cosine: dict[str, float]
    """Mean pairwise cosine within an attribute (``"A"``) and between attributes (``"A|B"``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "attributes": self.attributes,
            "projection": self.projection.tolist(),
            "explained_variance": list(self.explained_variance),
            "centroid_accuracy": self.centroid_accuracy,
            "mean_cosine": self.mean_cosine,
        }


def pca_2d(
    vectors: Float[Tensor, "n d"],
) -> tuple[Float[Tensor, "n 2"], tuple[float, float]]:
    """Projection on the first two principal components and their explained-variance shares."""
    if vectors.ndim != 2 or vectors.shape[0] < 2:
        raise ValueError(f"PCA needs at least two vectors [n, d], got {tuple(vectors.shape)}")
    centred = vectors.double() - vectors.double().mean(dim=0, keepdim=True)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    components = vh[:2]
    projection = centred @ components.T
    if projection.shape[1] < 2:
        projection = torch.nn.functional.pad(projection, (0, 2 - projection.shape[1]))
    variance = singular.pow(2)
    total = float(variance.sum())
    shares = [float(v) / total if total > 0 else 0.0 for v in variance[:2].tolist()]
    shares += [0.0] * (2 - len(shares))
    return projection.float(), (shares[0], shares[1])


@torch.no_grad()
def householder_vectors(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    *,
    states: Sequence[TargetStates] | None = None,
) -> HouseholderVectors:
    """``v(e)`` for every example (``hyperdas.subspace.reflection_vector`` of the encoding),
    labelled by target attribute, with a PCA projection and cluster summaries."""
    _check_batches(batches, need_examples=True)
    _check_states(states, batches)
    device = _device(hyperdas)
    vectors, attributes = [], []
    for index, batch in enumerate(batches):
        batch = batch.to(device)
        output = hyperdas(batch, "soft", states=None if states is None else states[index])
        vectors.append(hyperdas.subspace.reflection_vector(output.encoding).float().cpu())
        attributes.extend(e.target_attribute for e in batch.examples)
    v = torch.cat(vectors)
    projection, explained = pca_2d(v)
    names = sorted(set(attributes))
    labels = torch.tensor([names.index(a) for a in attributes])
    unit = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    centroids = torch.stack([unit[labels == c].mean(dim=0) for c in range(len(names))])
    centroids = centroids / centroids.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    nearest = (unit @ centroids.T).argmax(dim=-1)
    cosine = unit @ unit.T
    mean_cosine: dict[str, float] = {}
    for a, name_a in enumerate(names):
        for b, name_b in enumerate(names[a:], start=a):
            block = cosine[labels == a][:, labels == b]
            if a == b:
                n = block.shape[0]
                off = block.sum() - block.diagonal().sum()
                mean_cosine[name_a] = float(off / (n * (n - 1))) if n > 1 else 1.0
            else:
                mean_cosine[f"{name_a}|{name_b}"] = float(block.mean())
    return HouseholderVectors(
        vectors=v,
        attributes=attributes,
        projection=projection,
        explained_variance=explained,
        centroid_accuracy=float((nearest == labels).float().mean()),
        mean_cosine=mean_cosine,
    )
