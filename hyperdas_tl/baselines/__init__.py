"""Baselines HyperDAS is compared with: DAS / MDAS subspaces and linear probes.

- :mod:`hyperdas_tl.baselines.das`: one trainer for DAS (cause examples) and MDAS (cause +
  isolate), a learned orthonormal basis at the entity's last token.
- :mod:`hyperdas_tl.baselines.probes`: per-layer logistic-regression probes on the entity's
  residual, and the span of a probe's weight rows as an interchange subspace.
- :mod:`hyperdas_tl.baselines.sweeps`: a layer sweep and a subspace-dimension sweep.

Every baseline is scored by :func:`hyperdas_tl.metrics.evaluate`.
"""

from hyperdas_tl.baselines.das import (
    DASConfig,
    DASHistory,
    DASIntervention,
    DASResult,
    SubspaceBasis,
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
    "DASConfig",
    "DASHistory",
    "DASIntervention",
    "DASResult",
    "LinearProbe",
    "ProbeConfig",
    "ProbeLayerScore",
    "ProbeSweep",
    "SubspaceBasis",
    "SweepPoint",
    "SweepResult",
    "dimension_sweep",
    "layer_sweep",
    "probe_samples",
    "train_das",
    "train_probes",
]
