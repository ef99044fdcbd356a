"""Which rows of the batches a DAS / MDAS run trains and validates on: rows selected by target
attribute and by kind (DAS: cause rows only), batches concatenated and regrouped to a size."""

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import torch
from jaxtyping import Bool
from torch import Tensor, nn

from hyperdas_tl.baselines.das.config import DASConfig, Objective
from hyperdas_tl.data.batching import IGNORE_INDEX, InterventionBatch


def select_rows(batch: InterventionBatch, keep: Bool[Tensor, " batch"]) -> InterventionBatch:
    """The rows of ``batch`` where ``keep`` is True (tensors and examples)."""
    if keep.shape != (len(batch),):
        raise ValueError(f"keep must be [batch={len(batch)}], got {tuple(keep.shape)}")
    values = {}
    for f in fields(batch):
        value = getattr(batch, f.name)
        if isinstance(value, Tensor):
            values[f.name] = value[keep.to(value.device)]
        elif f.name == "examples":
            values[f.name] = [e for e, k in zip(value, keep.tolist(), strict=False) if k]
        else:
            values[f.name] = value
    return InterventionBatch(**values)


def _pad_value(name: str) -> int | bool:
    if name == "labels":
        return IGNORE_INDEX
    return False if name.endswith("intervenable") else 0


def concat_batches(batches: Sequence[InterventionBatch]) -> InterventionBatch:
    """One batch holding every row of ``batches`` (right padding widened to the widest; padded
    ids, masks and labels take the batching conventions' neutral values)."""
    if not batches:
        raise ValueError("concat_batches needs at least one batch")
    values: dict[str, Any] = {}
    for f in fields(InterventionBatch):
        parts = [getattr(b, f.name) for b in batches]
        if f.name == "examples":
            values[f.name] = [e for part in parts for e in part]
        elif parts[0].ndim == 1:
            values[f.name] = torch.cat(parts)
        else:
            width = max(p.shape[1] for p in parts)
            pad = _pad_value(f.name)
            values[f.name] = torch.cat(
                [nn.functional.pad(p, (0, width - p.shape[1]), value=pad) for p in parts]
            )
    return InterventionBatch(**values)


def regroup(batches: Sequence[InterventionBatch], batch_size: int) -> list[InterventionBatch]:
    """The rows of ``batches`` (in order) in batches of ``batch_size`` (the last may be
    smaller); trailing padding columns no row uses are dropped."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not batches:
        return []
    merged = concat_batches(batches)
    out = []
    for start in range(0, len(merged), batch_size):
        keep = torch.zeros(len(merged), dtype=torch.bool)
        keep[start : start + batch_size] = True
        out.append(_trim(select_rows(merged, keep)))
    return out


def _trim(batch: InterventionBatch) -> InterventionBatch:
    """Drop padding columns beyond the longest row of base and source (and concept)."""
    widths = {
        "base": int(batch.base_attention_mask.sum(dim=1).max()),
        "source": int(batch.source_attention_mask.sum(dim=1).max()),
        "concept": int(batch.concept_attention_mask.sum(dim=1).max()),
    }
    values: dict[str, Any] = {}
    for f in fields(batch):
        value = getattr(batch, f.name)
        side = "base" if f.name == "labels" else f.name.split("_")[0]
        if isinstance(value, Tensor) and value.ndim == 2 and side in widths:
            value = value[:, : max(widths[side], 1)]
        values[f.name] = value
    return InterventionBatch(**values)


def attribute_mask(batch: InterventionBatch, attribute: str) -> Bool[Tensor, " batch"]:
    """True on the rows whose example's target attribute is ``attribute``."""
    if len(batch.examples) != len(batch):
        raise ValueError(
            f"the batch carries {len(batch.examples)} examples for {len(batch)} rows; selecting "
            "rows by target attribute needs batch.examples"
        )
    return torch.tensor([e.target_attribute == attribute for e in batch.examples])


def attribute_rows(
    batches: Sequence[InterventionBatch], attribute: str | None
) -> list[InterventionBatch]:
    """The batches restricted to the rows targeting ``attribute`` (None: every row); empty
    batches dropped."""
    kept = []
    for batch in batches:
        if attribute is not None:
            batch = select_rows(batch, attribute_mask(batch, attribute))
        if len(batch):
            kept.append(batch)
    return kept


def training_rows(
    batches: Sequence[InterventionBatch], objective: Objective, attribute: str | None = None
) -> list[InterventionBatch]:
    """The batches restricted to the rows ``objective`` trains on (DAS: cause rows; MDAS: cause
    and isolate rows), of ``attribute`` only when given; empty batches dropped."""
    kept = []
    for batch in attribute_rows(batches, attribute):
        if objective == "das":
            batch = select_rows(batch, batch.is_cause)
        if len(batch):
            kept.append(batch)
    return kept


def config_rows(
    batches: Sequence[InterventionBatch],
    val_batches: Sequence[InterventionBatch] | None,
    config: DASConfig,
) -> tuple[list[InterventionBatch], list[InterventionBatch] | None]:
    """The training rows of ``config`` (objective, attribute, regrouped to its batch size)
    and, with ``val_batches``, its validation rows (the attribute's, regrouped likewise)."""
    train = training_rows(batches, config.objective, config.attribute)
    if not train:
        which = "" if config.attribute is None else f" of attribute {config.attribute!r}"
        raise ValueError(f"no training rows{which} for objective {config.objective!r}")
    if config.batch_size is not None:
        train = regroup(train, config.batch_size)
    if val_batches is None:
        return train, None
    val = attribute_rows(val_batches, config.attribute)
    if not val:
        raise ValueError(f"no validation rows of attribute {config.attribute!r}")
    if config.batch_size is not None:
        val = regroup(val, config.batch_size)
    return train, val
