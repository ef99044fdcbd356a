"""Source == base: the source is the base prompt itself, so an interchange has nothing new to
bring; the predictions must stay the model's own (exactly so wherever the selection only mixes a
base position with its own state)."""

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from hyperdas_tl.data.batching import InterventionBatch, judged_label_positions
from hyperdas_tl.faithfulness.checks import check_batches, check_states
from hyperdas_tl.faithfulness.result_dict import ResultDict
from hyperdas_tl.hyperdas.config import SELECTION_MODES, SelectionMode, check_selection_mode
from hyperdas_tl.hyperdas.model import HyperDAS, TargetStates
from hyperdas_tl.models import module_device
from hyperdas_tl.partial_forward import resid_stream_states

OWN_MASS_ATOL = 1e-4
"""An example whose own_state_mass is within this of 1 must keep its predictions."""


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
class SourceEqualsBaseResult(ResultDict):
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


@torch.no_grad()
def source_equals_base_control(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    *,
    selection_modes: Sequence[SelectionMode] = SELECTION_MODES,
    states: Sequence[TargetStates] | None = None,
    max_label_tokens: int = 3,
) -> SourceEqualsBaseResult:
    """Replace every source by its own base prompt (:func:`source_equals_base_batch`) and count
    the examples whose predictions equal the unintervened ones (expect ≈ 1)."""
    check_batches(batches)
    check_states(states, batches)
    for mode in selection_modes:
        check_selection_mode(mode)
    device = module_device(hyperdas.target)
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
