"""Thin TransformerLens hooks on ``blocks.{L}.hook_resid_pre``: the part other projects import.

Each hook is ``fn(resid, *, hook, ...) -> resid`` with its context bound by
``functools.partial``; the maths lives in :mod:`hyperdas_tl.interchange`. Hooks never edit the
activation in place, so gradients flow through them. Use them scoped::

    name, fn = interchange_hook_for(model, layer=6, source=src_resid, basis=R)
    logits = model.run_with_hooks(tokens, fwd_hooks=[(name, fn)])
    # or: with model.hooks(fwd_hooks=[(name, fn)]): logits = model(tokens)

Both forms remove the hook even when the forward raises.
"""

from collections.abc import Callable, Sequence
from functools import partial

import torch
from jaxtyping import Float, Int
from torch import Tensor

from hyperdas_tl.interchange import check_basis, check_selection, interchange, soft_interchange

HookFn = Callable[..., Tensor]


def n_layers_of(model: object) -> int:
    """Number of blocks of a TransformerLens model (or an int passed through)."""
    if isinstance(model, int):
        return model
    cfg = getattr(model, "cfg", None)
    if cfg is None or not hasattr(cfg, "n_layers"):
        raise TypeError(f"expected a TransformerLens model or an int, got {type(model).__name__}")
    return int(cfg.n_layers)


def resid_pre_name(model: object, layer: int) -> str:
    """``blocks.{layer}.hook_resid_pre``, after checking ``0 <= layer < n_layers``."""
    n_layers = n_layers_of(model)
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise ValueError(f"layer must be an int, got {layer!r}")
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer {layer} is out of range: the model has layers 0..{n_layers - 1}")
    return f"blocks.{layer}.hook_resid_pre"


def _check_resid(resid: Tensor, expected: tuple[int, ...], what: str, hook: object) -> None:
    if tuple(resid.shape) != expected:
        raise ValueError(
            f"{getattr(hook, 'name', 'hook')}: residual stream has shape {tuple(resid.shape)} "
            f"but the {what} expects {expected}"
        )


def interchange_hook(
    resid: Float[Tensor, "batch pos d_model"],
    *,
    hook: object,
    source: Float[Tensor, "batch pos d_model"],
    basis: Float[Tensor, "*batch d_model k"],
) -> Float[Tensor, "batch pos d_model"]:
    """Subspace interchange at every position: ``resid + R Rᵀ (source - resid)``."""
    _check_resid(resid, tuple(source.shape), "source activation", hook)
    return interchange(resid, source.to(resid.dtype), basis)


def soft_interchange_hook(
    resid: Float[Tensor, "batch base_pos d_model"],
    *,
    hook: object,
    source: Float[Tensor, "batch src_pos d_model"],
    selection: Float[Tensor, "batch src_pos_plus_null base_pos"],
    basis: Float[Tensor, "*batch d_model k"],
) -> Float[Tensor, "batch base_pos d_model"]:
    """Position-selecting interchange: each base position reads a selection-weighted source."""
    expected = (source.shape[0], selection.shape[-1], source.shape[-1])
    _check_resid(resid, expected, "selection [batch, src_pos + 1, base_pos]", hook)
    return soft_interchange(resid, source.to(resid.dtype), selection, basis)


def interchange_hook_for(
    model: object,
    layer: int,
    source: Float[Tensor, "batch pos d_model"],
    basis: Float[Tensor, "*batch d_model k"],
) -> tuple[str, HookFn]:
    """``(hook name, hook fn)`` for a validated subspace interchange at ``layer``'s resid_pre."""
    name = resid_pre_name(model, layer)
    if source.ndim != 3:
        raise ValueError(f"source must be [batch, pos, d_model], got {tuple(source.shape)}")
    check_basis(basis, source.shape[-1])
    return name, partial(interchange_hook, source=source, basis=basis)


def soft_interchange_hook_for(
    model: object,
    layer: int,
    source: Float[Tensor, "batch src_pos d_model"],
    selection: Float[Tensor, "batch src_pos_plus_null base_pos"],
    basis: Float[Tensor, "*batch d_model k"],
) -> tuple[str, HookFn]:
    """``(hook name, hook fn)`` for a validated soft interchange at ``resid_pre`` of ``layer``."""
    name = resid_pre_name(model, layer)
    if source.ndim != 3:
        raise ValueError(f"source must be [batch, src_pos, d_model], got {tuple(source.shape)}")
    if selection.ndim != 3:
        raise ValueError(
            f"selection must be [batch, src_pos + 1, base_pos], got {tuple(selection.shape)}"
        )
    check_selection(selection, source.shape[0], source.shape[1], selection.shape[-1])
    check_basis(basis, source.shape[-1])
    return name, partial(soft_interchange_hook, source=source, selection=selection, basis=basis)


def _store_hook(resid: Tensor, *, hook: object, store: dict[int, Tensor], layer: int) -> Tensor:
    store[layer] = resid
    return resid


@torch.no_grad()
def capture_resid_pre(
    model: object,
    tokens: Int[Tensor, "batch pos"],
    layers: Sequence[int],
    attention_mask: Int[Tensor, "batch pos"] | None = None,
) -> dict[int, Float[Tensor, "batch pos d_model"]]:
    """``{layer: blocks.{layer}.hook_resid_pre}`` from one forward that stops after the deepest
    requested layer (no grad)."""
    if not layers:
        raise ValueError("layers must name at least one layer")
    names = {layer: resid_pre_name(model, layer) for layer in layers}
    store: dict[int, Tensor] = {}
    hooks = [(names[layer], partial(_store_hook, store=store, layer=layer)) for layer in layers]
    model.run_with_hooks(  # type: ignore[attr-defined]
        tokens, fwd_hooks=hooks, attention_mask=attention_mask, stop_at_layer=max(layers) + 1
    )
    return {layer: store[layer] for layer in layers}
