"""How one batch is judged under an intervention, in either mode: teacher forcing (the
HyperDAS convention) or greedy generation + prefix match (the RAVEL convention)."""

import unicodedata
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from hyperdas_tl.choices import JUDGE_MODES as JUDGE_MODES
from hyperdas_tl.choices import JudgeMode as JudgeMode
from hyperdas_tl.data.batching import IGNORE_INDEX, InterventionBatch, judged_label_positions
from hyperdas_tl.data.judging import normalise
from hyperdas_tl.generation import kv_cached_greedy_generate
from hyperdas_tl.metrics.interventions import Intervention
from hyperdas_tl.precision import autocast_like
from hyperdas_tl.target import TargetModel


def teacher_forced_correct(
    logits: Float[Tensor, "batch pos d_vocab"],
    labels: Int[Tensor, "batch pos"],
    max_label_tokens: int = 3,
) -> Bool[Tensor, " batch"]:
    """True where the argmax equals the label at each of the first ``max_label_tokens`` labelled
    positions of the row (positions whose label is ``-100`` are ignored)."""
    if max_label_tokens < 1:
        raise ValueError(f"max_label_tokens must be >= 1, got {max_label_tokens}")
    if logits.shape[:2] != labels.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} disagree on "
            "[batch, pos]"
        )
    labelled = labels != IGNORE_INDEX
    if bool((labelled.sum(dim=1) == 0).any()):
        raise ValueError("every row needs at least one label token (labels != -100)")
    judged = judged_label_positions(labels, max_label_tokens)
    hits = logits.argmax(dim=-1) == labels
    return (hits | ~judged).all(dim=1)


def normalise_text(text: str) -> str:
    """The data layer's normalisation (:func:`hyperdas_tl.data.judging.normalise`): lower case,
    no accents, punctuation to spaces, single spaces, leading articles dropped."""
    return normalise(unicodedata.normalize("NFKC", text))


def prefix_match(generated: str, label: str) -> bool:
    """RAVEL's judgement: the normalised generation starts with the normalised label (a plain
    string prefix, so the label must fit in the generated tokens)."""
    target = normalise_text(label)
    if not target:
        raise ValueError(f"label {label!r} is empty after normalisation")
    return normalise_text(generated).startswith(target)


def prompt_lengths(batch: InterventionBatch) -> Int[Tensor, " batch"]:
    """Number of prompt tokens per row: the first labelled position predicts the first label
    token, so it is the prompt's last token."""
    labelled = batch.labels != IGNORE_INDEX
    if bool((labelled.sum(dim=1) == 0).any()):
        raise ValueError("every row needs at least one label token (labels != -100)")
    return labelled.long().argmax(dim=1) + 1


def label_texts(batch: InterventionBatch, tokenizer: Any) -> list[str]:
    """The full label string of each row (from ``batch.examples``, else decoded label tokens)."""
    if batch.examples:
        return [example.label for example in batch.examples]
    return [
        tokenizer.decode(row[row != IGNORE_INDEX].tolist(), skip_special_tokens=True)
        for row in batch.labels
    ]


@torch.no_grad()
def judge_teacher_forced(
    model: TargetModel,
    batch: InterventionBatch,
    intervention: Intervention,
    max_label_tokens: int = 3,
) -> Bool[Tensor, " batch"]:
    """Judge each row of ``batch`` under ``intervention`` by teacher forcing."""
    hooks = intervention(batch, batch.base_ids.shape[1])
    with autocast_like(model):
        logits = model.run_with_hooks(
            batch.base_ids, fwd_hooks=hooks, attention_mask=batch.base_attention_mask
        )
    return teacher_forced_correct(logits, batch.labels.to(logits.device), max_label_tokens)


@torch.no_grad()
def generate_under(
    model: TargetModel,
    batch: InterventionBatch,
    intervention: Intervention,
    max_new_tokens: int,
) -> Int[Tensor, "batch max_new_tokens"]:
    """Greedy continuation of each base prompt (label tokens dropped) with the intervention's
    hooks built for the generation width; they only touch prompt positions."""
    lengths = prompt_lengths(batch)
    width = int(lengths.max())
    positions = torch.arange(width, device=batch.base_ids.device)
    mask = (positions[None, :] < lengths[:, None]).to(batch.base_attention_mask.dtype)
    hooks = intervention(batch, width + max_new_tokens)
    return kv_cached_greedy_generate(
        model, batch.base_ids[:, :width], mask, max_new_tokens, fwd_hooks=hooks
    )


@torch.no_grad()
def judge_generation(
    model: TargetModel,
    batch: InterventionBatch,
    intervention: Intervention,
    max_new_tokens: int = 8,
) -> Bool[Tensor, " batch"]:
    """Judge each row of ``batch`` under ``intervention`` by greedy generation + prefix match."""
    generated = generate_under(model, batch, intervention, max_new_tokens)
    tokenizer = model.tokenizer
    texts = tokenizer.batch_decode(generated.tolist(), skip_special_tokens=True)
    verdicts = [
        prefix_match(text, label)
        for text, label in zip(texts, label_texts(batch, tokenizer), strict=True)
    ]
    return torch.tensor(verdicts, dtype=torch.bool)
