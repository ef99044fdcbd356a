"""What HyperDAS's position selection does: where each read-out's selection mass lands (entity
tokens or not, which tokens), how sharp the soft weights are, and what the hard read-outs lose
against the soft one."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from hyperdas_tl.data.batching import InterventionBatch, entity_token_positions
from hyperdas_tl.faithfulness.checks import check_batches, check_states
from hyperdas_tl.faithfulness.result_dict import ResultDict
from hyperdas_tl.faithfulness.scoring import Score, score_hyperdas
from hyperdas_tl.hyperdas.config import SELECTION_MODES
from hyperdas_tl.hyperdas.model import HyperDAS, TargetStates
from hyperdas_tl.hyperdas.selection import read_out
from hyperdas_tl.metrics import EvalResult
from hyperdas_tl.models import module_device


@dataclass
class ReadOutSelection(ResultDict):
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


@dataclass
class SelectionStats(ResultDict):
    """Selection statistics per read-out (see :func:`selection_statistics`)."""

    read_outs: dict[str, ReadOutSelection]
    n_examples: int
    base_entity_token_share: float
    """Share of intervenable base tokens that are entity tokens (the chance level of
    ``base_entity_share`` for a selection blind to the entity)."""
    source_entity_token_share: float
    """Share of intervenable source tokens that are entity tokens."""


@dataclass
class SoftSelectionSummary(ResultDict):
    """How sharp the soft selection ``A`` is on one batch (see :func:`soft_selection_summary`)."""

    max_source_weight_mean: float
    """Mean over intervenable base columns of the largest source weight (1: one source token
    per base token; 1 / n_source: spread evenly)."""
    max_source_weight_max: float
    """The largest source weight of any intervenable base column."""
    null_weight_mean: float
    """Mean null (keep the base) weight over intervenable base columns."""
    entity_to_entity_mass: float
    """Mean weight the source's last entity token sends to the base's last entity token."""
    null_mass_at_base_entity: float
    """Mean null weight at the base's last entity token."""


def _soft_selection(
    hyperdas: HyperDAS, batch: InterventionBatch, states: TargetStates | None
) -> tuple[
    Float[Tensor, "batch src_pos_plus_null base_pos"],
    Bool[Tensor, "batch base_pos"],
    Bool[Tensor, "batch src_pos"],
]:
    """The soft weights of one HyperDAS forward and the positions HyperDAS may write / read."""
    soft = hyperdas(batch, "soft", states=states).soft_selection
    base_mask, source_mask = hyperdas.position_masks(batch)
    return soft, base_mask, source_mask


@torch.no_grad()
def soft_selection_summary(
    hyperdas: HyperDAS, batch: InterventionBatch, *, states: TargetStates | None = None
) -> SoftSelectionSummary:
    """How sharp the soft selection is on ``batch`` (one soft forward): the largest source
    weight per intervenable base column, the null weight, and the entity-to-entity weight."""
    batch = batch.to(module_device(hyperdas.target))
    soft, base_mask, _ = _soft_selection(hyperdas, batch, states)
    best = soft[:, :-1].amax(dim=1)[base_mask]
    rows = torch.arange(len(batch), device=soft.device)
    return SoftSelectionSummary(
        max_source_weight_mean=float(best.mean()),
        max_source_weight_max=float(best.max()),
        null_weight_mean=float(soft[:, -1][base_mask].mean()),
        entity_to_entity_mass=float(
            soft[rows, batch.source_entity_last, batch.base_entity_last].mean()
        ),
        null_mass_at_base_entity=float(soft[rows, -1, batch.base_entity_last].mean()),
    )


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
    check_batches(batches, need_examples=True)
    check_states(states, batches)
    tokenizer = hyperdas.target.tokenizer
    device = module_device(hyperdas.target)
    sums = {
        m: {"base_entity": 0.0, "base": 0.0, "src_entity": 0.0, "src": 0.0} for m in SELECTION_MODES
    }
    base_tokens = {m: Counter() for m in SELECTION_MODES}
    source_tokens = {m: Counter() for m in SELECTION_MODES}
    n_tokens = {"base_entity": 0, "base": 0, "src_entity": 0, "src": 0}
    total = 0
    for index, batch in enumerate(batches):
        batch = batch.to(device)
        soft, base_mask, source_mask = _soft_selection(
            hyperdas, batch, None if states is None else states[index]
        )
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
                mode,
                base_mask,
                source_mask,
                hyperdas.config.architecture.one_to_one_floor,
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


@dataclass
class ReadOutGap(ResultDict):
    """Scores of every read-out and the soft read-out's lead over each hard one."""

    scores: dict[str, Score]
    gaps: dict[str, dict[str, float | None]]
    """``{hard read-out: {"cause"|"isolate"|"disentangle": soft - hard}}``."""


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
                max_label_tokens=max_label_tokens,
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
