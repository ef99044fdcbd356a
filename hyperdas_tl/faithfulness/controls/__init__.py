"""The faithfulness controls, one per file: each removes one way the label could legitimately
reach the base run and checks that HyperDAS's success goes with it (see
:mod:`hyperdas_tl.faithfulness`)."""

from hyperdas_tl.faithfulness.controls.nonsense_source import (
    DEFAULT_NONSENSE,
    NonsenseSourceResult,
    nonsense_source_batches,
    nonsense_source_control,
    replace_entity,
)
from hyperdas_tl.faithfulness.controls.random_subspace import (
    RandomSubspaceResult,
    random_subspace_control,
)
from hyperdas_tl.faithfulness.controls.random_target import (
    HypernetworkInit,
    RandomTargetResult,
    random_init_copy,
    random_target_control,
)
from hyperdas_tl.faithfulness.controls.source_equals_base import (
    OWN_MASS_ATOL,
    SourceEqualsBaseResult,
    own_state_mass,
    source_equals_base_batch,
    source_equals_base_control,
)
from hyperdas_tl.faithfulness.controls.zero_source import ZeroSourceResult, zero_source_control

__all__ = [
    "DEFAULT_NONSENSE",
    "OWN_MASS_ATOL",
    "HypernetworkInit",
    "NonsenseSourceResult",
    "RandomSubspaceResult",
    "RandomTargetResult",
    "SourceEqualsBaseResult",
    "ZeroSourceResult",
    "nonsense_source_batches",
    "nonsense_source_control",
    "own_state_mass",
    "random_init_copy",
    "random_subspace_control",
    "random_target_control",
    "replace_entity",
    "source_equals_base_batch",
    "source_equals_base_control",
    "zero_source_control",
]
