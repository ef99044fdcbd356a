"""Random subspace: HyperDAS's selection, but ``R(e)`` replaced by a random orthonormal basis of
the same ``k``; Cause must drop far below HyperDAS's."""

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.faithfulness.result_dict import NOT_IN_DICT, ResultDict
from hyperdas_tl.faithfulness.scoring import Score, score_hyperdas
from hyperdas_tl.hyperdas.config import SelectionMode, check_selection_mode
from hyperdas_tl.hyperdas.model import HyperDAS, TargetStates
from hyperdas_tl.hyperdas.subspace import orthonormality_error
from hyperdas_tl.interchange import random_orthonormal_basis
from hyperdas_tl.metrics import EvalResult


@dataclass
class RandomSubspaceResult(ResultDict):
    """HyperDAS's selection with ``R(e)`` replaced by a random orthonormal basis of rank k."""

    selection_mode: str
    k: int
    per_example: bool
    seed: int
    hyperdas: Score
    random_subspace: Score
    orthonormality_error: float
    """Max ``|RᵀR - I|`` over the random bases used."""
    results: list[EvalResult] = field(default_factory=list, repr=False, metadata=NOT_IN_DICT)
    """HyperDAS's and the control's per-attribute results."""


def random_subspace_control(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    seed: int = 0,
    *,
    selection_mode: SelectionMode = "soft",
    per_example: bool = True,
    states: Sequence[TargetStates] | None = None,
    reference: EvalResult | None = None,
    max_label_tokens: int = 3,
) -> RandomSubspaceResult:
    """Cause/Isolate with HyperDAS's selection but a random orthonormal basis of the same ``k``
    (one per example, or one shared by all), against HyperDAS's own (expect far lower Cause).

    The bases are drawn from a generator seeded with ``seed``, batch after batch, so the result
    is a function of ``(seed, batches)``.
    """
    check_selection_mode(selection_mode)
    generator = torch.Generator().manual_seed(seed)
    d_model, k = int(hyperdas.target.cfg.d_model), hyperdas.k
    shared = None if per_example else random_orthonormal_basis(d_model, k, generator=generator)
    errors: list[float] = []

    def override(basis: Tensor) -> Tensor:
        if shared is not None:
            random = shared
        else:
            random = random_orthonormal_basis(d_model, k, batch=basis.shape[0], generator=generator)
        random = random.to(dtype=basis.dtype, device=basis.device)
        errors.append(orthonormality_error(random))
        return random

    control = score_hyperdas(
        hyperdas,
        batches,
        selection_mode,
        method=f"random subspace ({selection_mode}, k={k})",
        states=states,
        basis_override=override,
        max_label_tokens=max_label_tokens,
    )
    if reference is None:
        reference = score_hyperdas(
            hyperdas, batches, selection_mode, states=states, max_label_tokens=max_label_tokens
        )
    return RandomSubspaceResult(
        selection_mode=selection_mode,
        k=k,
        per_example=per_example,
        seed=seed,
        hyperdas=Score.of(reference),
        random_subspace=Score.of(control),
        orthonormality_error=max(errors),
        results=[reference, control],
    )
