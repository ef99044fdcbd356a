"""An :class:`~hyperdas_tl.data.batching.InterventionBatch` straight from token ids: no tokenizer,
no RAVEL. The one builder behind the benchmark's random batches
(:func:`hyperdas_tl.bench.inputs.synthetic_batch`) and the tests' hand-made ones.

The batches follow :mod:`hyperdas_tl.data.batching`'s conventions: right padding, base_ids =
prompt + label tokens, ``labels[b, t]`` = the token to predict after position ``t``, the prompt
(never label tokens or padding) intervenable, every real source token intervenable.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from hyperdas_tl.data.batching import IGNORE_INDEX, InterventionBatch
from hyperdas_tl.data.examples import InterventionExample

PAD = 2
"""Default id of the (masked) padding."""


@dataclass
class TokenRow:
    """One example as token ids."""

    base_prompt: list[int]
    base_entity_last: int
    source_prompt: list[int]
    source_entity_last: int
    label_tokens: list[int]
    """Appended to ``base_prompt`` in ``base_ids`` and predicted from its last token on."""
    kind: str = "cause"
    """``"cause"`` or ``"isolate"``."""
    concept: list[int] = field(default_factory=lambda: [1, 1])
    """Concept token ids (HyperDAS's concept input)."""


def _pad(seqs: Sequence[list[int]], value: int) -> Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs], dtype=torch.long)


def token_batch(
    rows: Sequence[TokenRow],
    pad: int = PAD,
    *,
    examples: Sequence[InterventionExample] = (),
) -> InterventionBatch:
    """A right-padded batch of ``rows`` (ids padded with ``pad``), carrying ``examples``."""
    if not rows:
        raise ValueError("token_batch needs at least one row")
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
        concept_ids=_pad([r.concept for r in rows], pad),
        concept_attention_mask=_pad([[1] * len(r.concept) for r in rows], 0),
        examples=list(examples),
    )
