"""Section 5: DAS and HyperDAS step time vs batch size and vs sequence length."""

from collections.abc import Callable
from typing import Any

from torch import nn

from hyperdas_tl.bench.das_step import DASStep
from hyperdas_tl.bench.hyperdas_step import HyperDASStep
from hyperdas_tl.bench.inputs import make_batch, resolved
from hyperdas_tl.bench.settings import BenchSettings
from hyperdas_tl.bench.timing import interleaved
from hyperdas_tl.hyperdas import HyperDAS


def bench_scaling(model: nn.Module, settings: BenchSettings) -> dict[str, Any]:
    """DAS step (ours) and HyperDAS step time vs batch size (at ``seq``) and vs sequence
    length (at ``batch``); every cell interleaved in one loop."""
    config = resolved(model, settings)
    layer, k = int(config.architecture.layer), int(config.architecture.k)
    hyperdas = HyperDAS(model, config)
    cells = [("batch", b, settings.seq) for b in settings.scaling_batches]
    cells += [("seq", settings.batch, s) for s in settings.scaling_seqs]
    variants: dict[str, Callable[[], Any]] = {}
    for axis, b, s in cells:
        batch = make_batch(model, settings, batch=b, seq=s)
        variants[f"{axis}|{b}|{s}|DAS"] = DASStep("ours", model, batch, layer, k)
        variants[f"{axis}|{b}|{s}|HyperDAS"] = HyperDASStep(hyperdas, batch)
    timings = interleaved(variants, settings.scaling_repeats)
    rows = []
    for axis, b, s in cells:
        das, hd = timings[f"{axis}|{b}|{s}|DAS"], timings[f"{axis}|{b}|{s}|HyperDAS"]
        rows.append(
            {
                "axis": axis,
                "batch": b,
                "seq": s,
                "das_step_median_s": das.median_s,
                "das_step_min_s": das.min_s,
                "hyperdas_step_median_s": hd.median_s,
                "hyperdas_step_min_s": hd.min_s,
                "hyperdas_ms_per_example": 1000 * hd.median_s / b,
            }
        )
    return {"layer": layer, "k": k, "rows": rows}
