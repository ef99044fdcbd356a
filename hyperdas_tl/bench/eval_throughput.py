"""Section 4: examples/s of teacher-forced and generation judging under a DAS interchange, of
HyperDAS's own teacher-forced forward, and of judging HyperDAS's three read-outs one by one
against together (one pair of frozen passes per batch, as the scoring loop does)."""

from typing import Any

import torch
from torch import nn

from hyperdas_tl.bench.inputs import make_batch, random_basis, resolved
from hyperdas_tl.bench.settings import BenchSettings
from hyperdas_tl.bench.timing import interleaved, ratio_rows
from hyperdas_tl.hyperdas import HyperDAS
from hyperdas_tl.hyperdas.config import SELECTION_MODES
from hyperdas_tl.hyperdas.intervention import hyperdas_intervention, hyperdas_read_outs
from hyperdas_tl.metrics import entity_subspace_intervention, judge_generation, judge_teacher_forced

READ_OUTS_ONE_BY_ONE = "HyperDAS 3 read-outs judged one by one (frozen passes each)"
READ_OUTS_TOGETHER = "HyperDAS 3 read-outs judged together (frozen passes shared)"


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

    def read_outs_one_by_one() -> None:
        for mode in SELECTION_MODES:
            judge_teacher_forced(
                model, batch, hyperdas_intervention(hyperdas, mode), settings.n_label
            )

    def read_outs_together() -> None:
        for read_out in hyperdas_read_outs(hyperdas).values():
            judge_teacher_forced(model, batch, read_out, settings.n_label)

    timings = interleaved(
        {
            "plain forward (no intervention)": plain,
            "DAS teacher-forced": teacher_forced,
            f"DAS generation ({settings.gen_tokens} new tokens)": generation,
            "HyperDAS teacher-forced (one-to-one)": hyperdas_tf,
            READ_OUTS_ONE_BY_ONE: read_outs_one_by_one,
            READ_OUTS_TOGETHER: read_outs_together,
        },
        settings.repeats,
    )
    return {
        "shape": list(batch.base_ids.shape),
        "rows": ratio_rows(timings, "plain forward (no intervention)", per_example=len(batch)),
        "timings": {n: t.to_dict() for n, t in timings.items()},
    }
