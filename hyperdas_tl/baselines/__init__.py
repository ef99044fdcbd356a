"""Baselines HyperDAS is compared with: DAS / MDAS subspaces and linear probes.

- :mod:`hyperdas_tl.baselines.das` (a package, one concept per file): one trainer for DAS
  (cause examples) and MDAS (cause + isolate), a learned orthonormal basis at the entity's last
  token; one subspace per target attribute in RAVEL's protocol
  (:func:`train_attribute_subspaces`), the learning rate and the epoch chosen on validation.
- :mod:`hyperdas_tl.baselines.controls`: no intervention, a random subspace of the same k, and
  the full-residual swap at the entity token.
- :mod:`hyperdas_tl.baselines.probes`: per-layer logistic-regression probes on the entity's
  residual, and the span of a probe's weight rows as an interchange subspace.
- :mod:`hyperdas_tl.baselines.sweeps`: a layer sweep and a subspace-dimension sweep.

Every baseline is scored by :func:`hyperdas_tl.metrics.evaluate`.
"""

from hyperdas_tl.baselines.controls import (
    full_residual_swap_intervention,
    random_subspace_intervention,
)
from hyperdas_tl.baselines.das import (
    AttributeSubspaces,
    DASConfig,
    DASEpoch,
    DASHistory,
    DASIntervention,
    DASResult,
    DASSearch,
    SubspaceBasis,
    attribute_subspace_intervention,
    concat_batches,
    regroup,
    search_lr,
    train_attribute_subspaces,
    train_das,
)
from hyperdas_tl.baselines.probes import (
    LinearProbe,
    ProbeConfig,
    ProbeLayerScore,
    ProbeSweep,
    probe_samples,
    train_probes,
)
from hyperdas_tl.baselines.sweeps import SweepPoint, SweepResult, dimension_sweep, layer_sweep

__all__ = [
    "AttributeSubspaces",
    "DASConfig",
    "DASEpoch",
    "DASHistory",
    "DASIntervention",
    "DASResult",
    "DASSearch",
    "LinearProbe",
    "ProbeConfig",
    "ProbeLayerScore",
    "ProbeSweep",
    "SubspaceBasis",
    "SweepPoint",
    "SweepResult",
    "attribute_subspace_intervention",
    "concat_batches",
    "dimension_sweep",
    "full_residual_swap_intervention",
    "layer_sweep",
    "probe_samples",
    "random_subspace_intervention",
    "regroup",
    "search_lr",
    "train_attribute_subspaces",
    "train_das",
    "train_probes",
]
