"""Greedy continuation of right-padded prompts, optionally under TransformerLens hooks.

Every forward runs on a fixed width ``W = input_ids.shape[1] + max_new_tokens``: generated
tokens are written just after each prompt's last real token and the rest stays padding. A causal
model never looks right, so trailing padding changes nothing, and hooks see the same shape at
every step. That makes "intervene on the prompt pass only" easy: build the hook for width ``W``
touching only prompt positions (e.g. a selection padded with null columns); every step then
recomputes the prompt with the intervention, which is what a KV cache filled under the
intervention would hold, and the generated positions are never intervened.
"""

from collections.abc import Callable, Sequence

import torch
from jaxtyping import Int
from torch import Tensor

from hyperdas_tl.precision import autocast_like

FwdHooks = Sequence[tuple[str, Callable[..., Tensor]]]


def padded_width(input_ids: Tensor, max_new_tokens: int) -> int:
    """The fixed width every forward of :func:`greedy_generate` runs on."""
    return input_ids.shape[1] + max_new_tokens


@torch.no_grad()
def greedy_generate(
    model: torch.nn.Module,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"],
    max_new_tokens: int,
    *,
    fwd_hooks: FwdHooks = (),
    pad_token_id: int | None = None,
) -> Int[Tensor, "batch max_new_tokens"]:
    """Greedy-decode ``max_new_tokens`` tokens after each right-padded prompt.

    Args:
        model: a TransformerLens model (``run_with_hooks`` and ``model(ids, attention_mask=)``).
        input_ids: right-padded prompts.
        attention_mask: 1 on real tokens; every row needs at least one, left-aligned.
        max_new_tokens: how many tokens to generate (>= 1).
        fwd_hooks: hooks applied to every forward; they see width
            :func:`padded_width` ``(input_ids, max_new_tokens)``.
        pad_token_id: id written into padding (default: the tokenizer's pad id, else 0).

    Returns:
        The generated token ids, one row per prompt.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if input_ids.shape != attention_mask.shape or input_ids.ndim != 2:
        raise ValueError(
            "input_ids and attention_mask must both be [batch, pos], got "
            f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}"
        )
    lengths = attention_mask.long().sum(dim=1)
    if bool((lengths == 0).any()):
        raise ValueError("every prompt needs at least one real token")
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    if not torch.equal(attention_mask.bool(), positions[None, :] < lengths[:, None]):
        raise ValueError("greedy_generate expects right padding (attention_mask 1...1 0...0)")
    if pad_token_id is None:
        tokenizer = getattr(model, "tokenizer", None)
        pad_token_id = getattr(tokenizer, "pad_token_id", None) or 0

    batch, width = input_ids.shape[0], padded_width(input_ids, max_new_tokens)
    ids = torch.full((batch, width), pad_token_id, dtype=input_ids.dtype, device=input_ids.device)
    ids[:, : input_ids.shape[1]] = torch.where(attention_mask.bool(), input_ids, pad_token_id)
    mask = torch.zeros_like(ids, dtype=attention_mask.dtype)
    mask[:, : input_ids.shape[1]] = attention_mask
    rows = torch.arange(batch, device=input_ids.device)
    generated = []
    for step in range(max_new_tokens):
        with autocast_like(model):
            logits = model.run_with_hooks(ids, fwd_hooks=list(fwd_hooks), attention_mask=mask)
        next_tokens = logits[rows, lengths + step - 1].argmax(dim=-1)
        ids[rows, lengths + step] = next_tokens
        mask[rows, lengths + step] = 1
        generated.append(next_tokens)
    return torch.stack(generated, dim=1)
