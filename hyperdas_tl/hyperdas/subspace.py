"""The concept-conditioned subspace ``R(e) = (I - 2 v vᵀ) R0``.

``R0`` (``d_model x k``) is a learned base subspace with orthonormal columns by construction
(``torch.nn.utils.parametrizations.orthogonal``), initialised as a random orthonormal matrix
(``nn.init.orthogonal_``: QR of a Gaussian; the official implementation leaves it
uninitialised). ``v`` is a unit vector computed from the encoding ``e`` by a small
RMSNorm + gated (SwiGLU) MLP, so each concept reflects ``R0`` through its own hyperplane. A
Householder reflection is orthogonal, hence ``R(e)`` keeps orthonormal columns for every ``e``.
It is computed as ``R0 - 2 v (vᵀ R0)``: ``O(d_model k)`` per example, never a
``d_model x d_model`` matrix.

Caveat for optimisers: for a tall matrix PyTorch's ``orthogonal`` uses the Householder map and
stores each column's sign as the integer part of the diagonal of its unconstrained parameter,
so R0 must never get weight decay (a decayed diagonal of 0.99 truncates to 0 and zeroes the
column). :func:`hyperdas_tl.hyperdas.train.build_optimizer` puts R0 in its own group with
``weight_decay=0``.

The default rank ``k`` and its justification live in :mod:`hyperdas_tl.hyperdas.config`
(:func:`~hyperdas_tl.hyperdas.config.default_k`).
"""

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from hyperdas_tl.hyperdas.hypernetwork import RMSNorm, unit_normalize


class HouseholderSubspace(nn.Module):
    """``e -> R(e)``, a per-example orthonormal ``[d_model, k]`` basis."""

    def __init__(self, d_model: int, k: int, hidden: int | None = None) -> None:
        super().__init__()
        if not 1 <= k <= d_model:
            raise ValueError(f"k must be in [1, d_model={d_model}], got {k}")
        self.d_model, self.k = d_model, k
        holder = nn.Linear(k, d_model, bias=False)  # weight: [d_model, k]
        nn.init.orthogonal_(holder.weight)
        self.r0_holder = parametrizations.orthogonal(holder)
        hidden = hidden or d_model
        self.norm = RMSNorm(d_model)
        self.gate = nn.Linear(d_model, hidden, bias=False)
        self.up = nn.Linear(d_model, hidden, bias=False)
        self.down = nn.Linear(hidden, d_model, bias=False)

    @property
    def r0(self) -> Float[Tensor, "d_model k"]:
        """The base subspace ``R0`` (orthonormal columns)."""
        return self.r0_holder.weight

    def reflection_vector(
        self, encoding: Float[Tensor, "batch d_model"]
    ) -> Float[Tensor, "batch d_model"]:
        """The unit Householder vector ``v(e)``."""
        x = self.norm(encoding)
        return unit_normalize(self.down(F.silu(self.gate(x)) * self.up(x)))

    def forward(self, encoding: Float[Tensor, "batch d_model"]) -> Float[Tensor, "batch d_model k"]:
        v = self.reflection_vector(encoding)
        r0 = self.r0.to(v.dtype)
        return r0[None] - 2.0 * v[:, :, None] * (v @ r0)[:, None, :]


def r0_parameters(module: HouseholderSubspace) -> list[nn.Parameter]:
    """The parameters that define ``R0`` (for their own optimiser group)."""
    return list(module.r0_holder.parameters())


def orthonormality_error(basis: Float[Tensor, "*batch d_model k"]) -> float:
    """``max |RᵀR - I|`` (for tests and sanity checks)."""
    with torch.no_grad():
        gram = basis.transpose(-1, -2).float() @ basis.float()
        eye = torch.eye(basis.shape[-1], device=basis.device)
        return float((gram - eye).abs().max())
