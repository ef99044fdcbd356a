"""Which data a run uses: :class:`DataConfig` (the offline GeoNames city domain or a real RAVEL
domain, the target attributes, the caps). Torch-free, so the command line builds its data
options from it; :mod:`hyperdas_tl.experiment` builds the data.
"""

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from tyro.conf import arg

from hyperdas_tl.choices import GENERATION_BACKENDS, RAVEL_DOMAINS, GenerationBackend
from hyperdas_tl.config_values import (
    AttributeNames,
    AttributeNamesOrNone,
    NonNegativeInt,
    PositiveInt,
    one_of,
)

DataSource = Literal["geonames", "ravel"]
Bucketing = Literal["eval", "all", "none"]
BUCKETINGS: tuple[str, ...] = ("eval", "all", "none")


@dataclass
class DataConfig:
    """Which data, which attributes, how much of it."""

    source: DataSource = "geonames"
    """``"geonames"``: the offline city domain built from PyPI data (no download); ``"ravel"``:
    the real benchmark (archive from ``ravel_path`` or ``$HYPERDAS_TL_RAVEL``)."""
    domain: Annotated[str, one_of(RAVEL_DOMAINS, "DOMAIN")] = "city"
    """RAVEL entity type (only ``"city"`` for ``geonames``)."""
    attributes: AttributeNames = ("Country", "Continent")
    """Target attributes (each is a concept for HyperDAS)."""
    ravel_path: Annotated[str | None, arg(name="ravel")] = None
    """RAVEL ``data.tgz`` or folder (default ``$HYPERDAS_TL_RAVEL``)."""
    max_entities: PositiveInt = 80
    """Entities sampled before the model-specific filtering (RAVEL keeps ~400)."""
    max_templates: PositiveInt = 6
    """Templates per attribute sampled before filtering (RAVEL keeps at most 12)."""
    train_pairs: PositiveInt = 512
    """Cause + isolate training examples per target attribute."""
    eval_pairs: PositiveInt = 128
    """Cause + isolate examples per attribute in each validation/test split."""
    batch_size: PositiveInt = 16
    """Examples per batch."""
    max_label_tokens: PositiveInt = 3
    """Label tokens kept for teacher forcing."""
    seed: Annotated[NonNegativeInt, arg(name="data-seed")] = 0
    """Seed of sampling and shuffling."""
    bucketing: Bucketing = "eval"
    """Which splits are batched by token length (sorted by base then source length), so that
    little padding is computed. ``"eval"`` (default): the validation and test splits, whose
    scores do not depend on batching (tested); training batches stay shuffled. ``"all"``: the
    training split too (the default before 2026-12-02): each training batch then holds examples
    of one length, often of one template and one attribute, and HyperDAS learned far less from
    such batches (RAVEL city: test_entity Disentangle 0.24 bucketed vs 0.54 shuffled,
    ``analyses/results/benchmark_smollm2_city_unbucketed``). ``"none"``: no split (the batching
    of runs made before bucketing existed; the README's earlier city HyperDAS run replays
    exactly only with it, see ``analyses/results/seed_study_ravel_city``). The trainer visits
    the batches in a seeded random order in every case."""
    instance_attributes: AttributeNamesOrNone = None
    """Attributes the instance is built for (default: every attribute of the domain, which makes
    isolate examples over all of them possible and shares the cache with ``analyses/``)."""
    instance_generation: GenerationBackend = "kv_cached"
    """How the instance's prompts are decoded (:attr:`hyperdas_tl.data.InstanceConfig.generation`):
    ``"kv_cached"`` (every committed run), or ``"prefix_cached"``, which runs each batch's shared
    template prefix once (for full-size instances; a different cached instance, whose bf16
    labels can differ at near ties)."""

    def __post_init__(self) -> None:
        self.attributes = tuple(self.attributes)
        if self.instance_attributes is not None:
            self.instance_attributes = tuple(self.instance_attributes)
        if self.source not in ("geonames", "ravel"):
            raise ValueError(f"source must be 'geonames' or 'ravel', got {self.source!r}")
        if self.source == "geonames" and self.domain != "city":
            raise ValueError(
                f"the offline geonames data has only the 'city' domain, not {self.domain!r}"
            )
        if self.instance_generation not in GENERATION_BACKENDS:
            raise ValueError(
                f"instance_generation must be one of {GENERATION_BACKENDS}, "
                f"got {self.instance_generation!r}"
            )
        if self.bucketing not in BUCKETINGS:
            raise ValueError(f"bucketing must be one of {BUCKETINGS}, got {self.bucketing!r}")
        if not self.attributes:
            raise ValueError("attributes must name at least one target attribute")
        for name in ("max_entities", "max_templates", "train_pairs", "eval_pairs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def bucketed(self, split: str) -> bool:
        """Whether ``split``'s examples are sorted by length before batching."""
        return self.bucketing == "all" or (self.bucketing == "eval" and split != "train")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataConfig":
        """Inverse of :meth:`to_dict` (JSON turns tuples into lists). Configs recorded before
        :attr:`bucketing` existed carry ``bucket_by_length`` (on: every split bucketed)."""
        data = dict(data)
        if "bucket_by_length" in data:
            data["bucketing"] = "all" if data.pop("bucket_by_length") else "none"
        for name in ("attributes", "instance_attributes"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        return cls(**data)
