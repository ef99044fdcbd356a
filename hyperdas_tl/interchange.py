"""Interchange interventions as pure tensor functions (no model, no hooks, no state).

Subspace interchange (Geiger et al.'s distributed interchange intervention) with an orthonormal
basis ``R`` (``d_model x k``)::

    b' = b + R Rᵀ (s - b)

replaces the component of the base vector ``b`` that lies in span(R) by the source's component
and keeps the orthogonal complement. ``k = 0`` is a no-op, ``k = d_model`` copies the source.

The soft, position-selecting variant first mixes source positions into each base position with
selection weights ``A`` of shape ``[batch, src_pos + 1, base_pos]`` whose last row is the null
("keep base") slot and whose columns sum to 1::

    s̃_j = Σ_i A[i, j] s_i + A[null, j] b_j,        b'_j = b_j + R Rᵀ (s̃_j - b_j)

where a term with weight 0 is skipped even when its vector holds NaN/inf (no ``0 · inf``).

Hard selection is the one-hot case (see :func:`one_hot_selection`).
"""

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

ORTHONORMAL_ATOL = 1e-3
SELECTION_SUM_ATOL = 1e-3


def check_basis(basis: Tensor, d_model: int, *, atol: float = ORTHONORMAL_ATOL) -> None:
    """Raise ``ValueError`` unless ``basis`` is ``[d_model, k]`` or ``[batch, d_model, k]``
    with orthonormal columns (``RᵀR = I`` within ``atol``)."""
    if basis.ndim not in (2, 3):
        raise ValueError(
            f"basis must be [d_model, k] or [batch, d_model, k], got shape {tuple(basis.shape)}"
        )
    if basis.shape[-2] != d_model:
        raise ValueError(
            f"basis has d_model={basis.shape[-2]} (shape {tuple(basis.shape)}) but the "
            f"residual stream has d_model={d_model}"
        )
    k = basis.shape[-1]
    if k > d_model:
        raise ValueError(f"basis has k={k} columns, more than d_model={d_model}")
    if k == 0:
        return
    # float32 even under a bf16 autocast (a bf16 Gram matrix is off by ~1e-2)
    with torch.no_grad(), torch.autocast(device_type=basis.device.type, enabled=False):
        gram = basis.detach().float().transpose(-1, -2) @ basis.detach().float()
        error = (gram - torch.eye(k, device=basis.device)).abs().max().item()
    if not error <= atol:  # also catches NaN
        raise ValueError(
            f"basis columns are not orthonormal: max |RᵀR - I| = {error:.3g} > {atol:g}; "
            "orthonormalise it first (e.g. torch.linalg.qr(basis).Q)"
        )


def check_selection(
    selection: Tensor, batch: int, src_pos: int, base_pos: int, *, atol: float = SELECTION_SUM_ATOL
) -> None:
    """Raise ``ValueError`` unless ``selection`` is ``[batch, src_pos + 1, base_pos]`` with
    non-negative columns that sum to 1 (within ``atol``)."""
    expected = (batch, src_pos + 1, base_pos)
    if tuple(selection.shape) != expected:
        raise ValueError(
            f"selection must be [batch, src_pos + 1, base_pos] = {expected} (the last source row "
            f"is the null 'keep base' slot), got {tuple(selection.shape)}"
        )
    with torch.no_grad():
        column_sums = selection.detach().float().sum(dim=1)
        error = (column_sums - 1).abs().max().item() if column_sums.numel() else 0.0
        negative = bool((selection.detach() < -atol).any())
    if not error <= atol or negative:
        raise ValueError(
            "selection columns must be non-negative and sum to 1 over source positions + null "
            f"(max |sum - 1| = {error:.3g}, negative entries: {negative})"
        )


def project_out(
    vectors: Float[Tensor, "batch pos d_model"], basis: Float[Tensor, "*batch d_model k"]
) -> Float[Tensor, "batch pos d_model"]:
    """``R Rᵀ x`` for every vector, with a shared or per-example basis. Never forms ``R Rᵀ``."""
    if basis.ndim == 2:
        return (vectors @ basis) @ basis.T
    coefficients = torch.einsum("bpd,bdk->bpk", vectors, basis)
    return torch.einsum("bpk,bdk->bpd", coefficients, basis)


def interchange(
    base: Float[Tensor, "batch pos d_model"],
    source: Float[Tensor, "batch pos d_model"],
    basis: Float[Tensor, "*batch d_model k"],
) -> Float[Tensor, "batch pos d_model"]:
    """``base + R Rᵀ (source - base)`` position by position (out of place, differentiable).

    ``basis`` is shared (``[d_model, k]``) or per example (``[batch, d_model, k]``) and must
    have orthonormal columns; shapes are checked, orthonormality is the caller's contract
    (see :func:`check_basis`).
    """
    if base.shape != source.shape:
        raise ValueError(
            f"base and source must have the same shape, got {tuple(base.shape)} and "
            f"{tuple(source.shape)}"
        )
    if basis.ndim not in (2, 3) or basis.shape[-2] != base.shape[-1]:
        raise ValueError(
            f"basis must be [d_model, k] or [batch, d_model, k] with d_model={base.shape[-1]}, "
            f"got {tuple(basis.shape)}"
        )
    if basis.ndim == 3 and basis.shape[0] != base.shape[0]:
        raise ValueError(
            f"per-example basis has batch {basis.shape[0]} but the residual has batch "
            f"{base.shape[0]}"
        )
    basis = basis.to(base.dtype)
    return base + project_out(source - base, basis)


def mix_source(
    base: Float[Tensor, "batch base_pos d_model"],
    source: Float[Tensor, "batch src_pos d_model"],
    selection: Float[Tensor, "batch src_pos_plus_null base_pos"],
) -> Float[Tensor, "batch base_pos d_model"]:
    """``s̃_j = Σ_i A[i, j] s_i + A[null, j] b_j``: the source each base position reads.

    Safe against ``0 · inf``: a non-finite source (or base) vector with weight 0 does not touch
    ``s̃_j`` (a plain product would turn it into NaN); a base position that gives weight to a
    non-finite source vector reads NaN. Values are masked before they are multiplied, so the
    gradients stay finite too. For finite inputs the result is the plain weighted sum.
    """
    selection = selection.to(base.dtype)
    weights, null = selection[:, :-1], selection[:, -1, :, None]
    finite = torch.isfinite(source)
    zero = torch.zeros((), dtype=source.dtype, device=source.device)
    from_source = torch.einsum("bij,bid->bjd", weights, torch.where(finite, source, zero))
    bad_rows = (~finite.all(dim=-1)).to(weights.dtype)
    reads_bad = torch.einsum("bij,bi->bj", (weights != 0).to(weights.dtype), bad_rows) > 0
    from_source = torch.where(reads_bad[..., None], torch.nan, from_source)
    return from_source + null * torch.where(null != 0, base, zero.to(base.dtype))


def soft_interchange(
    base: Float[Tensor, "batch base_pos d_model"],
    source: Float[Tensor, "batch src_pos d_model"],
    selection: Float[Tensor, "batch src_pos_plus_null base_pos"],
    basis: Float[Tensor, "*batch d_model k"],
) -> Float[Tensor, "batch base_pos d_model"]:
    """Position-mixed subspace interchange: :func:`interchange` of ``base`` with
    :func:`mix_source`. A base column whose weight is all on null stays exactly ``base``."""
    if base.shape[0] != source.shape[0] or base.shape[-1] != source.shape[-1]:
        raise ValueError(
            f"base {tuple(base.shape)} and source {tuple(source.shape)} must share batch and "
            "d_model"
        )
    expected = (base.shape[0], source.shape[1] + 1, base.shape[1])
    if tuple(selection.shape) != expected:
        raise ValueError(
            f"selection must be [batch, src_pos + 1, base_pos] = {expected}, got "
            f"{tuple(selection.shape)}"
        )
    return interchange(base, mix_source(base, source, selection), basis)


def one_hot_selection(
    source_positions: Int[Tensor, " batch"],
    base_positions: Int[Tensor, " batch"],
    src_pos: int,
    base_pos: int,
) -> Float[Tensor, "batch src_pos_plus_null base_pos"]:
    """Hard selection: base position ``base_positions[b]`` reads source position
    ``source_positions[b]``; every other base position keeps its own value (null)."""
    return positions_to_selection(
        source_positions[:, None], base_positions[:, None], src_pos=src_pos, base_pos=base_pos
    )


def positions_to_selection(
    source_positions: Int[Tensor, "batch n"],
    base_positions: Int[Tensor, "batch n"],
    *,
    src_pos: int,
    base_pos: int,
    valid: Bool[Tensor, "batch n"] | None = None,
) -> Float[Tensor, "batch src_pos_plus_null base_pos"]:
    """One-hot selection from ``n`` (source position -> base position) pairs per example.

    Pairs where ``valid`` is False are ignored. A base position named twice raises."""
    if source_positions.shape != base_positions.shape or source_positions.ndim != 2:
        raise ValueError(
            "source_positions and base_positions must both be [batch, n], got "
            f"{tuple(source_positions.shape)} and {tuple(base_positions.shape)}"
        )
    if valid is None:
        valid = torch.ones_like(source_positions, dtype=torch.bool)
    src_ok = (source_positions >= 0) & (source_positions < src_pos)
    base_ok = (base_positions >= 0) & (base_positions < base_pos)
    if bool((valid & ~(src_ok & base_ok)).any()):
        raise ValueError(
            f"positions out of range: source positions must be in [0, {src_pos}) and base "
            f"positions in [0, {base_pos})"
        )
    batch = source_positions.shape[0]
    selection = torch.zeros(batch, src_pos + 1, base_pos, device=source_positions.device)
    selection[:, src_pos, :] = 1.0
    rows = torch.arange(batch, device=source_positions.device)[:, None].expand_as(valid)
    b, s, j = rows[valid], source_positions[valid], base_positions[valid]
    counts = torch.zeros(batch, base_pos, device=source_positions.device)
    counts.index_put_((b, j), torch.ones_like(j, dtype=counts.dtype), accumulate=True)
    if bool((counts > 1).any()):
        raise ValueError("a base position is selected more than once in one example")
    selection[b, src_pos, j] = 0.0
    selection[b, s, j] = 1.0
    return selection


def fit_selection_width(
    selection: Float[Tensor, "batch src_pos_plus_null base_pos"], width: int
) -> Float[Tensor, "batch src_pos_plus_null width"]:
    """A selection for a base forward of ``width`` positions: extra columns are all-null (keep
    base); columns cut off must already be all-null (else ``ValueError``)."""
    base_pos = selection.shape[-1]
    if width >= base_pos:
        pad = torch.zeros(*selection.shape[:-1], width - base_pos, dtype=selection.dtype)
        pad[:, -1] = 1.0
        return torch.cat([selection, pad.to(selection.device)], dim=-1)
    dropped = selection[:, :-1, width:]
    if bool((dropped.abs() > 0).any()):
        raise ValueError(
            f"cannot shrink a selection from {base_pos} to {width} base positions: a dropped "
            "position reads from the source"
        )
    return selection[..., :width]


def random_orthonormal_basis(
    d_model: int,
    k: int,
    *,
    batch: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Float[Tensor, "*batch d_model k"]:
    """A Haar-random ``[d_model, k]`` basis with orthonormal columns (QR of a Gaussian; drawn on
    the CPU from ``generator``), or ``[batch, d_model, k]``, one per example."""
    if not 1 <= k <= d_model:
        raise ValueError(f"k must be in [1, d_model={d_model}], got {k}")
    if batch is not None and batch < 1:
        raise ValueError(f"batch must be >= 1 or None, got {batch}")
    shape = (d_model, k) if batch is None else (batch, d_model, k)
    gaussian = torch.randn(*shape, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    # sign fix (diag(R) > 0) makes the QR factor Haar-distributed
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    return q.to(dtype=dtype, device=device)
