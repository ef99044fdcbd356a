"""What a comparison needs of its data, checked before any training: the splits it reads, the
attributes its training examples target, and each attribute's cause rows for the per-attribute
methods."""

from collections.abc import Sequence

from hyperdas_tl.compare.methods import PER_ATTRIBUTE_METHODS
from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.experiment import ExperimentData


def split_batches(data: ExperimentData, split: str) -> list[InterventionBatch]:
    """The batches of ``split``; a missing or empty split is an error."""
    batches = data.batches.get(split)
    if not batches:
        raise ValueError(f"the data has no {split!r} batches; it has {sorted(data.batches)}")
    return batches


def target_attributes(data: ExperimentData) -> tuple[str, ...]:
    """The data's attributes that some training example targets, in the config's order."""
    present = {e.target_attribute for e in data.examples.get("train", [])}
    attributes = tuple(a for a in data.config.attributes if a in present)
    if not attributes:
        raise ValueError("no training example targets any of the data's attributes")
    return attributes


def check_attribute_rows(data: ExperimentData, methods: Sequence[str], val_split: str) -> None:
    """Refuse, before any training, data on which a per-attribute method cannot run: every
    target attribute needs cause examples in ``train`` and in ``val_split``."""
    if not PER_ATTRIBUTE_METHODS & set(methods):
        return
    counts = data.counts()
    missing = [
        f"{attribute} has no cause examples in {split!r}"
        for attribute in data.config.attributes
        for split in ("train", val_split)
        if not counts.get(split, {}).get(f"{attribute}/cause")
    ]
    if missing:
        raise ValueError(
            "per-attribute methods (DAS, MDAS, probe) need each attribute's cause rows: "
            + "; ".join(missing)
            + " (raise max_templates / max_entities, or drop the attribute)"
        )
