"""Position selection: which source token each base token reads, from the encoding ``e``.

For every pair (source i, base j) a key is computed by a learned map (Linear -> SiLU -> Linear)
of the concatenated unit-norm layer-L states ``[b_j ; s_i]``; a null ("keep base") key comes from
the same kind of map of ``b_j`` alone. The query is a linear map of ``e``. Scores are multi-head
dot products averaged over heads; each base column is a softmax over the source positions plus
null, so the weights ``A`` (``[batch, src_pos + 1, base_pos]``, null last, the layout of
:mod:`hyperdas_tl.interchange`) sum to 1 per column. Source positions that are not intervenable
get zero weight; base positions that are not intervenable put all their mass on null, so the
interchange leaves them exactly unchanged.

The map is non-linear on purpose: a linear map of ``[b_j ; s_i]`` splits into a base term and a
source term, and the softmax over sources would then pick the same source for every base column.
Its first layer is one ``Linear(2 d_model, d_model)`` whose two halves are applied to ``b_j`` and
``s_i`` separately and broadcast-summed, so the ``[batch, src, base, 2 d_model]`` concatenation
is never materialised.

The null score carries a learned bias. With ``null_init_weight = w`` the null score also gets
``log(n)``, ``n`` the example's number of intervenable source tokens, and the bias starts at
``logit(w)``: since the source scores start near zero, null then starts with weight ``w`` at
every base position whatever the prompt length (without it, null starts at ``1 / (n + 1)`` and
the first steps blend every source token into every base token).

Score scale (``HyperDASConfig.selection_score``). ``"dot"``: scaled dot products
(``q·k / sqrt(head_dim)``). Keys come from unit-norm states through freshly initialised layers, so
at initialisation every score is ~1e-3 and the selection is uniform; sharpening it means growing
the key and query weights by orders of magnitude, thousands of optimiser steps. ``"cosine"``: the
per-head cosine of query and key times a learned temperature (initialised at
``selection_temperature``, learned in log space), so scores span ``[-T, T]`` from the first step
and training only has to turn directions, not grow norms.

Read-outs (:func:`read_out`):

- ``"soft"``: ``A`` itself (training and default).
- ``"one_to_many"``: each base column takes its argmax row (a source token, or null); one
  source token may feed many base tokens.
- ``"one_to_one"``: each intervenable source token bids its soft weight on its best base column;
  a bid counts only if it beats that column's null weight and the floor
  (``HyperDASConfig.one_to_one_floor``); a base column with several valid bids takes the highest
  (ties: the earliest source token). So every source token writes at most one base token and
  every base token reads at most one source token.
"""

import math

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor, nn

from hyperdas_tl.hyperdas.config import SELECTION_MODES, SelectionMode, SelectionScore
from hyperdas_tl.hyperdas.hypernetwork import unit_normalize


class PositionSelection(nn.Module):
    """Soft (source + null) x base selection weights from ``e`` (see the module docstring)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        null_init_weight: float | None = None,
        score: SelectionScore = "dot",
        temperature: float = 10.0,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
        if score not in ("dot", "cosine"):
            raise ValueError(f"score must be 'dot' or 'cosine', got {score!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.score = score
        if score == "cosine":
            # learned in log space so it stays positive
            self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
        if null_init_weight is not None and not 0.0 < null_init_weight < 1.0:
            raise ValueError(f"null_init_weight must be in (0, 1), got {null_init_weight}")
        self.d_model, self.n_heads = d_model, n_heads
        self.scale_null_by_sources = null_init_weight is not None
        init = 0.0
        if null_init_weight is not None:
            init = math.log(null_init_weight / (1.0 - null_init_weight))
        self.null_bias = nn.Parameter(torch.tensor(float(init)))
        self.query = nn.Linear(d_model, d_model)
        self.pair_in = nn.Linear(2 * d_model, d_model)
        self.pair_out = nn.Linear(d_model, d_model)
        self.null_in = nn.Linear(d_model, d_model)
        self.null_out = nn.Linear(d_model, d_model)

    def forward(
        self,
        encoding: Float[Tensor, "batch d_model"],
        base: Float[Tensor, "batch base_pos d_model"],
        source: Float[Tensor, "batch src_pos d_model"],
        base_mask: Bool[Tensor, "batch base_pos"],
        source_mask: Bool[Tensor, "batch src_pos"],
    ) -> Float[Tensor, "batch src_pos_plus_null base_pos"]:
        """Soft weights ``A``; ``base``/``source`` are the raw layer-L states (unit-normalised
        here), the masks mark intervenable positions."""
        batch, base_pos, d_model = base.shape
        src_pos = source.shape[1]
        heads, head_dim = self.n_heads, d_model // self.n_heads
        base_mask, source_mask = base_mask.bool(), source_mask.bool()
        b, s = unit_normalize(base), unit_normalize(source)

        w_base, w_source = self.pair_in.weight.split(d_model, dim=1)
        hidden = (
            F.linear(s, w_source)[:, :, None, :] + F.linear(b, w_base, self.pair_in.bias)[:, None]
        )
        pair_keys = self.pair_out(F.silu(hidden)).view(batch, src_pos, base_pos, heads, head_dim)
        null_keys = self.null_out(F.silu(self.null_in(b))).view(batch, base_pos, heads, head_dim)
        query = self.query(encoding).view(batch, heads, head_dim)

        if self.score == "cosine":
            query, pair_keys, null_keys = (
                unit_normalize(query),
                unit_normalize(pair_keys),
                unit_normalize(null_keys),
            )
            scale = self.log_temperature.exp() / heads  # cosine per head, averaged over heads
        else:
            scale = head_dim**-0.5 / heads  # scaled dot product, averaged over heads
        pair_scores = torch.einsum("bhd,bijhd->bij", query, pair_keys) * scale
        null_scores = torch.einsum("bhd,bjhd->bj", query, null_keys)[:, None, :] * scale
        null_scores = null_scores + self.null_bias
        if self.scale_null_by_sources:
            n_sources = source_mask.sum(dim=1).clamp_min(1).to(null_scores.dtype)
            null_scores = null_scores + n_sources.log()[:, None, None]
        pair_scores = pair_scores.masked_fill(
            ~source_mask[:, :, None], torch.finfo(pair_scores.dtype).min
        )
        # float32 weights even beside bf16 states: columns must sum to 1 within 1e-3
        weights = torch.softmax(torch.cat([pair_scores, null_scores], dim=1).float(), dim=1)
        return keep_masked_base(weights, base_mask)


def null_selection(batch: int, src_pos: int, base_pos: int, like: Tensor) -> Tensor:
    """All weight on null: the selection that changes nothing."""
    weights = torch.zeros(batch, src_pos + 1, base_pos, dtype=like.dtype, device=like.device)
    weights[:, -1] = 1.0
    return weights


def keep_masked_base(
    weights: Float[Tensor, "batch src_pos_plus_null base_pos"],
    base_mask: Bool[Tensor, "batch base_pos"],
) -> Float[Tensor, "batch src_pos_plus_null base_pos"]:
    """Put every non-intervenable base column's mass exactly on null."""
    batch, rows, base_pos = weights.shape
    null = null_selection(batch, rows - 1, base_pos, weights)
    return torch.where(base_mask.bool()[:, None, :], weights, null)


def one_to_many(
    weights: Float[Tensor, "batch src_pos_plus_null base_pos"],
    base_mask: Bool[Tensor, "batch base_pos"],
) -> Float[Tensor, "batch src_pos_plus_null base_pos"]:
    """Each base column's argmax row (source token or null), one-hot."""
    hard = F.one_hot(weights.argmax(dim=1), weights.shape[1]).transpose(1, 2).to(weights.dtype)
    return keep_masked_base(hard, base_mask)


def one_to_one(
    weights: Float[Tensor, "batch src_pos_plus_null base_pos"],
    base_mask: Bool[Tensor, "batch base_pos"],
    source_mask: Bool[Tensor, "batch src_pos"],
    floor: float,
) -> Float[Tensor, "batch src_pos_plus_null base_pos"]:
    """Source tokens bid on their best base column (see the module docstring)."""
    batch, rows, base_pos = weights.shape
    src = weights[:, :-1].masked_fill(~base_mask.bool()[:, None, :], -1.0)
    bid, column = src.max(dim=2)  # each source token's best base column
    null_there = weights[:, -1].gather(1, column)
    accepted = (bid > null_there) & (bid > floor) & source_mask.bool() & (bid >= 0)
    bids = torch.full_like(src, -1.0)
    bids.scatter_(2, column[:, :, None], torch.where(accepted, bid, -1.0)[:, :, None])
    best, winner = bids.max(dim=1)  # first max wins ties
    taken = best > 0
    rows_index = torch.where(taken, winner, torch.full_like(winner, rows - 1))
    hard = F.one_hot(rows_index, rows).transpose(1, 2).to(weights.dtype)
    return keep_masked_base(hard, base_mask)


def read_out(
    weights: Float[Tensor, "batch src_pos_plus_null base_pos"],
    mode: SelectionMode,
    base_mask: Bool[Tensor, "batch base_pos"],
    source_mask: Bool[Tensor, "batch src_pos"],
    floor: float = 0.1,
) -> Float[Tensor, "batch src_pos_plus_null base_pos"]:
    """The selection used for intervening, from the soft weights (see the module docstring)."""
    if mode == "soft":
        return weights
    if mode == "one_to_many":
        return one_to_many(weights.detach(), base_mask)
    if mode == "one_to_one":
        return one_to_one(weights.detach(), base_mask, source_mask, floor)
    raise ValueError(f"selection_mode must be one of {SELECTION_MODES}, got {mode!r}")
