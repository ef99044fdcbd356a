"""The HyperDAS hypernetwork: a trainable copy of the target's first N blocks that reads the
concept text and cross-attends to the target's residual streams of base and source.

Block i (pre-norm residual, all four sub-layers initialised from target block i)::

    h = h + SelfAttn(norm(h))                       causal, rotary, over the concept tokens
    h = h + CrossAttn_src(norm(h), source states)   initialised as a copy of SelfAttn
    h = h + CrossAttn_base(norm(h), base states)    initialised as a copy of SelfAttn
    h = h + MLP(norm(h))

The output encoding ``e`` is the final-normed state of the last real concept token.

How the target's states are fed. The target provides S = n_layers + 1 states per token (every
``hook_resid_pre`` and the final normalised output), each scaled to unit length. With
``state_routing="grouped"`` (default) the S states are split into N contiguous groups and block
i cross-attends to group i only, so early hypernetwork blocks read early target layers, every
state is read exactly once, and the key side costs S/N tokens per position instead of S.
``"all"`` lets every block read all S states (what the official implementation does by
collapsing the layer axis into the key sequence; N times the cost). Within a block the key
sequence is the group's (layer, position) pairs; a learned per-state embedding (zero at init)
tells layers apart. Cross-attention keys carry no rotary phase: base/source positions need no
order here (the selection module reads positions directly), and the concept tokens' positions
are unrelated to them. Because the states are unit-normalised, each cross-attention applies a
key-side RMSNorm, initialised from the block's input norm, before its key/value projections:
that puts the states back on the scale the copied projections were trained on. Keys exist only
at intervenable positions (prompt tokens; never labels or padding).

Target family: Llama-style decoders (RMSNorm, rotary, grouped-query attention, SwiGLU), e.g.
SmolLM2 and Llama-3.
"""

import copy

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from hyperdas_tl.hyperdas.config import StateRouting


def unit_normalize(
    x: Float[Tensor, "... d_model"], eps: float = 1e-6
) -> Float[Tensor, "... d_model"]:
    """``x / |x|`` along the last axis (zero vectors stay zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


class RMSNorm(nn.Module):
    """Llama RMSNorm: ``w * x / rms(x)``, computed in float32."""

    def __init__(self, d_model: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)

    @classmethod
    def copy_of(cls, hf_norm: nn.Module) -> "RMSNorm":
        """A trainable copy of an HF RMSNorm."""
        eps = float(getattr(hf_norm, "variance_epsilon", getattr(hf_norm, "eps", 1e-6)))
        norm = cls(hf_norm.weight.shape[0], eps)
        norm.weight = nn.Parameter(hf_norm.weight.detach().clone())
        return norm


def _copy_linear(linear: nn.Module) -> nn.Linear:
    """A trainable copy of an ``nn.Linear`` (possibly wrapped in a TransformerLens bridge)."""
    linear = getattr(linear, "original_component", linear)
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"expected an nn.Linear, got {type(linear).__name__}")
    out = copy.deepcopy(linear)
    for parameter in out.parameters():
        parameter.requires_grad_(True)
    return out


class Attention(nn.Module):
    """Grouped-query attention with Llama's projections; self- or cross-attention."""

    def __init__(
        self, q: nn.Linear, k: nn.Linear, v: nn.Linear, o: nn.Linear, n_heads: int, n_kv_heads: int
    ) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = q, k, v, o
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = q.out_features // n_heads

    def forward(
        self,
        x: Float[Tensor, "batch q_pos d_model"],
        kv: Float[Tensor, "batch kv_pos d_model"],
        key_mask: Bool[Tensor, "batch kv_pos"],
        *,
        causal: bool,
        rotary: tuple[Tensor, Tensor] | None = None,
    ) -> Float[Tensor, "batch q_pos d_model"]:
        batch, q_pos, _ = x.shape
        kv_pos = kv.shape[1]
        q = self.q(x).view(batch, q_pos, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k(kv).view(batch, kv_pos, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(kv).view(batch, kv_pos, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if rotary is not None:
            q, k = apply_rotary_pos_emb(q, k, *rotary)
        groups = self.n_heads // self.n_kv_heads
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
        allowed = key_mask[:, None, None, :]
        if causal:
            tri = torch.ones(q_pos, kv_pos, dtype=torch.bool, device=x.device).tril()
            allowed = allowed & tri
        scores = (q @ k.transpose(-1, -2)) * self.head_dim**-0.5
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        pattern = torch.softmax(scores.float(), dim=-1).to(v.dtype)
        # A query that may see no key at all reads nothing (instead of a uniform average).
        pattern = pattern * allowed.any(dim=-1, keepdim=True)
        out = (pattern @ v).transpose(1, 2).reshape(batch, q_pos, self.n_heads * self.head_dim)
        return self.o(out)


class GatedMLP(nn.Module):
    """Llama's SwiGLU MLP: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, gate: nn.Linear, up: nn.Linear, down: nn.Linear) -> None:
        super().__init__()
        self.gate, self.up, self.down = gate, up, down

    def forward(self, x: Tensor) -> Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class HypernetworkBlock(nn.Module):
    """Self-attention -> cross-attention (source) -> cross-attention (base) -> MLP."""

    def __init__(self, target_block: nn.Module, n_heads: int, n_kv_heads: int) -> None:
        super().__init__()
        attn, mlp = target_block.attn, target_block.mlp

        def attention() -> Attention:
            return Attention(
                _copy_linear(attn.q),
                _copy_linear(attn.k),
                _copy_linear(attn.v),
                _copy_linear(attn.o),
                n_heads,
                n_kv_heads,
            )

        ln1 = target_block.ln1.original_component
        ln2 = target_block.ln2.original_component
        self.self_norm, self.self_attn = RMSNorm.copy_of(ln1), attention()
        self.source_norm, self.source_key_norm = RMSNorm.copy_of(ln1), RMSNorm.copy_of(ln1)
        self.source_attn = attention()
        self.base_norm, self.base_key_norm = RMSNorm.copy_of(ln1), RMSNorm.copy_of(ln1)
        self.base_attn = attention()
        self.mlp_norm = RMSNorm.copy_of(ln2)
        self.mlp = GatedMLP(
            _copy_linear(mlp.gate), _copy_linear(getattr(mlp, "in")), _copy_linear(mlp.out)
        )

    def forward(
        self,
        h: Float[Tensor, "batch concept_pos d_model"],
        concept_mask: Bool[Tensor, "batch concept_pos"],
        rotary: tuple[Tensor, Tensor],
        source_kv: Float[Tensor, "batch src_keys d_model"],
        source_mask: Bool[Tensor, "batch src_keys"],
        base_kv: Float[Tensor, "batch base_keys d_model"],
        base_mask: Bool[Tensor, "batch base_keys"],
    ) -> Float[Tensor, "batch concept_pos d_model"]:
        x = self.self_norm(h)
        h = h + self.self_attn(x, x, concept_mask, causal=True, rotary=rotary)
        h = h + self.source_attn(
            self.source_norm(h), self.source_key_norm(source_kv), source_mask, causal=False
        )
        h = h + self.base_attn(
            self.base_norm(h), self.base_key_norm(base_kv), base_mask, causal=False
        )
        return h + self.mlp(self.mlp_norm(h))


def state_groups(n_states: int, n_blocks: int, routing: StateRouting) -> list[list[int]]:
    """Which of the ``n_states`` target states each of the ``n_blocks`` blocks reads."""
    if routing == "all":
        return [list(range(n_states)) for _ in range(n_blocks)]
    if routing != "grouped":
        raise ValueError(f"state_routing must be 'grouped' or 'all', got {routing!r}")
    bounds = [round(i * n_states / n_blocks) for i in range(n_blocks + 1)]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(n_blocks)]


class Hypernetwork(nn.Module):
    """Concept text + base/source residual states -> encoding ``e`` (see the module docstring).

    Build it with :meth:`from_target`; the target itself is not a submodule.
    """

    def __init__(
        self,
        blocks: list[HypernetworkBlock],
        final_norm: RMSNorm,
        embedding: nn.Embedding | Tensor,
        rotary: nn.Module,
        n_states: int,
        routing: StateRouting,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.final_norm = final_norm
        self.rotary = rotary
        d_model = final_norm.weight.shape[0]
        self.n_states = n_states
        self.groups = state_groups(n_states, len(blocks), routing)
        self.state_embedding = nn.Parameter(torch.zeros(n_states, d_model))
        """Per-state (layer) embedding added on the key side, zero at init."""
        if isinstance(embedding, nn.Embedding):
            self.embedding: nn.Embedding | None = embedding
        else:
            self.embedding = None
            # The frozen target embedding, shared (not copied) and kept out of state_dict.
            self.register_buffer("frozen_embedding", embedding, persistent=False)

    @classmethod
    def from_target(
        cls,
        target: nn.Module,
        n_blocks: int,
        *,
        routing: StateRouting = "grouped",
        train_embedding: bool = False,
    ) -> "Hypernetwork":
        """Clone the target's first ``n_blocks`` blocks, final norm and (optionally) embedding."""
        hf_config = target.original_model.config
        n_layers = int(target.cfg.n_layers)
        if not 1 <= n_blocks <= n_layers:
            raise ValueError(f"n_blocks must be in [1, {n_layers}], got {n_blocks}")
        n_heads = int(hf_config.num_attention_heads)
        n_kv_heads = int(getattr(hf_config, "num_key_value_heads", None) or n_heads)
        blocks = [HypernetworkBlock(target.blocks[i], n_heads, n_kv_heads) for i in range(n_blocks)]
        final_norm = RMSNorm.copy_of(target.ln_final.original_component)
        target_embedding = target.embed.original_component
        embedding: nn.Embedding | Tensor
        if train_embedding:
            embedding = copy.deepcopy(target_embedding)
            embedding.weight.requires_grad_(True)
        else:
            embedding = target_embedding.weight.detach()
        rotary = LlamaRotaryEmbedding(config=hf_config).to(final_norm.weight.device)
        return cls(blocks, final_norm, embedding, rotary, n_layers + 1, routing)

    def embed(self, ids: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        if self.embedding is not None:
            return self.embedding(ids)
        return F.embedding(ids, self.frozen_embedding)

    def _keys(
        self,
        states: Float[Tensor, "batch state pos d_model"],
        mask: Bool[Tensor, "batch pos"],
        group: list[int],
    ) -> tuple[Float[Tensor, "batch keys d_model"], Bool[Tensor, "batch keys"]]:
        batch, _, pos, d_model = states.shape
        chosen = states[:, group] + self.state_embedding[group][None, :, None, :]
        keys = chosen.reshape(batch, len(group) * pos, d_model)
        key_mask = mask[:, None, :].expand(batch, len(group), pos).reshape(batch, -1)
        return keys, key_mask

    def forward(
        self,
        concept_ids: Int[Tensor, "batch concept_pos"],
        concept_mask: Int[Tensor, "batch concept_pos"],
        base_states: Float[Tensor, "batch state base_pos d_model"],
        base_mask: Bool[Tensor, "batch base_pos"],
        source_states: Float[Tensor, "batch state src_pos d_model"],
        source_mask: Bool[Tensor, "batch src_pos"],
    ) -> Float[Tensor, "batch d_model"]:
        """The encoding ``e``. ``*_states`` are the raw target states (every resid_pre then the
        final output); they are unit-normalised here. ``*_mask`` marks intervenable positions."""
        for name, states in (("base_states", base_states), ("source_states", source_states)):
            if states.shape[1] != self.n_states:
                raise ValueError(
                    f"{name} must hold {self.n_states} states (every resid_pre + the final "
                    f"output), got {states.shape[1]}"
                )
        concept_bool = concept_mask.bool()
        if not bool(concept_bool[:, 0].all()):
            raise ValueError("concept tokens must be right-padded with at least one real token")
        base_states = unit_normalize(base_states)
        source_states = unit_normalize(source_states)
        h = self.embed(concept_ids)
        positions = torch.arange(concept_ids.shape[1], device=h.device)[None].expand_as(concept_ids)
        rotary = self.rotary(h, positions)
        for block, group in zip(self.blocks, self.groups, strict=True):
            source_kv, source_key_mask = self._keys(source_states, source_mask.bool(), group)
            base_kv, base_key_mask = self._keys(base_states, base_mask.bool(), group)
            h = block(h, concept_bool, rotary, source_kv, source_key_mask, base_kv, base_key_mask)
        last = concept_bool.long().sum(dim=1) - 1
        h_last = h[torch.arange(h.shape[0], device=h.device), last]
        return self.final_norm(h_last)
