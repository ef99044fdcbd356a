"""Section 1: plain forward vs an identity ``hook_resid_pre`` hook vs our soft interchange hook
(no grad)."""

from typing import Any

import torch
from torch import Tensor, nn

from hyperdas_tl.bench.inputs import make_batch, random_basis, resolved
from hyperdas_tl.bench.settings import BenchSettings
from hyperdas_tl.bench.timing import interleaved, ratio_rows
from hyperdas_tl.hooks import capture_resid_pre, resid_pre_name, soft_interchange_hook_for
from hyperdas_tl.interchange import one_hot_selection


def _identity_hook(resid: Tensor, *, hook: object) -> Tensor:
    return resid


def bench_hook_overhead(model: nn.Module, settings: BenchSettings) -> dict[str, Any]:
    """Plain forward vs identity ``hook_resid_pre`` hook vs our soft interchange hook."""
    config = resolved(model, settings)
    layer, k = int(config.architecture.layer), int(config.architecture.k)
    batch = make_batch(model, settings)
    ids, mask = batch.base_ids, batch.base_attention_mask
    name = resid_pre_name(model, layer)
    source = capture_resid_pre(model, batch.source_ids, [layer], batch.source_attention_mask)[layer]
    width = ids.shape[1]
    selection = one_hot_selection(
        batch.source_entity_last, batch.base_entity_last, src_pos=width, base_pos=width
    )
    basis = random_basis(int(model.cfg.d_model), k, settings.seed)
    interchange = soft_interchange_hook_for(model, layer, source, selection, basis)

    @torch.no_grad()
    def plain() -> None:
        model(ids, attention_mask=mask)

    @torch.no_grad()
    def identity() -> None:
        model.run_with_hooks(ids, fwd_hooks=[(name, _identity_hook)], attention_mask=mask)

    @torch.no_grad()
    def ours() -> None:
        model.run_with_hooks(ids, fwd_hooks=[interchange], attention_mask=mask)

    timings = interleaved(
        {"plain forward": plain, "identity hook": identity, "soft interchange hook": ours},
        settings.hook_repeats,
    )
    rows = ratio_rows(timings, "plain forward")
    return {
        "layer": layer,
        "k": k,
        "shape": list(ids.shape),
        "rows": rows,
        "identity_overhead_min": rows[1]["ratio_min"] - 1,
        "identity_overhead_median": rows[1]["ratio_median"] - 1,
        "interchange_overhead_min": rows[2]["ratio_min"] - 1,
        "interchange_overhead_median": rows[2]["ratio_median"] - 1,
        "goal": "identity hook overhead <= 3%",
        "timings": {n: t.to_dict() for n, t in timings.items()},
    }
