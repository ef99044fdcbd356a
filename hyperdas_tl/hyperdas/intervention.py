"""A trained HyperDAS as a :data:`hyperdas_tl.metrics.Intervention`, so it is scored by exactly
the same code as DAS, MDAS, probe subspaces and the controls; :func:`hyperdas_read_outs` gives
its read-outs together, sharing one pair of frozen passes per batch."""

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.hooks import soft_interchange_hook_for
from hyperdas_tl.hyperdas.config import SELECTION_MODES, SelectionMode, check_selection_mode
from hyperdas_tl.hyperdas.model import HyperDAS, TargetStates, check_batch
from hyperdas_tl.interchange import fit_selection_width
from hyperdas_tl.metrics import Hooks, Intervention

BasisTransform = Callable[[Tensor], Tensor]
StatesOf = Callable[[InterventionBatch], TargetStates]


class LastBatchStates:
    """``model.target_states`` of the last batch it was asked for, kept until another batch
    (the same object) is asked for: read-outs judged one after another on one batch
    (:func:`hyperdas_tl.metrics.evaluate_interventions`) share one pair of frozen passes."""

    def __init__(self, model: HyperDAS) -> None:
        self.model = model
        self.batch: InterventionBatch | None = None
        self.states: TargetStates | None = None
        self.computed = 0
        """How many times the frozen passes ran."""

    def __call__(self, batch: InterventionBatch) -> TargetStates:
        if batch is not self.batch or self.states is None:
            self.states = self.model.target_states(batch)
            self.batch = batch
            self.computed += 1
        return self.states


def hyperdas_intervention(
    model: HyperDAS,
    selection_mode: SelectionMode = "soft",
    *,
    zero_source: bool = False,
    basis_override: BasisTransform | None = None,
    states_of: StatesOf | None = None,
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
        states_of: where the frozen states of a batch come from (default: computed for each
            call; :class:`LastBatchStates` shares them between read-outs).
    """
    check_selection_mode(selection_mode)

    @torch.no_grad()
    def build(batch: InterventionBatch, width: int) -> Hooks:
        check_batch(batch, model.target)  # before the frozen passes
        states = model.target_states(batch) if states_of is None else states_of(batch)
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


def hyperdas_read_outs(
    model: HyperDAS,
    modes: Sequence[SelectionMode] = SELECTION_MODES,
    *,
    name: str = "HyperDAS",
) -> dict[str, Intervention]:
    """``{"{name} ({mode})": intervention}`` for each read-out, sharing one
    :class:`LastBatchStates`: scored together by
    :func:`hyperdas_tl.metrics.evaluate_interventions`, each batch's frozen passes run once for
    all read-outs instead of once per read-out (the hooks are the same)."""
    for mode in modes:
        check_selection_mode(mode)
    shared = LastBatchStates(model)
    return {
        f"{name} ({mode})": hyperdas_intervention(model, mode, states_of=shared) for mode in modes
    }
