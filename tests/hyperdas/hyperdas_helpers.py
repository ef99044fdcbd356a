"""Builders for the HyperDAS tests: a tiny config and synthetic batches (tiny defaults,
overridable by keyword)."""

import torch

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.data.token_rows import TokenRow, token_batch
from hyperdas_tl.hyperdas.config import HyperDASConfig


def build_config(**overrides) -> HyperDASConfig:
    """A tiny HyperDASConfig, any field overridable by keyword."""
    defaults = dict(
        target_model="tiny-llama",
        layer=2,
        k=4,
        n_hypernet_layers=2,
        n_selection_heads=4,
        n_steps=10,
        eval_every=5,
        val_batches=1,
    )
    defaults.update(overrides)
    return HyperDASConfig.build(**defaults)


def build_batch(
    batch: int = 3,
    base_len: int = 7,
    src_len: int = 6,
    concept_len: int = 3,
    *,
    vocab: int = 1000,
    n_label: int = 2,
    seed: int = 0,
) -> InterventionBatch:
    """Random right-padded batch: example b has ``b`` padding tokens on base and source, its last
    ``n_label`` real base tokens are label tokens, concepts have ``b % 2`` padding tokens (padding
    id 0, entities at position 0, examples alternate cause / isolate)."""
    g = torch.Generator().manual_seed(seed)
    base_ids = torch.randint(1, vocab, (batch, base_len), generator=g).tolist()
    source_ids = torch.randint(1, vocab, (batch, src_len), generator=g).tolist()
    concept_ids = torch.randint(1, vocab, (batch, concept_len), generator=g).tolist()
    rows = []
    for b in range(batch):
        n_real = base_len - min(b, base_len - n_label - 2)
        prompt = n_real - n_label
        rows.append(
            TokenRow(
                base_prompt=base_ids[b][:prompt],
                base_entity_last=0,
                source_prompt=source_ids[b][: src_len - min(b, src_len - 1)],
                source_entity_last=0,
                label_tokens=base_ids[b][prompt:n_real],
                kind="cause" if b % 2 == 0 else "isolate",
                concept=concept_ids[b][: concept_len - (b % 2)],
            )
        )
    return token_batch(rows, pad=0)
