"""Section 4: examples/s of teacher-forced and generation judging under a DAS interchange, and of
HyperDAS's own teacher-forced forward."""

from typing import Any

import torch
from torch import nn

from hyperdas_tl.bench.inputs import make_batch, random_basis, resolved
from hyperdas_tl.bench.settings import BenchSettings
from hyperdas_tl.bench.timing import interleaved, ratio_rows
from hyperdas_tl.hyperdas import HyperDAS
from hyperdas_tl.metrics import entity_subspace_intervention, judge_generation, judge_teacher_forced


def bench_eval_throughput(model: nn.Module, settings: BenchSettings) -> dict[str, Any]:
    """Examples/s of teacher-forced and generation judging under a DAS interchange (the
    :mod:`hyperdas_tl.metrics` paths, source capture included), and of HyperDAS's own
    no-grad teacher-forced forward (one-to-one selection)."""
    config = resolved(model, settings)
    layer, k = int(config.architecture.layer), int(config.architecture.k)
    batch = make_batch(model, settings)
    intervention = entity_subspace_intervention(
        model, layer, random_basis(int(model.cfg.d_model), k, settings.seed)
    )
    hyperdas = HyperDAS(model, config).eval()

    def plain() -> None:
        with torch.no_grad():
            model(batch.base_ids, attention_mask=batch.base_attention_mask)

    def teacher_forced() -> None:
        judge_teacher_forced(model, batch, intervention, settings.n_label)

    def generation() -> None:
        judge_generation(model, batch, intervention, max_new_tokens=settings.gen_tokens)

    def hyperdas_tf() -> None:
        with torch.no_grad():
            hyperdas(batch, "one_to_one")

    timings = interleaved(
        {
            "plain forward (no intervention)": plain,
            "DAS teacher-forced": teacher_forced,
            f"DAS generation ({settings.gen_tokens} new tokens)": generation,
            "HyperDAS teacher-forced (one-to-one)": hyperdas_tf,
        },
        settings.repeats,
    )
    return {
        "shape": list(batch.base_ids.shape),
        "rows": ratio_rows(timings, "plain forward (no intervention)", per_example=len(batch)),
        "timings": {n: t.to_dict() for n, t in timings.items()},
    }
