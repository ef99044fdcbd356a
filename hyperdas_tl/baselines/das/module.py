"""The learned parameters: a ``d_model x k`` basis orthonormal by parametrisation
(:class:`SubspaceBasis`) and the intervention at the entity's last token built on it
(:class:`DASIntervention`)."""

import torch
from jaxtyping import Float
from torch import Tensor, nn
from torch.nn.utils.parametrizations import orthogonal

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.metrics import Hooks, Intervention, entity_interchange_hooks
from hyperdas_tl.target import TargetModel


class SubspaceBasis(nn.Module):
    """A ``d_model x k`` basis with orthonormal columns by parametrisation (``RᵀR = I``)."""

    def __init__(self, d_model: int, k: int, *, seed: int = 0) -> None:
        super().__init__()
        if not 1 <= k <= d_model:
            raise ValueError(f"k must be in [1, d_model={d_model}], got {k}")
        linear = nn.Linear(k, d_model, bias=False)  # weight: [d_model, k]
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            linear.weight.copy_(torch.linalg.qr(torch.randn(d_model, k, generator=generator)).Q)
        # The parametrisation draws random numbers when it completes the basis; seed them too.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.linear = orthogonal(linear)
        self.d_model, self.k = d_model, k

    @property
    def basis(self) -> Float[Tensor, "d_model k"]:
        return self.linear.weight


class DASIntervention(nn.Module):
    """A trained (or trainable) DAS subspace at ``blocks.{layer}.hook_resid_pre``."""

    def __init__(self, d_model: int, layer: int, k: int, *, seed: int = 0) -> None:
        super().__init__()
        self.layer = layer
        self.subspace = SubspaceBasis(d_model, k, seed=seed)

    @property
    def basis(self) -> Float[Tensor, "d_model k"]:
        return self.subspace.basis

    def hooks(
        self,
        model: TargetModel,
        batch: InterventionBatch,
        width: int,
        source_vectors: Float[Tensor, "batch d_model"] | None = None,
    ) -> Hooks:
        """Hooks of the entity-position interchange (differentiable in the basis)."""
        return entity_interchange_hooks(model, self.layer, batch, width, self.basis, source_vectors)

    def intervention(self, model: TargetModel) -> Intervention:
        """This subspace as a :data:`~hyperdas_tl.metrics.Intervention` for scoring."""

        def build(batch: InterventionBatch, width: int) -> Hooks:
            with torch.no_grad():
                return self.hooks(model, batch, width)

        return build
