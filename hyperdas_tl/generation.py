"""Greedy continuation of right-padded prompts, optionally under TransformerLens hooks.

Every forward runs on a fixed width ``W = input_ids.shape[1] + max_new_tokens``: generated
tokens are written just after each prompt's last real token and the rest stays padding. A causal
model never looks right, so trailing padding changes nothing, and hooks see the same shape at
every step. That makes "intervene on the prompt pass only" easy: build the hook for width ``W``
touching only prompt positions (e.g. a selection padded with null columns); every step then
recomputes the prompt with the intervention, which is what a KV cache filled under the
intervention would hold, and the generated positions are never intervened.
"""

import inspect
import re
from collections.abc import Callable, Sequence
from functools import partial

import torch
from jaxtyping import Int
from torch import Tensor

from hyperdas_tl.models import plain_hf_model
from hyperdas_tl.precision import autocast_like

FwdHooks = Sequence[tuple[str, Callable[..., Tensor]]]


def padded_width(input_ids: Tensor, max_new_tokens: int) -> int:
    """The fixed width every forward of :func:`greedy_generate` runs on."""
    return input_ids.shape[1] + max_new_tokens


def _check_right_padded(
    input_ids: Tensor, attention_mask: Tensor, max_new_tokens: int
) -> Int[Tensor, " batch"]:
    """Validate the decoding inputs; the prompt length of each row."""
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
    return lengths


def _pad_id(model: torch.nn.Module, pad_token_id: int | None) -> int:
    """``pad_token_id``, else the tokenizer's pad id, else 0."""
    if pad_token_id is not None:
        return pad_token_id
    tokenizer = getattr(model, "tokenizer", None)
    return getattr(tokenizer, "pad_token_id", None) or 0


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
    lengths = _check_right_padded(input_ids, attention_mask, max_new_tokens)
    pad_token_id = _pad_id(model, pad_token_id)

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


def shared_prefix_length(
    input_ids: Int[Tensor, "batch pos"], attention_mask: Int[Tensor, "batch pos"]
) -> int:
    """The most leading tokens every row shares that :func:`kv_cached_greedy_generate` can run
    once (``shared_prefix``): the rows' longest common prefix of real tokens, less one where it
    would take a whole row (each row's last prompt token must run in its own pass)."""
    lengths = attention_mask.long().sum(dim=1)
    limit = int(lengths.min()) - 1
    if limit <= 0:
        return 0
    same = (input_ids[:, :limit] == input_ids[:1, :limit]).all(dim=0)
    differs = torch.nonzero(~same)
    return int(differs[0]) if len(differs) else limit


def _check_shared_prefix(
    input_ids: Tensor, attention_mask: Tensor, shared_prefix: int, fwd_hooks: FwdHooks
) -> None:
    if shared_prefix < 0:
        raise ValueError(f"shared_prefix must be >= 0, got {shared_prefix}")
    if fwd_hooks:
        raise ValueError("shared_prefix cannot be used with fwd_hooks (the prefix runs unhooked)")
    _check_right_padded(input_ids, attention_mask, max_new_tokens=1)
    available = shared_prefix_length(input_ids, attention_mask)
    if shared_prefix > available:
        raise ValueError(
            f"shared_prefix={shared_prefix}, but the rows share only {available} leading tokens "
            "(with at least one token of every row after them)"
        )


_RESID_PRE = re.compile(r"^blocks\.(\d+)\.hook_resid_pre$")


def _resid_pre_hooks_by_layer(fwd_hooks: FwdHooks) -> dict[int, list[Callable[..., Tensor]]] | None:
    """``{layer: [fn, ...]}`` when every hook is a ``blocks.L.hook_resid_pre`` hook, else None."""
    by_layer: dict[int, list[Callable[..., Tensor]]] = {}
    for name, fn in fwd_hooks:
        match = _RESID_PRE.match(name)
        if match is None:
            return None
        by_layer.setdefault(int(match.group(1)), []).append(fn)
    return by_layer


def _cache_keyword(model: torch.nn.Module) -> str:
    """The name of the HF forward's KV-cache argument (and output field): ``"cache"`` from
    transformers 5.24 (which warns on the old name), ``"past_key_values"`` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.no_grad()
def kv_cached_greedy_generate(
    model: torch.nn.Module,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"],
    max_new_tokens: int,
    *,
    fwd_hooks: FwdHooks = (),
    pad_token_id: int | None = None,
    shared_prefix: int = 0,
) -> Int[Tensor, "batch max_new_tokens"]:
    """:func:`greedy_generate` with a KV cache: the same tokens, one prompt pass + one token per
    step instead of ``max_new_tokens`` full passes.

    The prompt runs once through the plain HF modules under the bridge
    (:func:`hyperdas_tl.models.plain_hf_model`, same weights), with each ``fwd_hooks`` entry
    applied at the input of its block as a forward pre-hook; the hooks are the ones built for
    :func:`greedy_generate` (width ``prompt + max_new_tokens``: the prompt's residual is padded
    with zeros to that width for them and cut back). Each generated token then attends to that
    intervened cache, at its own position right after its row's prompt, exactly what
    :func:`greedy_generate` recomputes at every step. Hooks other than
    ``blocks.L.hook_resid_pre`` fall back to :func:`greedy_generate`.

    ``shared_prefix = P > 0`` says the first ``P`` tokens are the same in every row (a template's
    text before its entity, :func:`shared_prefix_length`): they run once, for one row, and their
    keys and values are repeated over the batch before the rest of the prompt runs on top of
    them. A causal model's first ``P`` positions see only those tokens, so this is the same
    computation (up to float rounding: the attention is split in two passes). Every row needs a
    token after the prefix (``P`` < its length), and no hooks may be given with it.
    """
    if shared_prefix:
        _check_shared_prefix(input_ids, attention_mask, shared_prefix, fwd_hooks)
    by_layer = _resid_pre_hooks_by_layer(fwd_hooks)
    if by_layer is None or getattr(model, "original_model", None) is None:
        return greedy_generate(
            model,
            input_ids,
            attention_mask,
            max_new_tokens,
            fwd_hooks=fwd_hooks,
            pad_token_id=pad_token_id,
        )
    lengths = _check_right_padded(input_ids, attention_mask, max_new_tokens)
    pad_token_id = _pad_id(model, pad_token_id)
    plain = plain_hf_model(model)
    layers = plain.model.layers
    n_layers = len(layers)
    for layer in by_layer:
        if not 0 <= layer < n_layers:
            raise ValueError(f"hook on layer {layer}, but the model has {n_layers} layers")
    batch, width = input_ids.shape
    ids = torch.where(attention_mask.bool(), input_ids, pad_token_id)

    def pre_hook(module, args, kwargs, *, fns):
        hidden = args[0] if args else kwargs["hidden_states"]
        pad = hidden.new_zeros(batch, max_new_tokens, hidden.shape[-1])
        padded = torch.cat([hidden, pad], dim=1)
        for fn in fns:
            padded = fn(padded, hook=None)
        hidden = padded[:, :width].to(hidden.dtype)
        if args:
            return (hidden, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": hidden}

    handles = [
        layers[layer].register_forward_pre_hook(partial(pre_hook, fns=fns), with_kwargs=True)
        for layer, fns in by_layer.items()
    ]
    positions = torch.arange(width, device=ids.device).expand(batch, width)
    last = lengths - 1
    keep = torch.unique(last)  # unembed only the positions that predict the first new token
    cache_keyword = _cache_keyword(plain)
    prefix_cache = {}
    if shared_prefix:
        with autocast_like(model):
            prefix = plain(
                input_ids=ids[:1, :shared_prefix],
                position_ids=positions[:1, :shared_prefix],
                use_cache=True,
                logits_to_keep=1,
            )
        cache = getattr(prefix, cache_keyword)
        cache.batch_repeat_interleave(batch)
        prefix_cache = {cache_keyword: cache}
    try:
        with autocast_like(model):
            out = plain(
                input_ids=ids[:, shared_prefix:],
                attention_mask=attention_mask,
                position_ids=positions[:, shared_prefix:],
                use_cache=True,
                logits_to_keep=keep - shared_prefix,
                **prefix_cache,
            )
    finally:
        for handle in handles:
            handle.remove()
    rows = torch.arange(batch, device=ids.device)
    next_tokens = out.logits[rows, torch.searchsorted(keep, last)].argmax(dim=-1)
    generated = [next_tokens]
    mask = torch.cat([attention_mask, attention_mask.new_zeros(batch, max_new_tokens)], dim=1)
    cache = getattr(out, cache_keyword)
    for step in range(1, max_new_tokens):
        mask[:, width + step - 1] = 1
        with autocast_like(model):
            out = plain(
                input_ids=next_tokens[:, None],
                attention_mask=mask[:, : width + step],
                position_ids=(lengths + step - 1)[:, None],
                use_cache=True,
                **{cache_keyword: cache},
            )
        cache = getattr(out, cache_keyword)
        next_tokens = out.logits[:, -1].argmax(dim=-1)
        generated.append(next_tokens)
    return torch.stack(generated, dim=1)
