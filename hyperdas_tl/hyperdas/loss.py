"""HyperDAS training loss: weighted label cross-entropy plus a scheduled sparsity penalty.

- Cross-entropy on the label tokens only (``labels != -100``, see
  :mod:`hyperdas_tl.data.batching`), each token weighted by its example type (cause 3.5,
  isolate 0.5 by default), averaged over label tokens as the official implementation does.
- Sparsity: a source token whose total weight over base positions exceeds 1 is spread over
  several base tokens; the penalty is ``Σ_i relu(Σ_j A[i, j] - 1)`` per example, averaged over
  the batch.
- Schedule (:func:`sparsity_weight`): zero for the first ``sparsity_start`` fraction of training
  (half by default), then a linear ramp from 0 to ``sparsity_max`` (1.5) at the last step. The
  official code jumps to 0.8 at the midpoint; a ramp avoids the loss spike of a sudden penalty.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from hyperdas_tl.data.batching import IGNORE_INDEX


@dataclass
class HyperDASLoss:
    """The parts of the training loss (scalars; ``total`` carries the gradient)."""

    total: Float[Tensor, ""]
    """``ce + sparsity_weight * sparsity``."""
    ce: Float[Tensor, ""]
    """Cause/isolate-weighted label cross-entropy."""
    sparsity: Float[Tensor, ""]
    """Unweighted sparsity penalty."""
    sparsity_weight: float
    """Weight the sparsity penalty had in ``total``."""
    cause_ce: Float[Tensor, ""]
    """Mean unweighted CE over cause label tokens (NaN-free: 0 when there are none)."""
    isolate_ce: Float[Tensor, ""]
    """Mean unweighted CE over isolate label tokens (0 when there are none)."""


def label_token_ce(
    logits: Float[Tensor, "batch logit_pos d_vocab"],
    labels: Int[Tensor, "batch pos"],
    positions: Int[Tensor, "batch logit_pos"] | None = None,
) -> tuple[Float[Tensor, "batch pos"], Bool[Tensor, "batch pos"]]:
    """Per-position cross-entropy (0 where ``labels == -100``) and the label-position mask.

    ``positions`` (from :func:`~hyperdas_tl.data.batching.label_positions`): ``logits`` hold
    only those positions (``logits[b, i]`` at position ``positions[b, i]``); the result is the
    same ``[batch, pos]`` cross-entropy the full logits give.
    """
    is_label = labels != IGNORE_INDEX
    picked_labels = labels if positions is None else labels.gather(1, positions)
    if logits.shape[:2] != picked_labels.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels {tuple(picked_labels.shape)} must share "
            "[batch, pos]" + ("" if positions is None else " (labels at positions)")
        )
    picked_is_label = picked_labels != IGNORE_INDEX
    if positions is not None:
        # the scatter below needs every label position once, in order; one the positions miss
        # would silently drop out of the loss
        rows, cols = is_label.nonzero(as_tuple=True)
        if not (
            torch.equal(rows, picked_is_label.nonzero(as_tuple=True)[0])
            and torch.equal(cols, positions[picked_is_label])
        ):
            raise ValueError(
                "positions must hold every labelled position of each row once, in order: use "
                "label_positions(labels).positions"
            )
    # Only label positions: a [n_labels, d_vocab] cross-entropy, not one over every position.
    picked = F.cross_entropy(
        logits[picked_is_label].float(), picked_labels[picked_is_label], reduction="none"
    )
    ce = torch.zeros(labels.shape, dtype=picked.dtype, device=picked.device)
    return ce.masked_scatter(is_label, picked), is_label


def sparsity_penalty(
    selection: Float[Tensor, "batch src_pos_plus_null base_pos"],
) -> Float[Tensor, ""]:
    """``mean_b Σ_i relu(Σ_j A[b, i, j] - 1)`` over source rows (the null row is excluded)."""
    per_source = selection[:, :-1].sum(dim=2)
    return F.relu(per_source - 1.0).sum(dim=1).mean()


def sparsity_weight(step: int, n_steps: int, max_weight: float, start: float = 0.5) -> float:
    """0 before ``start * n_steps``, then linear up to ``max_weight`` at the last step."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    begin = start * n_steps
    last = n_steps - 1
    if step < begin or last <= begin:
        return 0.0 if step < begin else max_weight
    return max_weight * min(1.0, (step - begin) / (last - begin))


def hyperdas_loss(
    logits: Float[Tensor, "batch logit_pos d_vocab"],
    labels: Int[Tensor, "batch pos"],
    is_cause: Bool[Tensor, " batch"],
    selection: Float[Tensor, "batch src_pos_plus_null base_pos"],
    *,
    cause_weight: float,
    isolate_weight: float,
    sparsity_weight: float,
    positions: Int[Tensor, "batch logit_pos"] | None = None,
) -> HyperDASLoss:
    """The full loss (see the module docstring); ``positions``: ``logits`` hold only those
    positions (see :func:`label_token_ce`), the loss is the same."""
    ce, is_label = label_token_ce(logits, labels, positions)
    n_labels = is_label.sum()
    if int(n_labels) == 0:
        raise ValueError("the batch has no label tokens (labels are all -100)")
    cause = is_cause.bool()[:, None] & is_label
    isolate = ~is_cause.bool()[:, None] & is_label
    weights = torch.where(is_cause.bool(), cause_weight, isolate_weight).to(ce.dtype)
    weighted_ce = (ce * weights[:, None]).sum() / n_labels
    sparsity = sparsity_penalty(selection)
    total = weighted_ce + sparsity_weight * sparsity
    return HyperDASLoss(
        total=total,
        ce=weighted_ce,
        sparsity=sparsity,
        sparsity_weight=sparsity_weight,
        cause_ce=(ce * cause).sum() / cause.sum().clamp_min(1),
        isolate_ce=(ce * isolate).sum() / isolate.sum().clamp_min(1),
    )
