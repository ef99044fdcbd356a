"""Build :class:`InterventionBatch` objects straight from token ids (no tokenizer, no RAVEL).

The batches follow the conventions of :mod:`hyperdas_tl.data.batching`: right padding, base_ids =
prompt + label tokens, ``labels[b, t]`` = the token to predict after position ``t``.
"""

from dataclasses import dataclass

import torch

from hyperdas_tl.data.batching import IGNORE_INDEX, InterventionBatch
from hyperdas_tl.data.examples import InterventionExample

PAD = 2


@dataclass
class Row:
    """One synthetic example as token ids."""

    base_prompt: list[int]
    base_entity_last: int
    source_prompt: list[int]
    source_entity_last: int
    label_tokens: list[int]
    kind: str = "cause"
    attribute: str = "A"
    queried: str | None = None
    label_text: str = "x"
    domain: str = "synthetic"
    split: str = "test"
    base_label: str | None = None
    """The queried attribute's value for the base entity (default: ``label_text``)."""
    counterfactual_label: str | None = None
    """The queried attribute's value for the source entity (default: ``label_text``)."""


def example_of(row: Row) -> InterventionExample:
    queried = row.queried or (row.attribute if row.kind == "cause" else f"not-{row.attribute}")
    return InterventionExample(
        base_prompt=" ".join(map(str, row.base_prompt)),
        base_entity=str(row.base_prompt[row.base_entity_last]),
        source_prompt=" ".join(map(str, row.source_prompt)),
        source_entity=str(row.source_prompt[row.source_entity_last]),
        target_attribute=row.attribute,
        queried_attribute=queried,
        concept=f"the {row.attribute}",
        label=row.label_text,
        base_label=row.label_text if row.base_label is None else row.base_label,
        counterfactual_label=(
            row.label_text if row.counterfactual_label is None else row.counterfactual_label
        ),
        kind=row.kind,  # type: ignore[arg-type]
        split=row.split,
        domain=row.domain,
    )


def _pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs], dtype=torch.long)


def make_batch(rows: list[Row], pad: int = PAD) -> InterventionBatch:
    """A padded batch of ``rows`` (see the module docstring)."""
    base = [r.base_prompt + r.label_tokens for r in rows]
    labels = []
    for r in rows:
        n = len(r.base_prompt)
        row_labels = [IGNORE_INDEX] * (n + len(r.label_tokens))
        for i, token in enumerate(r.label_tokens):
            row_labels[n - 1 + i] = token
        labels.append(row_labels)
    base_ids = _pad(base, pad)
    base_mask = _pad([[1] * len(s) for s in base], 0)
    base_intervenable = _pad([[1] * len(r.base_prompt) for r in rows], 0)
    base_intervenable = torch.nn.functional.pad(
        base_intervenable, (0, base_ids.shape[1] - base_intervenable.shape[1])
    ).bool()
    source_ids = _pad([r.source_prompt for r in rows], pad)
    source_mask = _pad([[1] * len(r.source_prompt) for r in rows], 0)
    return InterventionBatch(
        base_ids=base_ids,
        base_attention_mask=base_mask,
        base_intervenable=base_intervenable,
        base_entity_last=torch.tensor([r.base_entity_last for r in rows]),
        source_ids=source_ids,
        source_attention_mask=source_mask,
        source_intervenable=source_mask.bool(),
        source_entity_last=torch.tensor([r.source_entity_last for r in rows]),
        labels=_pad(labels, IGNORE_INDEX),
        is_cause=torch.tensor([r.kind == "cause" for r in rows]),
        concept_ids=torch.ones(len(rows), 2, dtype=torch.long),
        concept_attention_mask=torch.ones(len(rows), 2, dtype=torch.long),
        examples=[example_of(r) for r in rows],
    )
