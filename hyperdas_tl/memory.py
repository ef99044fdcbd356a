"""Training memory of HyperDAS on a target, from the target's HF config alone (no weights).

:func:`estimate_training_memory` adds up, for one training step:

- **Parameters** (exact). The target's parameters are counted on an HF model built on the
  ``meta`` device; HyperDAS's (hypernetwork, position selection, Householder subspace) by
  building the real :class:`~hyperdas_tl.hyperdas.HyperDAS` module over a meta-device
  ``TransformerBridge`` of that model. No closed form to drift out of date: whatever
  ``HyperDAS`` builds is what is counted. Target weights are stored in ``target_dtype``,
  HyperDAS weights, gradients and AdamW moments in ``train_dtype``.
- **Gradients** of the trainable HyperDAS parameters (the target is frozen: none) and **AdamW**
  state (``exp_avg`` + ``exp_avg_sq``, each the size of the parameter).
- **Activations** (approximate; formulas below, calibrated against tensors saved for backward
  on SmolLM2 with ``torch.autograd.graph.saved_tensors_hooks``, which they match within
  about 20 %; ``python -m hyperdas_tl.bench`` reports that comparison).

Notation: ``B`` batch, ``T`` base positions, ``S`` source positions, ``C`` concept tokens,
``d`` = d_model, ``f`` = d_mlp, ``H`` query heads, ``n`` target layers, ``L`` intervention
layer, ``N`` hypernetwork blocks, ``V`` vocabulary, ``ℓ`` label tokens per example.

1. *Frozen prefix states kept for the hypernetwork* (target dtype): the no-grad passes over base
   and source keep every ``hook_resid_pre`` and the final normalised output,
   ``(n + 1) (T + S) B d`` elements. (The passes' own transient activations, one layer at a
   time, are not counted.)
2. *Hypernetwork activations* (train dtype): each cross-attention key (a (state, position) pair
   routed to a block) keeps about ``6 d`` elements (unit-normalised copy, key norm, k/v and
   their grouped-query repeats) plus ``2 H C`` attention scores; ``"grouped"`` routing reads
   every state once (``(n + 1)(T + S) B`` keys in all), ``"all"`` N times. Each concept token
   keeps about ``20 d + 3 f`` per block (self-attention, two cross-attention queries, MLP).
   Position selection keeps about ``3 d`` per (source, base) pair: ``3 B S T d`` (its pairwise
   key MLP), the dominant term at long sequences.
3. *Intervened suffix activations* (target dtype): only blocks ``L..n-1`` run with grad (the
   frozen prefix is never re-run). With frozen weights a Llama block saves only what the
   activation gradient needs, per token: the two RMSNorm inputs (``2 d``), q and the repeated
   k, v (``3 d``), the gated MLP's gate, SiLU and up outputs (``3 f``), and the attention
   pattern (``H T``; kept in float32 by eager attention, counted at 4 + target-dtype bytes).
   Plus the interchange hook (about ``4 d`` per base token and the ``B (S + 1) T`` selection)
   and the logits with their gradient (``2 B T V``) and the label cross-entropy
   (``B ℓ V`` in float32).

Not counted: framework overhead (CUDA context, allocator fragmentation, often 1-2 GB on a GPU),
the frozen passes' transient per-layer buffers, and optimiser temporaries. Note that
``HyperDAS`` copies the target's blocks and so inherits the target's dtype; ``train_dtype``
describes a run that keeps HyperDAS in float32 over a bfloat16 target (pass
``train_dtype=torch.bfloat16`` to estimate a run that does not).
"""

import json
from dataclasses import asdict, dataclass

import torch
from transformers import AutoModelForCausalLM, PretrainedConfig

from hyperdas_tl.hyperdas.config import HyperDASConfig, StateRouting

GB = 1e9
ADAM_MOMENTS = 2
HYPERNET_KEY_D = 6
"""Elements of d kept per cross-attention key (see the module docstring)."""
HYPERNET_CONCEPT_D = 20
"""Elements of d kept per concept token per hypernetwork block, besides ``3 f`` of its MLP."""
SELECTION_PAIR_D = 3
"""Elements of d kept per (source, base) pair by the position-selection MLP."""
HOOK_D = 4
"""Elements of d kept per base token by the interchange hook."""


@dataclass(frozen=True)
class ParameterCounts:
    """Exact parameter counts of a target and of the HyperDAS built on it."""

    target: int
    """Target parameters (tied embeddings counted once)."""
    hypernetwork: int
    """HyperDAS hypernetwork (N copied blocks with two cross-attentions each, norms, state
    embedding; the frozen token embedding is shared, not counted, unless trained)."""
    selection: int
    """Position-selection module."""
    subspace: int
    """Householder subspace (R0 and the reflection MLP)."""
    trainable: int
    """Every HyperDAS parameter that requires grad."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes needed by one HyperDAS training step (see the module docstring); ``*_bytes``
    fields add up to :attr:`total_bytes`."""

    settings: dict
    """What was estimated: model sizes, batch, positions, layer, k, N, dtypes."""
    params: ParameterCounts
    """Exact parameter counts."""
    target_params_bytes: int
    """Frozen target weights (target dtype)."""
    hypernetwork_params_bytes: int
    """Trainable HyperDAS weights (train dtype)."""
    grads_bytes: int
    """Gradients of the trainable weights (train dtype)."""
    adamw_bytes: int
    """AdamW ``exp_avg`` and ``exp_avg_sq`` (train dtype)."""
    prefix_states_bytes: int
    """Residual streams of the frozen base/source passes kept for the hypernetwork."""
    hypernetwork_activations_bytes: int
    """Hypernetwork + position selection + subspace activations saved for backward."""
    suffix_activations_bytes: int
    """Intervened pass (blocks L..n-1, hook, logits, loss) activations saved for backward."""

    @property
    def activations_bytes(self) -> int:
        return (
            self.prefix_states_bytes
            + self.hypernetwork_activations_bytes
            + self.suffix_activations_bytes
        )

    @property
    def total_bytes(self) -> int:
        return (
            self.target_params_bytes
            + self.hypernetwork_params_bytes
            + self.grads_bytes
            + self.adamw_bytes
            + self.activations_bytes
        )

    def parts(self) -> dict[str, int]:
        """Every component in bytes, plus the activation subtotal and the total."""
        return {
            "target params": self.target_params_bytes,
            "HyperDAS params": self.hypernetwork_params_bytes,
            "gradients": self.grads_bytes,
            "AdamW state": self.adamw_bytes,
            "frozen prefix states": self.prefix_states_bytes,
            "hypernetwork activations": self.hypernetwork_activations_bytes,
            "intervened suffix activations": self.suffix_activations_bytes,
            "activations (subtotal)": self.activations_bytes,
            "total": self.total_bytes,
        }

    def to_dict(self) -> dict:
        return {
            "settings": dict(self.settings),
            "params": asdict(self.params),
            "bytes": self.parts(),
        }

    def to_markdown(self) -> str:
        """A two-column table (GB = 10^9 bytes)."""
        s = self.settings
        lines = [
            f"{s['model']}: batch {s['batch']}, base/source/concept positions "
            f"{s['seq']}/{s['src_seq']}/{s['concept_len']}, layer {s['layer']}, k {s['k']}, "
            f"N {s['n_hypernet_layers']}, target {s['target_dtype']}, HyperDAS {s['train_dtype']}"
            f" ({self.params.trainable / 1e9:.3f} B trainable parameters)",
            "",
            "| component | GB |",
            "| --- | ---: |",
        ]
        for name, value in self.parts().items():
            bold = "**" if name == "total" else ""
            lines.append(f"| {bold}{name}{bold} | {bold}{value / GB:.2f}{bold} |")
        return "\n".join(lines)


def dtype_bytes(dtype: torch.dtype) -> int:
    """Bytes per element of ``dtype``."""
    return torch.empty((), dtype=dtype).element_size()


def _config_key(hf_config: PretrainedConfig) -> str:
    return json.dumps(hf_config.to_diff_dict(), sort_keys=True, default=str)


def parameter_counts(
    hf_config: PretrainedConfig, hyperdas_config: HyperDASConfig | None = None
) -> ParameterCounts:
    """Exact parameter counts of the target and of ``HyperDAS`` on it, built on ``meta``."""
    hyperdas_config = hyperdas_config or HyperDASConfig()
    key = (
        _config_key(hf_config),
        json.dumps(hyperdas_config.to_dict(), sort_keys=True, default=str),
    )
    if key not in _COUNTS:
        _COUNTS[key] = _build_and_count(hf_config, hyperdas_config)
    return _COUNTS[key]


_COUNTS: dict[tuple[str, str], ParameterCounts] = {}
"""Counts already built in this process (building Llama-3-8B on meta takes about a second)."""


def _build_and_count(
    hf_config: PretrainedConfig, hyperdas_config: HyperDASConfig
) -> ParameterCounts:
    from hyperdas_tl.hyperdas.model import HyperDAS
    from hyperdas_tl.models import boot_bridge, smollm2_tokenizer

    with torch.device("meta"):
        hf_model = AutoModelForCausalLM.from_config(hf_config)
    target = sum(p.numel() for p in hf_model.parameters())
    # The tokenizer only matters for text I/O; the meta bridge needs one to boot.
    bridge = boot_bridge("memory-estimate", hf_model, smollm2_tokenizer(), device="meta")
    with torch.device("meta"):
        model = HyperDAS(bridge, hyperdas_config)

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    return ParameterCounts(
        target=target,
        hypernetwork=count(model.hypernetwork),
        selection=count(model.selection),
        subspace=count(model.subspace),
        trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )


def estimate_training_memory(
    hf_config: PretrainedConfig,
    *,
    n_hypernet_layers: int = 8,
    k: int | None = None,
    batch: int = 8,
    seq: int = 64,
    src_seq: int | None = None,
    concept_len: int = 8,
    n_label_tokens: int = 3,
    layer: int | None = None,
    state_routing: StateRouting = "grouped",
    n_selection_heads: int = 8,
    target_dtype: torch.dtype = torch.bfloat16,
    train_dtype: torch.dtype = torch.float32,
    model_name: str | None = None,
) -> MemoryEstimate:
    """Memory of one HyperDAS training step on the model described by ``hf_config``.

    Args:
        hf_config: the target's HF config (a Llama-family ``LlamaConfig``, e.g.
            :func:`hyperdas_tl.models.llama3_8b_hf_config`).
        n_hypernet_layers, k, layer, state_routing, n_selection_heads: as in
            :class:`~hyperdas_tl.hyperdas.HyperDASConfig` (``None`` resolves the same way:
            ``k`` = :func:`~hyperdas_tl.hyperdas.default_k`, ``layer`` = ``n_layers // 2``).
        batch: examples per step.
        seq: base positions (prompt + label tokens).
        src_seq: source positions (default ``seq``).
        concept_len: concept tokens.
        n_label_tokens: label tokens per example.
        target_dtype: dtype of the frozen target (weights, states, suffix activations).
        train_dtype: dtype of HyperDAS weights, gradients, AdamW state and its activations.
        model_name: label for the table (default: the config's ``name_or_path``).
    """
    for name, value in (("batch", batch), ("seq", seq), ("concept_len", concept_len)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    src_seq = seq if src_seq is None else src_seq
    if src_seq < 1:
        raise ValueError(f"src_seq must be >= 1, got {src_seq}")
    n_layers = int(hf_config.num_hidden_layers)
    d = int(hf_config.hidden_size)
    f = int(hf_config.intermediate_size)
    heads = int(hf_config.num_attention_heads)
    vocab = int(hf_config.vocab_size)
    config = HyperDASConfig.build(
        layer=layer,
        k=k,
        n_hypernet_layers=n_hypernet_layers,
        state_routing=state_routing,
        n_selection_heads=n_selection_heads,
    ).resolved_for(n_layers, d)
    params = parameter_counts(hf_config, config)
    tb, wb = dtype_bytes(target_dtype), dtype_bytes(train_dtype)
    n_hyper = int(config.architecture.n_hypernet_layers)
    L = int(config.architecture.layer)

    states = (n_layers + 1) * (seq + src_seq) * batch * d
    reads = n_hyper if config.architecture.state_routing == "all" else 1
    keys = reads * (n_layers + 1) * (seq + src_seq) * batch
    hypernet = keys * (HYPERNET_KEY_D * d + 2 * heads * concept_len)
    hypernet += n_hyper * batch * concept_len * (HYPERNET_CONCEPT_D * d + 3 * f)
    hypernet += SELECTION_PAIR_D * batch * src_seq * seq * d
    tokens = batch * seq
    per_token_layer = (5 * d + 3 * f) * tb + heads * seq * (4 + tb)
    suffix = (n_layers - L) * tokens * per_token_layer
    suffix += (HOOK_D * d * tokens + batch * (src_seq + 1) * seq) * tb
    suffix += 2 * tokens * vocab * tb + batch * n_label_tokens * vocab * 4

    name = model_name or getattr(hf_config, "name_or_path", "") or hf_config.model_type
    settings = {
        "model": name,
        "n_layers": n_layers,
        "d_model": d,
        "batch": batch,
        "seq": seq,
        "src_seq": src_seq,
        "concept_len": concept_len,
        "layer": L,
        "k": int(config.architecture.k),
        "n_hypernet_layers": n_hyper,
        "state_routing": config.architecture.state_routing,
        "target_dtype": str(target_dtype).removeprefix("torch."),
        "train_dtype": str(train_dtype).removeprefix("torch."),
    }
    return MemoryEstimate(
        settings=settings,
        params=params,
        target_params_bytes=params.target * tb,
        hypernetwork_params_bytes=params.trainable * wb,
        grads_bytes=params.trainable * wb,
        adamw_bytes=ADAM_MOMENTS * params.trainable * wb,
        prefix_states_bytes=states * tb,
        hypernetwork_activations_bytes=hypernet * wb,
        suffix_activations_bytes=suffix,
    )
