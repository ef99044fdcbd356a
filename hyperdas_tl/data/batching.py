"""Tokenised, padded batches of interchange examples.

Conventions every consumer relies on (metrics, DAS/MDAS, probes, HyperDAS):

- Right padding; ``*_attention_mask`` is 1 on real tokens.
- ``base_ids`` holds the base prompt followed by the label tokens (teacher forcing); the label is
  tokenised jointly with the prompt, so its first token carries the right leading space.
- ``labels[b, t]`` is the token the model must predict after reading position ``t`` (so the loss
  is ``cross_entropy(logits[b, t], labels[b, t])``), ``-100`` where nothing is predicted. At most
  ``max_label_tokens`` label tokens are kept.
- ``*_intervenable`` is True on prompt tokens only (never label tokens or padding): the only
  positions an intervention may read (source) or write (base).
- ``*_entity_last`` is the position of the last token of the entity mention, found from the
  tokenizer's offset mapping.
"""

from dataclasses import dataclass, field, fields

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from hyperdas_tl.data.examples import InterventionExample

IGNORE_INDEX = -100


def judged_label_positions(
    labels: Int[Tensor, "batch pos"], max_label_tokens: int
) -> Bool[Tensor, "batch pos"]:
    """The positions teacher forcing judges (and DAS trains on): the first ``max_label_tokens``
    labelled (``!= IGNORE_INDEX``) positions of each row."""
    labelled = labels != IGNORE_INDEX
    return labelled & (labelled.long().cumsum(dim=1) <= max_label_tokens)


@dataclass
class LabelPositions:
    """Where a row's labels are, as a gather index (see :func:`label_positions`)."""

    positions: Int[Tensor, "batch n"]
    """Per row, its labelled positions in order, then filler positions up to ``n`` (the most
    labels of any row)."""
    labels: Int[Tensor, "batch n"]
    """``labels`` at :attr:`positions`, ``IGNORE_INDEX`` on the filler slots: the labels of
    logits computed at :attr:`positions` only."""


def label_positions(
    labels: Int[Tensor, "batch pos"], max_label_tokens: int | None = None
) -> LabelPositions:
    """The positions whose logits are scored: every labelled position of each row (with
    ``max_label_tokens``, the first ``max_label_tokens`` of them, as
    :func:`judged_label_positions` says), in order, so that logits computed at these positions
    only (``run_from_layer(..., positions=...)``) and :attr:`LabelPositions.labels` give the
    label cross-entropy and the teacher-forced verdicts of the full logits and ``labels``."""
    if max_label_tokens is None:
        keep = labels != IGNORE_INDEX
    else:
        keep = judged_label_positions(labels, max_label_tokens)
    n = int(keep.sum(dim=1).max()) if keep.numel() else 0
    # a stable sort of "not kept" puts each row's kept positions first, in ascending order
    order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices[:, :n]
    picked = torch.where(keep.gather(1, order), labels.gather(1, order), IGNORE_INDEX)
    return LabelPositions(positions=order, labels=picked)


@dataclass
class InterventionBatch:
    """A padded batch of :class:`InterventionExample` (see the module docstring)."""

    base_ids: Int[Tensor, "batch base_pos"]
    base_attention_mask: Int[Tensor, "batch base_pos"]
    base_intervenable: Bool[Tensor, "batch base_pos"]
    base_entity_last: Int[Tensor, " batch"]
    source_ids: Int[Tensor, "batch src_pos"]
    source_attention_mask: Int[Tensor, "batch src_pos"]
    source_intervenable: Bool[Tensor, "batch src_pos"]
    source_entity_last: Int[Tensor, " batch"]
    labels: Int[Tensor, "batch base_pos"]
    is_cause: Bool[Tensor, " batch"]
    concept_ids: Int[Tensor, "batch concept_pos"]
    concept_attention_mask: Int[Tensor, "batch concept_pos"]
    examples: list[InterventionExample] = field(default_factory=list)
    """The examples the batch was built from, in order."""

    def __len__(self) -> int:
        return self.base_ids.shape[0]

    def to(self, device: torch.device | str) -> "InterventionBatch":
        """A copy with every tensor on ``device``."""
        moved = {
            f.name: (v.to(device) if isinstance(v, Tensor) else v)
            for f in fields(self)
            for v in [getattr(self, f.name)]
        }
        return InterventionBatch(**moved)

    @property
    def device(self) -> torch.device:
        return self.base_ids.device


@dataclass(frozen=True)
class EncodedPrompt:
    """One prompt (+ optional label) tokenised jointly, with what the batch needs to know."""

    ids: list[int]
    """Prompt tokens followed by at most ``max_label_tokens`` label tokens."""
    n_prompt: int
    """How many of ``ids`` belong to the prompt (the intervenable positions)."""
    entity_last: int
    """Index of the last token overlapping the entity mention."""


def entity_char_span(text: str, entity: str) -> tuple[int, int]:
    """Character span of the entity mention in ``text``.

    The last occurrence that sits on word boundaries wins (few-shot prompts name examples
    first and the queried entity last; "Rome" is not found inside "Romeo"); if no occurrence
    is on a boundary (RAVEL's "%ss" plurals), the last occurrence.

    Raises:
        ValueError: ``entity`` does not occur in ``text``.
    """
    if not entity:
        raise ValueError("entity must be a non-empty string")
    starts = []
    start = text.find(entity)
    while start != -1:
        starts.append(start)
        start = text.find(entity, start + 1)
    if not starts:
        raise ValueError(f"entity {entity!r} does not occur in prompt {text!r}")

    def on_boundary(s: int) -> bool:
        before = text[s - 1] if s > 0 else " "
        end = s + len(entity)
        after = text[end] if end < len(text) else " "
        return not before.isalnum() and not after.isalnum()

    bounded = [s for s in starts if on_boundary(s)]
    chosen = (bounded or starts)[-1]
    return chosen, chosen + len(entity)


def token_positions_in_span(offsets: list[tuple[int, int]], span: tuple[int, int]) -> list[int]:
    """Indices of the tokens whose character offsets overlap ``[start, end)``."""
    start, end = span
    return [i for i, (a, b) in enumerate(offsets) if a < end and b > start and b > a]


def entity_token_positions(tokenizer, text: str, entity: str) -> list[int]:
    """Token positions of the entity mention in ``text`` (from the offset mapping)."""
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
    positions = token_positions_in_span(encoding["offset_mapping"], entity_char_span(text, entity))
    if not positions:
        raise ValueError(f"entity {entity!r} maps to no token in {text!r}")
    return positions


def encode_prompt(
    tokenizer, prompt: str, entity: str, label: str | None = None, *, max_label_tokens: int = 3
) -> EncodedPrompt:
    """Tokenise ``prompt + label`` jointly and locate the prompt/label boundary and the entity.

    The label's tokens are those of the joint encoding that start at or after the end of the
    prompt, so the first one carries the label's leading space exactly as the model would see
    it. If a token straddles the boundary (the tokenizer merges the prompt's last characters
    with the label's first), the prompt is encoded alone and the label appended as its own
    encoding, so prompt positions never change meaning.
    """
    if label is not None and not label:
        raise ValueError(f"empty label for prompt {prompt!r}")
    span = entity_char_span(prompt, entity)
    text = prompt + (label or "")
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
    ids, offsets = list(encoding["input_ids"]), list(encoding["offset_mapping"])
    cut = len(prompt)
    in_prompt = [i for i, (a, _) in enumerate(offsets) if a < cut]
    n_prompt = len(in_prompt)
    clean = in_prompt == list(range(n_prompt)) and all(offsets[i][1] <= cut for i in in_prompt)
    if label is not None and not clean:
        prompt_enc = tokenizer(prompt, return_offsets_mapping=True, add_special_tokens=True)
        label_ids = tokenizer(label, add_special_tokens=False)["input_ids"]
        ids = list(prompt_enc["input_ids"]) + list(label_ids)
        offsets = list(prompt_enc["offset_mapping"])
        n_prompt = len(offsets)
    positions = token_positions_in_span(offsets[:n_prompt], span)
    if not positions:
        raise ValueError(f"entity {entity!r} maps to no token in prompt {prompt!r}")
    if label is not None:
        n_label = len(ids) - n_prompt
        if n_label < 1:
            raise ValueError(f"label {label!r} adds no token to prompt {prompt!r}")
        ids = ids[: n_prompt + min(n_label, max_label_tokens)]
    else:
        ids = ids[:n_prompt]
    return EncodedPrompt(ids=ids, n_prompt=n_prompt, entity_last=positions[-1])


def pad_rows(
    rows: list[list[int]], pad_id: int
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """Right-pad ``rows`` into ``(ids, attention_mask)`` long tensors."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[b, : len(row)] = 1
    return ids, mask


def check_context_length(
    examples: list[InterventionExample],
    rows: dict[str, list[list[int]]],
    n_ctx: int,
) -> None:
    """Raise ``ValueError`` naming the first example whose tokenised row (base prompt + label,
    source prompt, or concept) is longer than the model's context ``n_ctx``."""
    for what, encoded in rows.items():
        for example, ids in zip(examples, encoded, strict=True):
            if len(ids) > n_ctx:
                prompt = example.source_prompt if what == "source" else example.base_prompt
                if what == "concept":
                    prompt = example.concept
                raise ValueError(
                    f"the {what} of example {example.target_attribute}/{example.kind} "
                    f"{prompt[:80]!r} has {len(ids)} tokens, more than the model's context "
                    f"n_ctx={n_ctx}; shorten the prompt or drop the example"
                )


def collate_examples(
    examples: list[InterventionExample],
    tokenizer,
    *,
    max_label_tokens: int = 3,
    n_ctx: int | None = None,
) -> InterventionBatch:
    """Tokenise and pad a list of examples into an :class:`InterventionBatch`.

    Base rows are ``prompt + label`` (joint tokenisation, at most ``max_label_tokens`` label
    tokens); source rows are the source prompt alone; concepts are tokenised on their own.
    With ``n_ctx`` (the model's ``cfg.n_ctx``), a row longer than the model's context raises
    ``ValueError`` naming the example (a rotary model would otherwise run past its context
    without a word).
    """
    if not examples:
        raise ValueError("collate_examples needs at least one example")
    if max_label_tokens < 1:
        raise ValueError(f"max_label_tokens must be >= 1, got {max_label_tokens}")
    if n_ctx is not None and n_ctx < 1:
        raise ValueError(f"n_ctx must be >= 1 or None, got {n_ctx}")
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    bases = [
        encode_prompt(
            tokenizer, e.base_prompt, e.base_entity, e.label, max_label_tokens=max_label_tokens
        )
        for e in examples
    ]
    sources = [encode_prompt(tokenizer, e.source_prompt, e.source_entity) for e in examples]
    concepts = tokenizer(
        [e.concept for e in examples], add_special_tokens=True, return_attention_mask=False
    )["input_ids"]
    if n_ctx is not None:
        rows = {
            "base prompt + label": [b.ids for b in bases],
            "source": [s.ids for s in sources],
            "concept": [list(c) for c in concepts],
        }
        check_context_length(examples, rows, n_ctx)
    base_ids, base_mask = pad_rows([b.ids for b in bases], pad_id)
    source_ids, source_mask = pad_rows([s.ids for s in sources], pad_id)
    labels = torch.full_like(base_ids, IGNORE_INDEX)
    base_intervenable = torch.zeros_like(base_ids, dtype=torch.bool)
    source_intervenable = torch.zeros_like(source_ids, dtype=torch.bool)
    for b, (base, source) in enumerate(zip(bases, sources, strict=True)):
        for t in range(base.n_prompt - 1, len(base.ids) - 1):
            labels[b, t] = base.ids[t + 1]
        base_intervenable[b, : base.n_prompt] = True
        source_intervenable[b, : source.n_prompt] = True
    concept_ids, concept_mask = pad_rows([list(c) for c in concepts], pad_id)
    return InterventionBatch(
        base_ids=base_ids,
        base_attention_mask=base_mask,
        base_intervenable=base_intervenable,
        base_entity_last=torch.tensor([b.entity_last for b in bases], dtype=torch.long),
        source_ids=source_ids,
        source_attention_mask=source_mask,
        source_intervenable=source_intervenable,
        source_entity_last=torch.tensor([s.entity_last for s in sources], dtype=torch.long),
        labels=labels,
        is_cause=torch.tensor([e.is_cause for e in examples], dtype=torch.bool),
        concept_ids=concept_ids,
        concept_attention_mask=concept_mask,
        examples=list(examples),
    )
