"""Which data a run uses: :class:`DataConfig` (the offline GeoNames city domain or a real RAVEL
domain, the target attributes, the caps). Torch-free, so the command line builds its data
options from it; :mod:`hyperdas_tl.experiment` builds the data.
"""

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from tyro.conf import arg

from hyperdas_tl.choices import RAVEL_DOMAINS
from hyperdas_tl.config_values import (
    AttributeNames,
    AttributeNamesOrNone,
    NonNegativeInt,
    PositiveInt,
    one_of,
)

DataSource = Literal["geonames", "ravel"]


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
    bucket_by_length: bool = True
    """Batch examples of similar token length together (sorted by base then source length),
    so little padding is computed; the trainer still visits the batches in a seeded random
    order. The scores of a given intervention do not depend on it (tested); training does,
    because each batch then holds examples of one length, often of one template: the README's
    earlier city HyperDAS run replays exactly only with it off (see
    ``analyses/results/seed_study_ravel_city``)."""
    instance_attributes: AttributeNamesOrNone = None
    """Attributes the instance is built for (default: every attribute of the domain, which makes
    isolate examples over all of them possible and shares the cache with ``analyses/``)."""

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
        if not self.attributes:
            raise ValueError("attributes must name at least one target attribute")
        for name in ("max_entities", "max_templates", "train_pairs", "eval_pairs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataConfig":
        """Inverse of :meth:`to_dict` (JSON turns tuples into lists)."""
        data = dict(data)
        for name in ("attributes", "instance_attributes"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        return cls(**data)
