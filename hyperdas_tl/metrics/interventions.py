"""What an intervention is to the scorer: ``(batch, width) -> hooks``, the no-op control, and
the fixed-position (DAS-style) interchange at the entity's last token."""

from collections.abc import Callable

import torch
from jaxtyping import Float
from torch import Tensor

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.hooks import HookFn, capture_resid_pre, resid_pre_name, soft_interchange_hook_for
from hyperdas_tl.interchange import check_basis, one_hot_selection
from hyperdas_tl.target import TargetModel

Hooks = list[tuple[str, HookFn]]
Intervention = Callable[[InterventionBatch, int], Hooks]
"""Builds the forward hooks of one intervened base forward: ``(batch, width) -> hooks``.

``width`` is the number of positions the hooked forward runs on (``base_ids.shape[1]`` when
teacher forcing; prompt width + ``max_new_tokens`` when generating)."""


def no_intervention(batch: InterventionBatch, width: int) -> Hooks:
    """The control that changes nothing (scores the model's own behaviour on the base prompt)."""
    return []


def entity_source_vectors(
    model: TargetModel, batch: InterventionBatch, layer: int
) -> Float[Tensor, "batch d_model"]:
    """``blocks.{layer}.hook_resid_pre`` of each source prompt at its ``source_entity_last``."""
    resid = capture_resid_pre(
        model, batch.source_ids, [layer], attention_mask=batch.source_attention_mask
    )[layer]
    rows = torch.arange(len(batch), device=resid.device)
    return resid[rows, batch.source_entity_last.to(resid.device)]


def entity_interchange_hooks(
    model: TargetModel,
    layer: int,
    batch: InterventionBatch,
    width: int,
    basis: Float[Tensor, "*batch d_model k"],
    source_vectors: Float[Tensor, "batch d_model"] | None = None,
) -> Hooks:
    """Hooks for the fixed-position interchange (DAS): at ``blocks.{layer}.hook_resid_pre``, base
    position ``base_entity_last`` takes the span(basis) component of the source residual at
    ``source_entity_last``; every other position is untouched.

    ``source_vectors`` (from :func:`entity_source_vectors`) may be passed to reuse a capture;
    gradients flow to ``basis``.
    """
    if source_vectors is None:
        source_vectors = entity_source_vectors(model, batch, layer)
    if source_vectors.shape[0] != len(batch):
        raise ValueError(
            f"source_vectors has {source_vectors.shape[0]} rows for a batch of {len(batch)}"
        )
    device = source_vectors.device
    selection = one_hot_selection(
        torch.zeros(len(batch), dtype=torch.long, device=device),
        batch.base_entity_last.to(device),
        src_pos=1,
        base_pos=width,
    )
    # allow_empty: a d_model x 0 basis is the "empty subspace" control, a deliberate no-op
    hook = soft_interchange_hook_for(
        model, layer, source_vectors[:, None], selection, basis, allow_empty=True
    )
    return [hook]


def entity_subspace_intervention(
    model: TargetModel, layer: int, basis: Float[Tensor, "d_model k"]
) -> Intervention:
    """An :data:`Intervention` swapping span(``basis``) at the entity's last token (DAS-style)."""
    resid_pre_name(model, layer)
    check_basis(basis, int(model.cfg.d_model))
    basis = basis.detach()

    def build(batch: InterventionBatch, width: int) -> Hooks:
        return entity_interchange_hooks(model, layer, batch, width, basis)

    return build
