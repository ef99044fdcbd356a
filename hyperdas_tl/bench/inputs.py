"""What every section benchmarks on: the target (and its plain HF twin for pyvene), the run's
HyperDAS config, seeded synthetic batches and random bases."""

import torch
from torch import Tensor, nn

from hyperdas_tl.bench.settings import BenchSettings
from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.data.token_rows import TokenRow, token_batch
from hyperdas_tl.hyperdas import HyperDASConfig
from hyperdas_tl.interchange import random_orthonormal_basis
from hyperdas_tl.models import (
    SMOLLM2_NAME,
    TINY_LLAMA_NAME,
    build_tiny_llama_hf,
    load_model,
    load_smollm2_hf,
    tiny_llama_config,
)


def synthetic_batch(
    batch: int,
    seq: int,
    *,
    concept_len: int = 8,
    n_label: int = 3,
    vocab: int = 20000,
    seed: int = 0,
) -> InterventionBatch:
    """An unpadded batch of random tokens: base rows end with ``n_label`` label tokens, the
    entity sits two tokens before the label (base) / at the same place (source), examples
    alternate cause / isolate. Token ids come from ``[100, vocab)``; the tensors are built by
    :func:`~hyperdas_tl.data.token_rows.token_batch`."""
    g = torch.Generator().manual_seed(seed)
    base_ids = torch.randint(100, vocab, (batch, seq), generator=g).tolist()
    source_ids = torch.randint(100, vocab, (batch, seq), generator=g).tolist()
    concept_ids = torch.randint(100, vocab, (batch, concept_len), generator=g).tolist()
    prompt = seq - n_label
    rows = [
        TokenRow(
            base_prompt=base_ids[b][:prompt],
            base_entity_last=prompt - 2,
            source_prompt=source_ids[b],
            source_entity_last=prompt - 2,
            label_tokens=base_ids[b][prompt:],
            kind="cause" if b % 2 == 0 else "isolate",
            concept=concept_ids[b],
        )
        for b in range(batch)
    ]
    return token_batch(rows)


def load_target(name: str) -> nn.Module:
    """The benchmarked bridge, on CPU."""
    if name == TINY_LLAMA_NAME:
        return load_model(name, device="cpu", tiny_config=tiny_llama_config())
    return load_model(name, device="cpu")


def load_hf_twin(name: str, vocab: int) -> nn.Module:
    """The same weights as a plain HF model (pyvene's input)."""
    if name == SMOLLM2_NAME:
        return load_smollm2_hf()[0]
    if name == TINY_LLAMA_NAME:
        return build_tiny_llama_hf(tiny_llama_config(), vocab)
    raise ValueError(f"no HF twin for {name!r}")


def resolved(model: nn.Module, settings: BenchSettings) -> HyperDASConfig:
    """The HyperDAS config of the run (fixes the default layer and k for every section)."""
    return HyperDASConfig.build(
        target_model=settings.model,
        layer=settings.layer,
        k=settings.k,
        n_hypernet_layers=settings.n_hypernet_layers,
        seed=settings.seed,
    ).resolved_for(int(model.cfg.n_layers), int(model.cfg.d_model))


def vocab_limit(model: nn.Module) -> int:
    return min(20000, int(model.cfg.d_vocab))


def make_batch(model: nn.Module, settings: BenchSettings, **overrides: int) -> InterventionBatch:
    sizes = {"batch": settings.batch, "seq": settings.seq} | overrides
    return synthetic_batch(
        sizes["batch"],
        sizes["seq"],
        concept_len=settings.concept_len,
        n_label=settings.n_label,
        vocab=vocab_limit(model),
        seed=settings.seed,
    )


def random_basis(d_model: int, k: int, seed: int = 0) -> Tensor:
    """A seeded random orthonormal ``[d_model, k]`` basis
    (:func:`~hyperdas_tl.interchange.random_orthonormal_basis`)."""
    return random_orthonormal_basis(d_model, k, generator=torch.Generator().manual_seed(seed))
