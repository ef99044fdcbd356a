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
   comes from a fresh subprocess per variant (see :mod:`~hyperdas_tl.bench.memory_probe`).
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

The names below are imported on first use, so a module that needs one small piece (e.g.
:func:`~hyperdas_tl.bench.timing.interleaved`, which :mod:`hyperdas_tl.precision` uses) does not
load every section.
"""

from hyperdas_tl.lazy_exports import lazy_exports

_EXPORTS = {
    "main": "hyperdas_tl.bench.cli",
    "parse_args": "hyperdas_tl.bench.cli",
    "DAS_LR": "hyperdas_tl.bench.das_step",
    "DAS_VARIANTS": "hyperdas_tl.bench.das_step",
    "DASStep": "hyperdas_tl.bench.das_step",
    "bench_das_step": "hyperdas_tl.bench.das_step",
    "bench_eval_throughput": "hyperdas_tl.bench.eval_throughput",
    "bench_hook_overhead": "hyperdas_tl.bench.hook_overhead",
    "HyperDASStep": "hyperdas_tl.bench.hyperdas_step",
    "bench_hyperdas_step": "hyperdas_tl.bench.hyperdas_step",
    "bench_start_at_layer": "hyperdas_tl.bench.hyperdas_step",
    "plain_loss": "hyperdas_tl.bench.hyperdas_step",
    "target_trainable": "hyperdas_tl.bench.hyperdas_step",
    "load_hf_twin": "hyperdas_tl.bench.inputs",
    "load_target": "hyperdas_tl.bench.inputs",
    "make_batch": "hyperdas_tl.bench.inputs",
    "random_basis": "hyperdas_tl.bench.inputs",
    "resolved": "hyperdas_tl.bench.inputs",
    "synthetic_batch": "hyperdas_tl.bench.inputs",
    "vocab_limit": "hyperdas_tl.bench.inputs",
    "MEMORY_VARIANTS": "hyperdas_tl.bench.memory",
    "SavedTensorBytes": "hyperdas_tl.bench.memory",
    "llama3_memory": "hyperdas_tl.bench.memory",
    "memory_check": "hyperdas_tl.bench.memory",
    "memory_probe_subprocess": "hyperdas_tl.bench.memory",
    "to_markdown": "hyperdas_tl.bench.report",
    "write_results": "hyperdas_tl.bench.report",
    "SECTIONS": "hyperdas_tl.bench.runner",
    "run_benchmarks": "hyperdas_tl.bench.runner",
    "bench_scaling": "hyperdas_tl.bench.scaling",
    "BenchSettings": "hyperdas_tl.bench.settings",
    "machine_info": "hyperdas_tl.bench.settings",
    "Timing": "hyperdas_tl.bench.timing",
    "interleaved": "hyperdas_tl.bench.timing",
    "ratio_rows": "hyperdas_tl.bench.timing",
}

__all__ = sorted(_EXPORTS)


_, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
