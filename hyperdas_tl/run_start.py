"""The start of every experiment run, in one place: seeds and threads fixed, the target loaded in
the run's precision, the data built, the provenance recorded.

:func:`start_run` is what the ``train`` command (:func:`hyperdas_tl.hyperdas.run.
train_and_evaluate`), the ``demo`` command and ``analyses/run_benchmark.py`` call before their
own work; it returns a :class:`RunStart`.
"""

import time
from dataclasses import dataclass
from typing import Any

import torch
from transformer_lens.model_bridge import TransformerBridge

from hyperdas_tl.experiment import DataConfig, ExperimentData, build_experiment_data
from hyperdas_tl.models import default_device, load_model
from hyperdas_tl.precision import Precision, model_dtype, precision_name, resolve_precision
from hyperdas_tl.provenance import make_reproducible, run_provenance


@dataclass
class RunStart:
    """What :func:`start_run` set up."""

    model: TransformerBridge
    """The frozen target (loaded, or the one passed in)."""
    data: ExperimentData
    """The run's batches and examples."""
    dtype: torch.dtype
    """The target's dtype."""
    threads: int
    """Torch threads the run uses (recorded in the provenance)."""
    provenance: dict[str, Any]
    """:func:`hyperdas_tl.provenance.run_provenance` of the run."""
    seconds: float
    """Wall time of loading the target and building the data."""


def start_run(
    model_name: str,
    data_config: DataConfig,
    *,
    seed: int,
    threads: int | None = None,
    device: str | None = None,
    precision: Precision = "auto",
    allow_emulated_bf16: bool = False,
    target: TransformerBridge | None = None,
    argv: list[str] | None = None,
) -> RunStart:
    """Fix seeds, threads and deterministic algorithms (:func:`make_reproducible` with ``seed``
    and ``threads``; None keeps torch's thread count), load ``model_name`` on ``device``
    (default: CUDA when available) in ``precision`` unless ``target`` is given (it must be
    ``model_name``'s; ``allow_emulated_bf16``: run an explicit bfloat16 on hardware that would
    emulate it, see :func:`~hyperdas_tl.precision.resolve_precision`), build ``data_config``'s
    data and record the provenance (``argv``: the command to record, default ``sys.argv``)."""
    threads = make_reproducible(seed, threads)
    start = time.perf_counter()
    if target is None:
        device = device or str(default_device())
        requested = resolve_precision(precision, device, allow_emulated=allow_emulated_bf16)
        target = load_model(model_name, device=device, dtype=requested)
    data = build_experiment_data(target, data_config, model_name=model_name)
    seconds = time.perf_counter() - start
    dtype = model_dtype(target)
    provenance = run_provenance(seed=seed, threads=threads, dtype=precision_name(dtype), argv=argv)
    return RunStart(target, data, dtype, threads, provenance, seconds)
