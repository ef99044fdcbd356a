"""The unit every trainer and metric consumes: one base/source interchange example.

An :class:`InterventionExample` is text; :mod:`hyperdas_tl.data.batching` turns a list of them
into an :class:`~hyperdas_tl.data.batching.InterventionBatch` of tensors.
"""

from dataclasses import asdict, dataclass
from typing import Literal

ExampleKind = Literal["cause", "isolate"]


@dataclass(frozen=True)
class InterventionExample:
    """One RAVEL-style interchange example (Cause or Isolate) for a target attribute."""

    base_prompt: str
    """Prompt the intervened run reads, e.g. "Paris is a city in the country of"."""
    base_entity: str
    """Entity mentioned in the base prompt (its last token is the DAS position)."""
    source_prompt: str
    """Prompt the source activations come from (any template or a Wikipedia fragment)."""
    source_entity: str
    """Entity mentioned in the source prompt."""
    target_attribute: str
    """Attribute A whose subspace is interchanged (the concept)."""
    queried_attribute: str
    """Attribute the base prompt asks about: A for cause examples, B != A for isolate."""
    concept: str
    """Concept text for A given to the hypernetwork, e.g. "the country of a city"."""
    label: str
    """Expected continuation after intervention (counterfactual label for cause, base label
    for isolate), with its leading space as the model would generate it."""
    base_label: str
    """The model's own output for the base prompt."""
    counterfactual_label: str
    """The model's own output for the base template filled with the source entity."""
    kind: ExampleKind
    """"cause" or "isolate"."""
    split: str = "train"
    """Split this example belongs to (train / val / test)."""
    domain: str = "city"
    """RAVEL entity type."""

    @property
    def is_cause(self) -> bool:
        return self.kind == "cause"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> "InterventionExample":
        return cls(**data)
