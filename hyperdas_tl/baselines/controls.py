"""Controls scored beside DAS / MDAS / HyperDAS on the same examples.

- :func:`~hyperdas_tl.metrics.no_intervention`: the model's own behaviour (Cause is then the
  share of cause rows whose counterfactual label the base already produces: 0 by construction of
  the pairs, up to judging; Isolate is the base's own accuracy).
- :func:`random_subspace_intervention`: a seeded random orthonormal subspace of the same ``k``
  at the entity's last token (what "some k dimensions" does without learning).
- :func:`full_residual_swap_intervention`: the whole residual at the entity's last token is the
  source's (identity basis): the ceiling of Cause that any method intervening on that single
  position can reach, and the floor of its Isolate.
"""

from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from hyperdas_tl.metrics import Intervention, entity_subspace_intervention


def random_orthonormal_basis(d_model: int, k: int, *, seed: int = 0) -> Float[Tensor, "d_model k"]:
    """``Q`` of the QR decomposition of a seeded Gaussian ``d_model x k`` matrix (uniform on the
    Stiefel manifold up to the sign convention); float32 on CPU."""
    if not 1 <= k <= d_model:
        raise ValueError(f"k must be in [1, d_model={d_model}], got {k}")
    generator = torch.Generator().manual_seed(seed)
    gaussian = torch.randn(d_model, k, generator=generator, dtype=torch.float64)
    return torch.linalg.qr(gaussian).Q.float().contiguous()


def random_subspace_intervention(model: Any, layer: int, k: int, *, seed: int = 0) -> Intervention:
    """Interchange a seeded random ``k``-dimensional subspace at the entity's last token."""
    device = next(iter(model.parameters())).device
    basis = random_orthonormal_basis(int(model.cfg.d_model), k, seed=seed).to(device)
    return entity_subspace_intervention(model, layer, basis)


def full_residual_swap_intervention(model: Any, layer: int) -> Intervention:
    """Replace the whole residual at the base entity's last token by the source's (identity
    basis, ``k = d_model``)."""
    d_model = int(model.cfg.d_model)
    device = next(iter(model.parameters())).device
    return entity_subspace_intervention(model, layer, torch.eye(d_model, device=device))
