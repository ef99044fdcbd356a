"""Speed and memory benchmarks of hyperdas_tl on SmolLM2-135M (CPU), as ratios from one run.

::

    python -m hyperdas_tl.bench --out analyses/results/bench_smollm2.json  # ~10 min, 1 thread
    python -m hyperdas_tl.bench --repeats 2 --no-memory --no-scaling --out /tmp/quick.json

Every comparison is measured in one process with interleaved repetitions (A, B, C, A, B, C,
...), after one warm-up call of each, so machine load that drifts during the run hits every
variant alike; tables give the min and median over repetitions and the ratios of mins and of
medians. The machine (CPU count, torch version and threads, load average at start and end) is
recorded with the results. Sections, one module each (the section name):

1. ``hook_overhead``: plain forward vs an identity ``hook_resid_pre`` hook vs our soft
   interchange hook (no grad).
2. ``das_step``: one DAS training step (forward, backward, Adam) at the same layer, k, batch and
   positions: ours (TransformerLens bridge + our hook, as :func:`hyperdas_tl.baselines.das.
   train_das` runs it), ours starting at layer L, ours re-running the source each step, and
   pyvene 0.1.8's ``LowRankRotatedSpaceIntervention`` on the plain HF model. Peak memory of each
   comes from a fresh subprocess per variant (see :func:`memory_probe`).
3. ``hyperdas_step``: a HyperDAS training step split into its phases (HyperDAS's own public
   steps, timed one by one), vs a plain forward+backward of the target; and the intervened pass
   started at layer L (:func:`~hyperdas_tl.partial_forward.run_from_layer`) vs TransformerLens's
   ``start_at_layer`` vs a full forward with the hook.
4. ``eval_throughput``: examples/s of teacher-forced and generation judging under a DAS
   interchange, and of HyperDAS's own teacher-forced forward.
5. ``scaling``: DAS and HyperDAS step time vs batch size and vs sequence length.
6. ``memory``: :func:`hyperdas_tl.memory.estimate_training_memory` for Llama-3-8B, and the same
   estimate for SmolLM2 next to what a step really saves for backward (``memory_probe`` holds
   the in-process peak-RSS probe).

Around them: :mod:`~hyperdas_tl.bench.settings` (sizes, machine), :mod:`~hyperdas_tl.bench.timing`
(interleaved repetitions), :mod:`~hyperdas_tl.bench.inputs` (target, synthetic batches),
:mod:`~hyperdas_tl.bench.runner` (run the sections), :mod:`~hyperdas_tl.bench.report`
(markdown) and :mod:`~hyperdas_tl.bench.cli`.

Threads default to 1: on a shared 2-core machine, two OpenMP threads competing with other jobs
ran a SmolLM2 forward about 8x slower than one thread.
"""

from hyperdas_tl.bench.cli import main, parse_args
from hyperdas_tl.bench.das_step import DAS_LR, DAS_VARIANTS, DASStep, bench_das_step
from hyperdas_tl.bench.eval_throughput import bench_eval_throughput
from hyperdas_tl.bench.hook_overhead import bench_hook_overhead
from hyperdas_tl.bench.hyperdas_step import (
    HyperDASStep,
    bench_hyperdas_step,
    bench_start_at_layer,
    plain_loss,
    target_trainable,
)
from hyperdas_tl.bench.inputs import (
    load_hf_twin,
    load_target,
    make_batch,
    random_basis,
    resolved,
    synthetic_batch,
    vocab_limit,
)
from hyperdas_tl.bench.memory import (
    MEMORY_VARIANTS,
    SavedTensorBytes,
    llama3_memory,
    memory_check,
    memory_probe_subprocess,
)
from hyperdas_tl.bench.memory_probe import memory_probe
from hyperdas_tl.bench.report import to_markdown, write_results
from hyperdas_tl.bench.runner import SECTIONS, run_benchmarks
from hyperdas_tl.bench.scaling import bench_scaling
from hyperdas_tl.bench.settings import BenchSettings, machine_info
from hyperdas_tl.bench.timing import Timing, interleaved, ratio_rows

__all__ = [
    "DAS_LR",
    "DAS_VARIANTS",
    "MEMORY_VARIANTS",
    "SECTIONS",
    "BenchSettings",
    "DASStep",
    "HyperDASStep",
    "SavedTensorBytes",
    "Timing",
    "bench_das_step",
    "bench_eval_throughput",
    "bench_hook_overhead",
    "bench_hyperdas_step",
    "bench_scaling",
    "bench_start_at_layer",
    "interleaved",
    "llama3_memory",
    "load_hf_twin",
    "load_target",
    "machine_info",
    "main",
    "make_batch",
    "memory_check",
    "memory_probe",
    "memory_probe_subprocess",
    "parse_args",
    "plain_loss",
    "random_basis",
    "ratio_rows",
    "resolved",
    "run_benchmarks",
    "synthetic_batch",
    "target_trainable",
    "to_markdown",
    "vocab_limit",
    "write_results",
]
