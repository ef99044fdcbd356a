"""Nonsense source: the source entity replaced by a name the model does not know
("Zorblaxia"); the run must not produce the *original* counterfactual label."""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from hyperdas_tl.data.batching import InterventionBatch, collate_examples
from hyperdas_tl.faithfulness.checks import check_batches
from hyperdas_tl.faithfulness.result_dict import ResultDict
from hyperdas_tl.faithfulness.scoring import intervened_logits, majority_label_rate
from hyperdas_tl.hyperdas.config import SelectionMode, check_selection_mode
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.metrics import teacher_forced_correct
from hyperdas_tl.models import module_device

DEFAULT_NONSENSE = "Zorblaxia"
"""A name no model knows (nonsense-source control)."""


def replace_entity(prompt: str, entity: str, nonsense: str) -> str:
    """``prompt`` with every mention of ``entity`` (on word boundaries when there are such
    mentions, else every occurrence) replaced by ``nonsense``."""
    if entity not in prompt:
        raise ValueError(f"entity {entity!r} does not occur in prompt {prompt!r}")
    bounded = re.compile(rf"(?<!\w){re.escape(entity)}(?!\w)")
    if bounded.search(prompt):
        return bounded.sub(lambda _: nonsense, prompt)
    return prompt.replace(entity, nonsense)


def nonsense_source_batches(
    batches: Sequence[InterventionBatch],
    tokenizer: Any,
    nonsense: str = DEFAULT_NONSENSE,
    *,
    max_label_tokens: int = 3,
) -> list[InterventionBatch]:
    """The cause examples of ``batches``, re-collated with the source entity replaced by
    ``nonsense`` (label kept: the ORIGINAL counterfactual label). Empty batches are dropped."""
    if not nonsense.strip():
        raise ValueError("nonsense must be a non-empty entity name")
    check_batches(batches, need_examples=True)
    out = []
    for batch in batches:
        examples = [
            replace(
                e,
                source_prompt=replace_entity(e.source_prompt, e.source_entity, nonsense),
                source_entity=nonsense,
            )
            for e in batch.examples
            if e.is_cause
        ]
        if examples:
            out.append(collate_examples(examples, tokenizer, max_label_tokens=max_label_tokens))
    return out


@dataclass
class NonsenseSourceResult(ResultDict):
    """The source entity replaced by a nonsense name, on the cause examples."""

    nonsense: str
    selection_mode: str
    n_examples: int
    original_cause: float
    """HyperDAS's Cause on these examples with their real source."""
    counterfactual_label_rate: float
    """Fraction still predicting the ORIGINAL counterfactual label (high = injection)."""
    base_label_rate: float
    """Fraction predicting the base entity's own label (the intervention changed nothing)."""
    majority_label_rate: float = 0.0
    """Cause of the best constant answer on these examples (:func:`majority_label_rate`)."""
    samples: list[dict[str, str]] = field(default_factory=list)
    """A few rewritten examples (base prompt, nonsense source prompt, original label)."""


def _rate(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    selection_mode: SelectionMode,
    max_label_tokens: int,
) -> tuple[int, int]:
    hits = total = 0
    device = module_device(hyperdas.target)
    for batch in batches:
        batch = batch.to(device)
        logits = intervened_logits(hyperdas, batch, selection_mode)
        hits += int(teacher_forced_correct(logits, batch.labels, max_label_tokens).sum())
        total += len(batch)
    return hits, total


@torch.no_grad()
def nonsense_source_control(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    tokenizer: Any,
    nonsense: str = DEFAULT_NONSENSE,
    *,
    selection_mode: SelectionMode = "soft",
    max_label_tokens: int = 3,
    n_samples: int = 3,
) -> NonsenseSourceResult:
    """How often the run still yields the original counterfactual label when the source entity
    is a name the model does not know (expect ≈ 0; high = the hypernetwork injects the label)."""
    check_selection_mode(selection_mode)
    check_batches(batches, need_examples=True)
    causes = [
        collate_examples([e for e in b.examples if e.is_cause], tokenizer,
                         max_label_tokens=max_label_tokens)
        for b in batches
        if any(e.is_cause for e in b.examples)
    ]  # fmt: skip
    if not causes:
        raise ValueError("the nonsense-source control needs cause examples; batches hold none")
    rewritten = nonsense_source_batches(
        causes, tokenizer, nonsense, max_label_tokens=max_label_tokens
    )
    base_labelled = [
        collate_examples(
            [replace(e, label=e.base_label) for e in b.examples],
            tokenizer,
            max_label_tokens=max_label_tokens,
        )
        for b in rewritten
    ]
    original, n = _rate(hyperdas, causes, selection_mode, max_label_tokens)
    counterfactual, _ = _rate(hyperdas, rewritten, selection_mode, max_label_tokens)
    base, _ = _rate(hyperdas, base_labelled, selection_mode, max_label_tokens)
    samples = [
        {"base_prompt": e.base_prompt, "source_prompt": e.source_prompt, "label": e.label}
        for e in (rewritten[0].examples[:n_samples] if rewritten else [])
    ]
    return NonsenseSourceResult(
        nonsense=nonsense,
        selection_mode=selection_mode,
        n_examples=n,
        original_cause=original / n,
        counterfactual_label_rate=counterfactual / n,
        base_label_rate=base / n,
        majority_label_rate=majority_label_rate(causes),
        samples=samples,
    )
