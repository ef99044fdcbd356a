"""Peak resident memory of a few training steps, measured in this process (the fresh process that
:func:`hyperdas_tl.bench.memory.memory_probe_subprocess` starts runs it)."""

import gc
import os
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hyperdas_tl.bench.das_step import DASStep
from hyperdas_tl.bench.hyperdas_step import HyperDASStep
from hyperdas_tl.bench.inputs import load_hf_twin, load_target, make_batch, resolved
from hyperdas_tl.bench.memory import MEMORY_VARIANTS
from hyperdas_tl.bench.settings import BenchSettings
from hyperdas_tl.hyperdas import HyperDAS


def _rss_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_probe(variant: str, settings: BenchSettings) -> dict[str, Any]:
    """Peak resident memory of training steps above the settled process, in THIS process.

    Setup (model, intervention, optimiser), one warm-up step, ``gc``; then the peak RSS
    (``VmHWM``, reset through ``/proc/self/clear_refs``) over ``memory_steps`` steps minus the
    RSS before them. Meant to run in a fresh process with glibc's mmap threshold fixed low
    (:func:`memory_probe_subprocess`), so freed tensors go back to the OS and RSS follows what
    is live. Where the peak cannot be reset, the lifetime ``ru_maxrss`` is used instead
    (then the delta is a lower bound).
    """
    if variant not in MEMORY_VARIANTS:
        raise ValueError(f"variant must be one of {MEMORY_VARIANTS}, got {variant!r}")
    torch.set_num_threads(settings.threads)
    model = load_target(settings.model)
    config = resolved(model, settings)
    batch = make_batch(model, settings)
    if variant == "hyperdas":
        step: Callable[[], Any] = HyperDASStep(HyperDAS(model, config), batch)
    else:
        name = {"das_ours": "ours", "das_ours_from_layer": "ours from layer L"}.get(
            variant, "pyvene"
        )
        hf_model = None
        if name == "pyvene":
            hf_model = load_hf_twin(settings.model, int(model.cfg.d_vocab))
            del model
            gc.collect()
            model = hf_model  # the bridge is not needed by pyvene
        step = DASStep(
            name,
            model,
            batch,
            int(config.architecture.layer),
            int(config.architecture.k),
            hf_model=hf_model,
            n_label=settings.n_label,
        )
    step()
    gc.collect()
    before_kib = _rss_kib("VmRSS")
    reset = _reset_peak_rss()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(settings.memory_steps):
        step()
    peak_kib = _rss_kib("VmHWM") if reset else None
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if peak_kib is None or before_kib is None:
        delta_kib, method = maxrss_after - maxrss_before, "ru_maxrss delta (lower bound)"
    else:
        delta_kib, method = peak_kib - before_kib, "VmHWM after reset - VmRSS before"
    return {
        "variant": variant,
        "rss_before_steps_mb": (before_kib or 0) / 1024,
        "peak_step_delta_mb": delta_kib / 1024,
        "method": method,
        "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
    }
