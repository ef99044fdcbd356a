"""Build :class:`InterventionBatch` objects straight from token ids (no tokenizer, no RAVEL).

The tensors come from :func:`hyperdas_tl.data.token_rows.token_batch` (the package's one
token-id batch builder); a :class:`Row` adds what the batch's :class:`InterventionExample` list
needs (attribute, labels, split).
"""

from dataclasses import dataclass

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.data.examples import InterventionExample
from hyperdas_tl.data.token_rows import PAD, TokenRow, token_batch


@dataclass
class Row(TokenRow):
    """One synthetic example as token ids, with its example's text fields."""

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


def make_batch(rows: list[Row], pad: int = PAD) -> InterventionBatch:
    """A padded batch of ``rows`` (see :func:`~hyperdas_tl.data.token_rows.token_batch`)."""
    return token_batch(rows, pad, examples=[example_of(r) for r in rows])
