"""Thin TransformerLens hooks on ``blocks.{L}.hook_resid_pre``: the part other projects import.

Each hook is ``fn(resid, *, hook, ...) -> resid`` with its context bound by
``functools.partial``; the maths lives in :mod:`hyperdas_tl.interchange`. Hooks never edit the
activation in place, so gradients flow through them. Use them scoped::

    name, fn = interchange_hook_for(model, layer=6, source=src_resid, basis=R)
    logits = model.run_with_hooks(tokens, fwd_hooks=[(name, fn)])
    # or: with model.hooks(fwd_hooks=[(name, fn)]): logits = model(tokens)

Both forms remove the hook even when the forward raises.

**Finite check.** A hook built with ``check_finite=True`` raises
:class:`NonFiniteActivationError` (naming the hook and where the NaN/inf came from) when the
intervened residual is not finite, instead of letting NaN reach every logit. It costs one
``isfinite`` pass and a device sync per call, so the bare hooks leave it off; the builders'
default (``check_finite=None``) follows :func:`finite_checks`, a scoped switch the CLI turns on
around training and evaluation::

    with finite_checks():
        ...  # every hook built in here checks its output

A ``d_model x 0`` basis is refused by the builders (the interchange would silently do nothing;
:class:`~hyperdas_tl.hyperdas.config.HyperDASConfig` refuses ``k = 0`` as well) unless
``allow_empty=True`` asks for that no-op explicitly.
"""

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from functools import partial

import torch
from jaxtyping import Float, Int
from torch import Tensor

from hyperdas_tl.interchange import check_basis, check_selection, interchange, soft_interchange
from hyperdas_tl.target import HookPoint, TargetModel

HookFn = Callable[..., Tensor]

_FINITE_CHECKS: ContextVar[bool] = ContextVar("hyperdas_tl_finite_checks", default=False)


class NonFiniteActivationError(FloatingPointError):
    """An intervention hook produced a NaN/inf residual (see the module docstring)."""


@contextlib.contextmanager
def finite_checks(enabled: bool = True) -> Iterator[None]:
    """Within the block, hooks built with ``check_finite=None`` check their output (this
    context and the threads it starts only; nested blocks restore the outer setting)."""
    token = _FINITE_CHECKS.set(enabled)
    try:
        yield
    finally:
        _FINITE_CHECKS.reset(token)


def finite_checks_enabled() -> bool:
    """Whether hooks built now with ``check_finite=None`` check their output."""
    return _FINITE_CHECKS.get()


def _resolve_check(check_finite: bool | None) -> bool:
    return finite_checks_enabled() if check_finite is None else bool(check_finite)


def _non_finite_positions(tensor: Tensor) -> list[list[int]]:
    bad = ~torch.isfinite(tensor.detach())
    return bad.any(dim=-1).nonzero()[:3].tolist() if bool(bad.any()) else []


def check_finite_output(out: Tensor, hook: HookPoint | None, **inputs: Tensor) -> None:
    """Raise :class:`NonFiniteActivationError` unless ``out`` is finite, naming the hook and
    the first non-finite (example, position) pairs of each input."""
    if bool(torch.isfinite(out.detach()).all()):
        return
    where = [
        f"{name} at (example, position) {positions}"
        for name, tensor in inputs.items()
        if (positions := _non_finite_positions(tensor))
    ]
    cause = "; ".join(where) if where else "the selection or basis (inputs are finite)"
    raise NonFiniteActivationError(
        f"{getattr(hook, 'name', 'hook')}: the intervened residual stream is not finite at "
        f"(example, position) {_non_finite_positions(out)}; NaN/inf in {cause}"
    )


def _check_not_empty(basis: Tensor, allow_empty: bool) -> None:
    if basis.shape[-1] == 0 and not allow_empty:
        raise ValueError(
            f"basis has k=0 columns (shape {tuple(basis.shape)}): the interchange would change "
            "nothing (HyperDASConfig refuses k=0 too); pass allow_empty=True if a no-op is meant"
        )


def n_layers_of(model: TargetModel | int) -> int:
    """Number of blocks of a TransformerLens model (or an int passed through)."""
    if isinstance(model, int):
        return model
    cfg = getattr(model, "cfg", None)
    if cfg is None or not hasattr(cfg, "n_layers"):
        raise TypeError(f"expected a TransformerLens model or an int, got {type(model).__name__}")
    return int(cfg.n_layers)


def resid_pre_name(model: TargetModel | int, layer: int) -> str:
    """``blocks.{layer}.hook_resid_pre``, after checking ``0 <= layer < n_layers``."""
    n_layers = n_layers_of(model)
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise ValueError(f"layer must be an int, got {layer!r}")
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer {layer} is out of range: the model has layers 0..{n_layers - 1}")
    return f"blocks.{layer}.hook_resid_pre"


def _check_resid(
    resid: Tensor, expected: tuple[int, ...], what: str, hook: HookPoint | None
) -> None:
    if tuple(resid.shape) != expected:
        raise ValueError(
            f"{getattr(hook, 'name', 'hook')}: residual stream has shape {tuple(resid.shape)} "
            f"but the {what} expects {expected}"
        )


def interchange_hook(
    resid: Float[Tensor, "batch pos d_model"],
    *,
    hook: HookPoint | None,
    source: Float[Tensor, "batch pos d_model"],
    basis: Float[Tensor, "*batch d_model k"],
    check_finite: bool = False,
) -> Float[Tensor, "batch pos d_model"]:
    """Subspace interchange at every position: ``resid + R Rᵀ (source - resid)``
    (``check_finite``: see the module docstring)."""
    _check_resid(resid, tuple(source.shape), "source activation", hook)
    out = interchange(resid, source.to(resid.dtype), basis)
    if check_finite:
        check_finite_output(out, hook, base=resid, source=source)
    return out


def soft_interchange_hook(
    resid: Float[Tensor, "batch base_pos d_model"],
    *,
    hook: HookPoint | None,
    source: Float[Tensor, "batch src_pos d_model"],
    selection: Float[Tensor, "batch src_pos_plus_null base_pos"],
    basis: Float[Tensor, "*batch d_model k"],
    check_finite: bool = False,
) -> Float[Tensor, "batch base_pos d_model"]:
    """Position-selecting interchange: each base position reads a selection-weighted source
    (``check_finite``: see the module docstring)."""
    expected = (source.shape[0], selection.shape[-1], source.shape[-1])
    _check_resid(resid, expected, "selection [batch, src_pos + 1, base_pos]", hook)
    out = soft_interchange(resid, source.to(resid.dtype), selection, basis)
    if check_finite:
        check_finite_output(out, hook, base=resid, source=source)
    return out


def interchange_hook_for(
    model: TargetModel,
    layer: int,
    source: Float[Tensor, "batch pos d_model"],
    basis: Float[Tensor, "*batch d_model k"],
    *,
    check_finite: bool | None = None,
    allow_empty: bool = False,
) -> tuple[str, HookFn]:
    """``(hook name, hook fn)`` for a validated subspace interchange at ``layer``'s resid_pre
    (``check_finite`` None: as :func:`finite_checks` says; ``allow_empty``: accept k = 0)."""
    name = resid_pre_name(model, layer)
    if source.ndim != 3:
        raise ValueError(f"source must be [batch, pos, d_model], got {tuple(source.shape)}")
    check_basis(basis, source.shape[-1])
    _check_not_empty(basis, allow_empty)
    fn = partial(
        interchange_hook, source=source, basis=basis, check_finite=_resolve_check(check_finite)
    )
    return name, fn


def soft_interchange_hook_for(
    model: TargetModel,
    layer: int,
    source: Float[Tensor, "batch src_pos d_model"],
    selection: Float[Tensor, "batch src_pos_plus_null base_pos"],
    basis: Float[Tensor, "*batch d_model k"],
    *,
    check_finite: bool | None = None,
    allow_empty: bool = False,
) -> tuple[str, HookFn]:
    """``(hook name, hook fn)`` for a validated soft interchange at ``resid_pre`` of ``layer``
    (``check_finite`` None: as :func:`finite_checks` says; ``allow_empty``: accept k = 0)."""
    name = resid_pre_name(model, layer)
    if source.ndim != 3:
        raise ValueError(f"source must be [batch, src_pos, d_model], got {tuple(source.shape)}")
    if selection.ndim != 3:
        raise ValueError(
            f"selection must be [batch, src_pos + 1, base_pos], got {tuple(selection.shape)}"
        )
    check_selection(selection, source.shape[0], source.shape[1], selection.shape[-1])
    check_basis(basis, source.shape[-1])
    _check_not_empty(basis, allow_empty)
    fn = partial(
        soft_interchange_hook,
        source=source,
        selection=selection,
        basis=basis,
        check_finite=_resolve_check(check_finite),
    )
    return name, fn


def store_resid_hook(
    resid: Tensor, *, hook: HookPoint | None, store: dict[int, Tensor], layer: int
) -> Tensor:
    """A read-only hook: ``store[layer] = resid`` (bind ``store`` and ``layer`` with
    ``functools.partial``); the activation passes through unchanged."""
    store[layer] = resid
    return resid


@torch.no_grad()
def capture_resid_pre(
    model: TargetModel,
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
    hooks = [
        (names[layer], partial(store_resid_hook, store=store, layer=layer)) for layer in layers
    ]
    model.run_with_hooks(
        tokens, fwd_hooks=hooks, attention_mask=attention_mask, stop_at_layer=max(layers) + 1
    )
    return {layer: store[layer] for layer in layers}
