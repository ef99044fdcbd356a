"""A trained HyperDAS as a :data:`hyperdas_tl.metrics.Intervention`, so it is scored by exactly
the same code as DAS, MDAS, probe subspaces and the controls."""

from collections.abc import Callable

import torch
from torch import Tensor

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.hooks import soft_interchange_hook_for
from hyperdas_tl.hyperdas.config import SelectionMode, check_selection_mode
from hyperdas_tl.hyperdas.model import HyperDAS, check_batch
from hyperdas_tl.interchange import fit_selection_width
from hyperdas_tl.metrics import Hooks, Intervention

BasisTransform = Callable[[Tensor], Tensor]


def hyperdas_intervention(
    model: HyperDAS,
    selection_mode: SelectionMode = "soft",
    *,
    zero_source: bool = False,
    basis_override: BasisTransform | None = None,
) -> Intervention:
    """``(batch, width) -> hooks`` applying HyperDAS's selection and ``R(e)`` at
    ``blocks.{layer}.hook_resid_pre``.

    Args:
        model: a (trained) HyperDAS.
        selection_mode: the read-out: ``"soft"``, ``"one_to_many"`` or ``"one_to_one"``.
        zero_source: faithfulness control: the hypernetwork *and* the interchange see the
            source's residual states zeroed, so any label it produces cannot come from the source.
        basis_override: faithfulness control: replaces ``R(e)`` (e.g. by a random orthonormal
            basis of the same k), keeping the selection.
    """
    check_selection_mode(selection_mode)

    @torch.no_grad()
    def build(batch: InterventionBatch, width: int) -> Hooks:
        check_batch(batch, model.target)  # before the frozen passes
        states = model.target_states(batch)
        if zero_source:
            states = states.with_zeroed_source()
        # the weights alone: the intervened run is the judge's own forward with these hooks
        weights = model.intervention_weights(batch, states, selection_mode)
        weights.check_finite()
        basis = weights.basis if basis_override is None else basis_override(weights.basis)
        selection = fit_selection_width(weights.selection, width)
        source = states.source.at(model.layer)
        # allow_empty: basis_override may be the "empty subspace" control (a deliberate no-op)
        hook = soft_interchange_hook_for(
            model.target, model.layer, source, selection, basis, allow_empty=True
        )
        return [hook]

    return build
