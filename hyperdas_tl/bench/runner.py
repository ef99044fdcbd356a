"""Run the benchmark's sections on one target and collect their results (JSON-ready)."""

import logging
import os
import time
from typing import Any

import torch
from torch import nn

from hyperdas_tl.bench.das_step import bench_das_step
from hyperdas_tl.bench.eval_throughput import bench_eval_throughput
from hyperdas_tl.bench.hook_overhead import bench_hook_overhead
from hyperdas_tl.bench.hyperdas_step import bench_hyperdas_step
from hyperdas_tl.bench.inputs import load_hf_twin, load_target
from hyperdas_tl.bench.memory import llama3_memory, memory_check, memory_probe_subprocess
from hyperdas_tl.bench.scaling import bench_scaling
from hyperdas_tl.bench.settings import BenchSettings, machine_info

logger = logging.getLogger(__name__)


SECTIONS = ("hook_overhead", "das_step", "hyperdas_step", "eval_throughput", "scaling", "memory")


def run_benchmarks(
    settings: BenchSettings,
    sections: tuple[str, ...] = SECTIONS,
    *,
    memory_probes: bool = True,
    model: nn.Module | None = None,
) -> dict[str, Any]:
    """Run the named sections; returns a JSON-ready dict (machine, settings, one key per
    section)."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    results: dict[str, Any] = {"machine": machine_info(settings), "settings": settings.to_dict()}
    start = time.perf_counter()
    model = model if model is not None else load_target(settings.model)
    if "hook_overhead" in sections:
        logger.info("hook overhead")
        results["hook_overhead"] = bench_hook_overhead(model, settings)
    if "das_step" in sections:
        logger.info("DAS step")
        hf_model = load_hf_twin(settings.model, int(model.cfg.d_vocab))
        results["das_step"] = bench_das_step(model, hf_model, settings, memory=memory_probes)
        del hf_model
    if "hyperdas_step" in sections:
        logger.info("HyperDAS step")
        results["hyperdas_step"] = bench_hyperdas_step(model, settings)
    if "eval_throughput" in sections:
        logger.info("evaluation throughput")
        results["eval_throughput"] = bench_eval_throughput(model, settings)
    if "scaling" in sections:
        logger.info("scaling")
        results["scaling"] = bench_scaling(model, settings)
    if "memory" in sections:
        logger.info("memory")
        results["memory"] = {
            "llama3_8b": llama3_memory(settings),
            "benchmarked_model": memory_check(model, settings),
        }
        if memory_probes:
            results["memory"]["hyperdas_step_probe"] = memory_probe_subprocess("hyperdas", settings)
    results["machine"]["loadavg_end"] = list(os.getloadavg())
    results["machine"]["wall_s"] = time.perf_counter() - start
    return results
