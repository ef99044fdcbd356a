"""Section 6: :func:`hyperdas_tl.memory.estimate_training_memory` for Llama-3-8B, and the same
estimate for the benchmarked model next to what a HyperDAS step really saves for backward; and
the subprocess that measures a step's peak memory in a fresh process
(:func:`memory_probe_subprocess`, running :func:`hyperdas_tl.bench.memory_probe.memory_probe`)."""

import json
import os
import subprocess
import sys
from typing import Any

import torch
from torch import Tensor, nn

from hyperdas_tl.bench.inputs import make_batch, resolved
from hyperdas_tl.bench.settings import BenchSettings
from hyperdas_tl.hyperdas import HyperDAS
from hyperdas_tl.memory import estimate_training_memory
from hyperdas_tl.models import llama3_8b_hf_config

MEMORY_VARIANTS = ("das_ours", "das_ours_from_layer", "das_pyvene", "hyperdas")


def llama3_memory(settings: BenchSettings) -> dict[str, Any]:
    """Llama-3-8B on paper: bf16 target, float32 HyperDAS (N blocks), AdamW, two batches."""
    out = {}
    for batch in (8, 32):
        estimate = estimate_training_memory(
            llama3_8b_hf_config(),
            n_hypernet_layers=8,
            batch=batch,
            seq=64,
            concept_len=settings.concept_len,
            model_name="Meta-Llama-3-8B",
        )
        out[f"batch_{batch}"] = estimate.to_dict() | {"markdown": estimate.to_markdown()}
    return out


class SavedTensorBytes:
    """Bytes of distinct storages saved for backward (parameters and buffers excluded)."""

    def __init__(self, exclude: set[int]) -> None:
        self.exclude = exclude
        self.storages: dict[int, int] = {}

    def pack(self, tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.exclude:
            self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    @property
    def total(self) -> int:
        return sum(self.storages.values())


def memory_check(model: nn.Module, settings: BenchSettings) -> dict[str, Any]:
    """The estimate for the benchmarked model's own config next to what one HyperDAS step
    really holds: exact parameter counts, and the tensors saved for backward (by
    ``saved_tensors_hooks``, around HyperDAS's own steps: ``intervention_weights`` for the
    hypernetwork, ``intervene`` + ``loss`` for the suffix; the frozen states are counted once as
    "prefix states")."""
    config = resolved(model, settings)
    hyperdas = HyperDAS(model, config)
    batch = make_batch(model, settings)
    dtype = next(model.parameters()).dtype
    estimate = estimate_training_memory(
        model.original_model.config,
        n_hypernet_layers=int(config.architecture.n_hypernet_layers),
        k=int(config.architecture.k),
        layer=int(config.architecture.layer),
        batch=settings.batch,
        seq=settings.seq,
        concept_len=settings.concept_len,
        n_label_tokens=settings.n_label,
        target_dtype=dtype,
        train_dtype=dtype,
        model_name=settings.model,
    )
    exclude = {t.untyped_storage().data_ptr() for t in model.parameters()}
    exclude |= {t.untyped_storage().data_ptr() for t in hyperdas.parameters()}
    exclude |= {t.untyped_storage().data_ptr() for t in hyperdas.buffers()}
    states = hyperdas.target_states(batch)
    exclude |= {states.base.resid_pre.untyped_storage().data_ptr()}
    exclude |= {states.source.resid_pre.untyped_storage().data_ptr()}
    prefix = sum(
        t.untyped_storage().nbytes()
        for t in (states.base.resid_pre, states.base.final)
        + (states.source.resid_pre, states.source.final)
    )
    hyper = SavedTensorBytes(exclude)
    with torch.autograd.graph.saved_tensors_hooks(hyper.pack, lambda t: t):
        weights = hyperdas.intervention_weights(batch, states)
    suffix = SavedTensorBytes(exclude | set(hyper.storages))
    with torch.autograd.graph.saved_tensors_hooks(suffix.pack, lambda t: t):
        logits = hyperdas.intervene(batch, states, weights)
        hyperdas.loss(batch, logits, weights)
    # logits and their gradient are counted by the estimate but are not "saved" tensors.
    measured_suffix = suffix.total + 2 * logits.numel() * logits.element_size()
    hf_params = sum(p.numel() for p in model.original_model.parameters())
    return {
        "estimate": estimate.to_dict(),
        "measured": {
            "target_params": hf_params,
            "hyperdas_trainable_params": sum(
                p.numel() for p in hyperdas.parameters() if p.requires_grad
            ),
            "prefix_states_bytes": prefix,
            "hypernetwork_activations_bytes": hyper.total,
            "suffix_activations_bytes": measured_suffix,
        },
    }


def memory_probe_subprocess(variant: str, settings: BenchSettings) -> dict[str, Any]:
    """:func:`memory_probe` in a fresh Python process (one per variant, so allocator caches
    and one variant's peak never leak into another's)."""
    env = dict(os.environ)
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"  # tensors >= 64 KiB are mmapped, freed to the OS
    env["OMP_NUM_THREADS"] = str(settings.threads)
    command = [sys.executable, "-m", "hyperdas_tl.bench", "--memory-probe", variant]
    command += ["--settings-json", json.dumps(settings.to_dict())]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"memory probe {variant} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
