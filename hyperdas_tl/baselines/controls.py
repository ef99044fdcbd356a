"""Controls scored beside DAS / MDAS / HyperDAS on the same examples.

- :func:`~hyperdas_tl.metrics.no_intervention`: the model's own behaviour (Cause is then the
  share of cause rows whose counterfactual label the base already produces: 0 by construction of
  the pairs, up to judging; Isolate is the base's own accuracy).
- :func:`random_subspace_intervention`: a seeded random orthonormal subspace of the same ``k``
  (:func:`hyperdas_tl.interchange.random_orthonormal_basis`) at the entity's last token: what
  "some k dimensions" does without learning.
- :func:`full_residual_swap_intervention`: the whole residual at the entity's last token is the
  source's (identity basis): the ceiling of Cause that any method intervening on that single
  position can reach, and the floor of its Isolate.
"""

import torch

from hyperdas_tl.interchange import random_orthonormal_basis
from hyperdas_tl.metrics import Intervention, entity_subspace_intervention
from hyperdas_tl.models import module_device
from hyperdas_tl.target import TargetModel


def random_subspace_intervention(
    model: TargetModel, layer: int, k: int, *, seed: int = 0
) -> Intervention:
    """Interchange a seeded Haar-random ``k``-dimensional subspace at the entity's last token."""
    device = module_device(model)
    generator = torch.Generator().manual_seed(seed)
    basis = random_orthonormal_basis(int(model.cfg.d_model), k, generator=generator, device=device)
    return entity_subspace_intervention(model, layer, basis)


def full_residual_swap_intervention(model: TargetModel, layer: int) -> Intervention:
    """Replace the whole residual at the base entity's last token by the source's (identity
    basis, ``k = d_model``)."""
    d_model = int(model.cfg.d_model)
    device = module_device(model)
    return entity_subspace_intervention(model, layer, torch.eye(d_model, device=device))
