"""95 % bootstrap intervals for Cause / Isolate / Disentangle and for paired differences.

Every score here is a mean of per-example verdicts (0/1, or a mean over seeds in [0, 1]),
possibly macro-averaged over *cells* (the (target attribute, kind) groups RAVEL averages
over). Intervals come from :func:`scipy.stats.bootstrap`; nothing here loops over resamples.

- :func:`bootstrap_mean`: the interval of a mean (or of a macro mean over cells).
- :func:`paired_difference`: the interval of ``mean(A) - mean(B)`` on the *same* examples:
  the per-example difference ``a_i - b_i`` is resampled, so what both methods get right or
  wrong together cancels. Disentangle's difference is the macro mean over the cells
  (cause, isolate) of the per-cell difference, with both kinds resampled jointly.
- :func:`decide`: the decision rule, fixed before any run: "A beats B" only when the paired
  95 % interval of ``A - B`` excludes 0. :func:`decide_over_seeds` adds the seed condition
  (2026-12-03, after the city benchmark, whose HyperDAS − MDAS was above 0 pooled and below 0
  with one seed): no seed's own paired interval may lie on the other side of 0.

**Clusters.** Examples that share a base entity are not independent (the entity's residual is
what every intervention edits). The default is a *cluster* bootstrap: the resampled units are
the base entities, and each resample's statistic is the ratio of the resampled clusters'
sums (``Σ values / Σ counts`` per cell). With ``BootstrapConfig(cluster=False)`` every example
is its own cluster, which is the ordinary bootstrap over examples.

Edge cases are handled before scipy is called: no input is a ``ValueError``; a statistic that
no resample can change (every cell's values equal, e.g. a method minus itself, or one cluster)
gets a zero-width interval at its value, without scipy's degenerate-data warning or a NaN.
A resample that happens to miss a cell entirely (possible only with few clusters) averages
over the cells it has.
"""

import logging
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats as scipy_stats

from hyperdas_tl.config_dict import check_known_fields

logger = logging.getLogger(__name__)

BootstrapMethod = Literal["percentile", "basic", "BCa"]
BOOTSTRAP_METHODS: tuple[BootstrapMethod, ...] = ("percentile", "basic", "BCa")
Decision = Literal["A > B", "A < B", "no difference", "no consistent difference"]

Values = Sequence[float] | Sequence[int] | np.ndarray
"""One number per example: 0/1 verdicts (bools or ints), seed means, differences."""
Labels = Sequence[Hashable] | np.ndarray
"""One label per example: its cluster (base entity) or its cell (attribute, kind)."""

_BATCH = 256
"""Resamples per vectorised statistic call (bounds memory to ~batch x clusters x cells)."""


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval."""

    mean: float
    """The statistic on the full data (a mean of verdicts, or a difference of means)."""
    lo: float
    """Lower end of the interval."""
    hi: float
    """Upper end of the interval."""
    n: int
    """Examples the statistic is computed on."""
    n_clusters: int | None = None
    """Resampled units (base entities for the cluster bootstrap; None when not recorded)."""

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def excludes_zero(self) -> bool:
        """True when 0 lies outside ``[lo, hi]``."""
        return self.lo > 0 or self.hi < 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mean": self.mean, "lo": self.lo, "hi": self.hi, "n": self.n}
        if self.n_clusters is not None:
            out["n_clusters"] = self.n_clusters
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Interval":
        return cls(
            mean=float(data["mean"]),
            lo=float(data["lo"]),
            hi=float(data["hi"]),
            n=int(data["n"]),
            n_clusters=data.get("n_clusters"),
        )


@dataclass
class BootstrapConfig:
    """How intervals are computed."""

    n_resamples: int = 2000
    """Bootstrap resamples."""
    confidence: float = 0.95
    """Two-sided confidence level."""
    method: BootstrapMethod = "percentile"
    """scipy's interval method: ``"percentile"``, ``"basic"`` or ``"BCa"``."""
    cluster: bool = True
    """Resample base entities (clusters) rather than examples; see the module docstring."""
    seed: int = 0
    """Seeds the resampling (``numpy.random.default_rng(seed)``); a fresh generator per call,
    so every interval is reproducible on its own."""

    def __post_init__(self) -> None:
        if isinstance(self.n_resamples, bool) or self.n_resamples < 100:
            raise ValueError(f"n_resamples must be an int >= 100, got {self.n_resamples!r}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.method not in BOOTSTRAP_METHODS:
            raise ValueError(f"method must be one of {BOOTSTRAP_METHODS}, got {self.method!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BootstrapConfig":
        check_known_fields(cls, data)
        return cls(**data)


def _as_values(values: Values, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{what} is empty: a bootstrap interval needs at least one example")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} holds non-finite values")
    return array


def _codes(labels: Labels | None, n: int, what: str, *, shared: bool) -> np.ndarray:
    """Integer codes of ``labels`` (in first-seen order). ``None``: one code for every row
    (``shared``) or a code per row."""
    if labels is None:
        return np.zeros(n, dtype=np.int64) if shared else np.arange(n)
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"{what} has {len(labels)} entries for {n} values")
    index: dict[Hashable, int] = {}
    return np.array([index.setdefault(label, len(index)) for label in labels], dtype=np.int64)


def bootstrap_mean(
    values: Values,
    *,
    clusters: Labels | None = None,
    cells: Labels | None = None,
    config: BootstrapConfig | None = None,
) -> Interval:
    """Bootstrap interval of the mean of ``values``, or of the unweighted mean over ``cells``
    of each cell's mean (RAVEL's macro average over attributes / kinds).

    Args:
        values: one number per example (0/1 verdicts, seed-averaged verdicts, differences).
        clusters: the cluster of each example (its base entity); resampled as units when
            ``config.cluster`` (the default). None: every example is its own cluster.
        cells: the cell of each example, e.g. ``(attribute, kind)``. None: one cell.
        config: resamples, confidence level, method, seed.
    """
    config = config or BootstrapConfig()
    array = _as_values(values, "values")
    n = array.size
    cluster_codes = _codes(clusters if config.cluster else None, n, "clusters", shared=False)
    cell_codes = _codes(cells, n, "cells", shared=True)
    n_clusters, n_cells = int(cluster_codes.max()) + 1, int(cell_codes.max()) + 1
    sums = np.zeros((n_cells, n_clusters))
    counts = np.zeros((n_cells, n_clusters))
    np.add.at(sums, (cell_codes, cluster_codes), array)
    np.add.at(counts, (cell_codes, cluster_codes), 1.0)
    mean = float(np.mean(sums.sum(axis=1) / counts.sum(axis=1)))

    spread = max(float(np.ptp(array[cell_codes == c])) for c in range(n_cells))
    if spread == 0.0 or n_clusters == 1:
        if spread != 0.0:
            logger.warning("one cluster only: the interval has zero width by construction")
        return Interval(mean, mean, mean, n, n_clusters)

    def statistic(index: np.ndarray, axis: int = -1) -> np.ndarray | float:
        # index: [..., n_clusters] resampled cluster ids -> the macro mean of ratio of sums
        total = sums[:, index].sum(axis=-1)  # [cells, ...]
        count = counts[:, index].sum(axis=-1)
        present = count > 0
        ratio = np.divide(total, count, out=np.zeros_like(total), where=present)
        return ratio.sum(axis=0) / present.sum(axis=0)

    result = scipy_stats.bootstrap(
        (np.arange(n_clusters),),
        statistic,
        n_resamples=config.n_resamples,
        batch=_BATCH,
        vectorized=True,
        axis=-1,
        confidence_level=config.confidence,
        method=config.method,
        rng=np.random.default_rng(config.seed),
    )
    lo, hi = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return Interval(mean, lo, hi, n, n_clusters)


def paired_difference(
    a: Values,
    b: Values,
    *,
    clusters: Labels | None = None,
    cells: Labels | None = None,
    config: BootstrapConfig | None = None,
) -> Interval:
    """Paired bootstrap interval of ``mean(a) - mean(b)``: ``a[i]`` and ``b[i]`` are two methods'
    verdicts on the *same* example ``i``; the per-example difference is resampled (by cluster
    and with the macro mean over ``cells`` as in :func:`bootstrap_mean`).

    With ``cells = kinds`` (``"cause"`` / ``"isolate"``) this is the Disentangle difference: the
    mean of the cause difference and the isolate difference, both kinds resampled jointly.
    A method minus itself is exactly 0 with a zero-width interval.
    """
    first, second = _as_values(a, "a"), _as_values(b, "b")
    if first.shape != second.shape:
        raise ValueError(
            f"paired samples must have the same length, got {first.size} and {second.size}"
        )
    return bootstrap_mean(first - second, clusters=clusters, cells=cells, config=config)


def decide(difference: Interval) -> Decision:
    """The decision rule for ``difference = A - B``: ``"A > B"`` only when the whole interval
    is above 0, ``"A < B"`` only when it is below 0, else ``"no difference"``."""
    if difference.lo > 0:
        return "A > B"
    if difference.hi < 0:
        return "A < B"
    return "no difference"


def decide_over_seeds(pooled: Interval, per_seed: Sequence[Interval] = ()) -> Decision:
    """The decision rule with the seed condition: :func:`decide` on the seed-pooled interval,
    unless the interval of one seed's own paired difference lies wholly on the other side of 0,
    then ``"no consistent difference"`` (the pooled interval resamples examples, not the trained
    models, so it cannot see that a verdict turns on the seed)."""
    verdict = decide(pooled)
    opposite = {"A > B": "A < B", "A < B": "A > B"}.get(verdict)
    if opposite is not None and any(decide(seed) == opposite for seed in per_seed):
        return "no consistent difference"
    return verdict


def decision_text(difference: Interval, a: str, b: str, per_seed: Sequence[Interval] = ()) -> str:
    """:func:`decide_over_seeds` with the methods' names: ``"HyperDAS (soft) > MDAS"`` etc."""
    verdict = decide_over_seeds(difference, per_seed)
    if verdict == "A > B":
        return f"{a} > {b}"
    if verdict == "A < B":
        return f"{a} < {b}"
    return verdict


@dataclass(frozen=True)
class SeedSpread:
    """One score over the seeds of a trained method."""

    mean: float
    sd: float | None
    """Sample standard deviation (``ddof=1``); None for a single seed."""
    n_seeds: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_spread(values: Values) -> SeedSpread:
    """Mean and sample sd of one score over seeds."""
    array = _as_values(values, "per-seed values")
    sd = float(np.std(array, ddof=1)) if array.size > 1 else None
    return SeedSpread(float(np.mean(array)), sd, int(array.size))
