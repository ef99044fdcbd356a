"""Builders for the HyperDAS tests: a tiny config and synthetic batches (tiny defaults,
overridable by keyword)."""

import torch

from hyperdas_tl.data.batching import IGNORE_INDEX, InterventionBatch
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
    return HyperDASConfig(**defaults)


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
    ``n_label`` real base tokens are label tokens, concepts have ``b % 2`` padding tokens."""
    g = torch.Generator().manual_seed(seed)
    base_ids = torch.randint(1, vocab, (batch, base_len), generator=g)
    source_ids = torch.randint(1, vocab, (batch, src_len), generator=g)
    concept_ids = torch.randint(1, vocab, (batch, concept_len), generator=g)
    base_mask = torch.ones(batch, base_len, dtype=torch.long)
    source_mask = torch.ones(batch, src_len, dtype=torch.long)
    concept_mask = torch.ones(batch, concept_len, dtype=torch.long)
    labels = torch.full((batch, base_len), IGNORE_INDEX)
    base_intervenable = torch.zeros(batch, base_len, dtype=torch.bool)
    for b in range(batch):
        pad = min(b, base_len - n_label - 2)
        base_mask[b, base_len - pad :] = 0
        source_mask[b, src_len - min(b, src_len - 1) :] = 0
        concept_mask[b, concept_len - (b % 2) :] = 0
        n_real = base_len - pad
        prompt = n_real - n_label
        base_intervenable[b, :prompt] = True
        # labels[t] is the token after position t: label tokens are base_ids[prompt:n_real].
        labels[b, prompt - 1 : n_real - 1] = base_ids[b, prompt:n_real]
    base_ids = base_ids * base_mask
    source_ids = source_ids * source_mask
    concept_ids = concept_ids * concept_mask
    return InterventionBatch(
        base_ids=base_ids,
        base_attention_mask=base_mask,
        base_intervenable=base_intervenable,
        base_entity_last=torch.zeros(batch, dtype=torch.long),
        source_ids=source_ids,
        source_attention_mask=source_mask,
        source_intervenable=source_mask.bool(),
        source_entity_last=torch.zeros(batch, dtype=torch.long),
        labels=labels,
        is_cause=torch.arange(batch) % 2 == 0,
        concept_ids=concept_ids,
        concept_attention_mask=concept_mask,
    )
