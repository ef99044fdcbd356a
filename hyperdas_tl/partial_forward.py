"""Run a ``TransformerBridge`` in pieces: all residual states at once, or only the blocks from
layer ``L`` on.

TransformerLens 4.3's ``TransformerBridge.forward(x, start_at_layer=L)`` still executes blocks
``0..L-1`` inside the HF forward and throws their output away, so it saves no compute and, under
autograd, keeps their activations alive. HyperDAS intervenes at ``blocks.L.hook_resid_pre`` on
every training step, so this module drives the bridge's own modules directly:

- :func:`resid_stream_states`: one no-grad pass (embedding, every block, final norm; no unembed)
  returning every requested ``blocks.{l}.hook_resid_pre`` plus the final normalised output.
- :func:`run_from_layer`: blocks ``start_layer..n_layers-1`` + final norm + unembed on a given
  residual stream. Blocks ``0..start_layer-1`` never run. With ``positions`` only the positions a
  caller scores are unembedded (the unembedding is a ``d_model x d_vocab`` matmul per position:
  49k columns on SmolLM2, so most of the cost of the last step when only 1-3 label positions of a
  prompt are scored).

Both call ``model.embed``, ``model.rotary_emb``, ``model.blocks[i]``, ``model.ln_final`` and
``model.unembed`` (the bridge components), so TransformerLens hooks attached with
``model.hooks(fwd_hooks=...)`` fire as in a full forward, including ``blocks.{L}.hook_resid_pre``
of the first block run. Rotary positions and the causal + padding mask are built exactly as the
bridge's forward builds them (positions derived from the attention mask only for rows whose mask
moves a real token, e.g. left padding), so logits match the full forward to float rounding.

Supported targets: HF decoder-only models whose blocks take ``(hidden, attention_mask,
position_embeddings, position_ids)`` with a model-level rotary embedding (the Llama family:
SmolLM2, Llama-3), loaded with ``processing="none"``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge
from transformers.masking_utils import create_causal_mask

from hyperdas_tl.hooks import n_layers_of, resid_pre_name, store_resid_hook
from hyperdas_tl.precision import autocast_like


@dataclass
class ResidStreamStates:
    """Residual streams of one no-grad target pass (see :func:`resid_stream_states`)."""

    layers: tuple[int, ...]
    """The layers whose ``hook_resid_pre`` is held, in the order of ``resid_pre``'s layer axis."""
    resid_pre: Float[Tensor, "batch layer pos d_model"]
    """``blocks.{l}.hook_resid_pre`` for each ``l`` in :attr:`layers`."""
    final: Float[Tensor, "batch pos d_model"]
    """The final normalised output (``ln_final``), the input of the unembedding."""

    def at(self, layer: int) -> Float[Tensor, "batch pos d_model"]:
        """``blocks.{layer}.hook_resid_pre`` (must be one of :attr:`layers`)."""
        if layer not in self.layers:
            raise ValueError(f"layer {layer} was not captured; captured layers: {self.layers}")
        return self.resid_pre[:, self.layers.index(layer)]

    def all_states(self) -> Float[Tensor, "batch state pos d_model"]:
        """``resid_pre`` of every captured layer followed by the final normalised output."""
        return torch.cat([self.resid_pre, self.final[:, None]], dim=1)


def _check_ids_and_mask(
    ids_or_resid: Tensor, attention_mask: Tensor | None, what: str
) -> tuple[int, int]:
    batch, pos = ids_or_resid.shape[:2]
    if attention_mask is not None and tuple(attention_mask.shape) != (batch, pos):
        raise ValueError(
            f"attention_mask must be [batch, pos] = {(batch, pos)} like the {what}, got "
            f"{tuple(attention_mask.shape)}"
        )
    return batch, pos


def position_ids_for(
    attention_mask: Int[Tensor, "batch pos"] | None, batch: int, pos: int, device: torch.device
) -> Int[Tensor, "batch pos"]:
    """Rotary positions as ``TransformerBridge.forward`` derives them: ``arange`` for rows that
    are unpadded or right-padded, mask-derived (``cumsum - 1``) for rows where a masked token
    precedes a real one (left padding or gaps)."""
    arange = torch.arange(pos, device=device).expand(batch, pos)
    if attention_mask is None:
        return arange
    mask = attention_mask.long()
    derived = (mask.cumsum(dim=1) - 1).clamp(min=0)
    needs = ((derived != arange) & (mask != 0)).any(dim=1, keepdim=True)
    return torch.where(needs, derived, arange)


def _hf_config(model: TransformerBridge) -> Any:
    original = getattr(model, "original_model", None)
    config = getattr(original, "config", None)
    if config is None:
        raise TypeError("expected a TransformerBridge wrapping an HF model (model.original_model)")
    return config


def _run_blocks(
    model: TransformerBridge,
    hidden: Float[Tensor, "batch pos d_model"],
    start_layer: int,
    attention_mask: Int[Tensor, "batch pos"] | None,
) -> Float[Tensor, "batch pos d_model"]:
    """Blocks ``start_layer..n_layers-1`` then the final norm (bridge modules, hooks fire)."""
    batch, pos = hidden.shape[:2]
    position_ids = position_ids_for(attention_mask, batch, pos, hidden.device)
    mask = None if attention_mask is None else attention_mask.to(hidden.device)
    # the cache (none) is passed by position: transformers 5.23 names it past_key_values, 5.24
    # renamed it cache and warns (FutureWarning) on the old keyword
    causal_mask = create_causal_mask(
        _hf_config(model), hidden, mask, None, position_ids=position_ids
    )
    position_embeddings = model.rotary_emb(hidden, position_ids=position_ids)  # type: ignore[attr-defined]
    for block in list(model.blocks)[start_layer:]:  # type: ignore[attr-defined]
        hidden = block(
            hidden,
            attention_mask=causal_mask,
            position_embeddings=position_embeddings,
            position_ids=position_ids,
        )
        if isinstance(hidden, tuple):
            hidden = hidden[0]
    return model.ln_final(hidden)  # type: ignore[attr-defined]


@torch.no_grad()
def resid_stream_states(
    model: TransformerBridge,
    ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"] | None = None,
    layers: Sequence[int] | None = None,
) -> ResidStreamStates:
    """Every requested ``blocks.{l}.hook_resid_pre`` (default: all layers) and the final
    normalised output, from ONE no-grad pass that skips the unembedding.

    The states are read through the hook points, so they are what a hook at
    ``blocks.{l}.hook_resid_pre`` would see (after any hooks already attached).
    """
    if ids.ndim != 2 or ids.is_floating_point():
        raise ValueError(f"ids must be integer token ids [batch, pos], got {tuple(ids.shape)}")
    _check_ids_and_mask(ids, attention_mask, "ids")
    n_layers = n_layers_of(model)
    layers = tuple(range(n_layers)) if layers is None else tuple(layers)
    if not layers:
        raise ValueError("layers must name at least one layer (or be None for all)")
    names = {layer: resid_pre_name(model, layer) for layer in layers}
    store: dict[int, Tensor] = {}
    hooks = [
        (names[layer], partial(store_resid_hook, store=store, layer=layer)) for layer in set(layers)
    ]
    with model.hooks(fwd_hooks=hooks), autocast_like(model):
        hidden = model.embed(ids)  # type: ignore[attr-defined]
        final = _run_blocks(model, hidden, 0, attention_mask)
    return ResidStreamStates(
        layers=layers,
        resid_pre=torch.stack([store[layer] for layer in layers], dim=1),
        final=final,
    )


def run_from_layer(
    model: TransformerBridge,
    resid: Float[Tensor, "batch pos d_model"],
    start_layer: int,
    attention_mask: Int[Tensor, "batch pos"] | None = None,
    *,
    positions: Int[Tensor, "batch n"] | None = None,
) -> Float[Tensor, "batch n d_vocab"]:
    """Logits of the target from ``resid`` = ``blocks.{start_layer}.hook_resid_pre`` on.

    Only blocks ``start_layer..n_layers-1``, the final norm and the unembedding run; hooks on
    them (including ``blocks.{start_layer}.hook_resid_pre``) fire, and gradients flow from the
    logits into ``resid`` and into whatever those hooks computed.

    ``positions`` (None: every position, ``n = pos``): ``logits[b, i]`` is the logit vector at
    position ``positions[b, i]`` of row ``b``, and only those positions are unembedded (e.g.
    :func:`~hyperdas_tl.data.batching.label_positions`). The blocks still run on every position
    (attention needs them); the values are those of the full unembedding at those positions.
    """
    resid_pre_name(model, start_layer)  # validates the layer
    if resid.ndim != 3 or not resid.is_floating_point():
        raise ValueError(f"resid must be a float [batch, pos, d_model], got {tuple(resid.shape)}")
    d_model = int(model.cfg.d_model)
    if resid.shape[-1] != d_model:
        raise ValueError(f"resid has d_model={resid.shape[-1]} but the model has {d_model}")
    _check_ids_and_mask(resid, attention_mask, "residual stream")
    if positions is not None:
        _check_positions(positions, *resid.shape[:2])
    with autocast_like(model):  # a bf16 target: float32 hooks/inputs meet it in bf16
        hidden = _run_blocks(model, resid, start_layer, attention_mask)
        if positions is not None:
            index = positions.to(hidden.device)[..., None].expand(-1, -1, hidden.shape[-1])
            hidden = hidden.gather(1, index)
        return model.unembed(hidden)  # type: ignore[attr-defined]


def _check_positions(positions: Tensor, batch: int, pos: int) -> None:
    if positions.ndim != 2 or positions.shape[0] != batch or positions.is_floating_point():
        raise ValueError(
            f"positions must be integer [batch={batch}, n], got {tuple(positions.shape)} "
            f"({positions.dtype})"
        )
    if positions.numel() and (int(positions.min()) < 0 or int(positions.max()) >= pos):
        raise ValueError(f"positions must lie in [0, {pos}), got {positions.tolist()}")
