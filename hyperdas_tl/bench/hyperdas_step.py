"""Section 3: a HyperDAS training step split into its phases, vs a plain forward+backward of the
target; and the intervened pass started at layer L
(:func:`~hyperdas_tl.partial_forward.run_from_layer`) vs TransformerLens's ``start_at_layer`` vs a
full forward with the hook."""

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hyperdas_tl.bench.inputs import make_batch, resolved
from hyperdas_tl.bench.settings import BenchSettings
from hyperdas_tl.bench.timing import interleaved, ratio_rows
from hyperdas_tl.data.batching import IGNORE_INDEX, InterventionBatch
from hyperdas_tl.hooks import soft_interchange_hook_for
from hyperdas_tl.hyperdas import HyperDAS
from hyperdas_tl.hyperdas.train import build_optimizer
from hyperdas_tl.partial_forward import run_from_layer


class HyperDASStep:
    """One HyperDAS training step, timed phase by phase.

    The phases are :meth:`HyperDAS.forward`'s public steps (``target_states`` ->
    ``intervention_weights`` -> ``intervene`` -> ``loss``), then backward, gradient clipping and
    AdamW as :func:`~hyperdas_tl.hyperdas.train_hyperdas` runs them.
    """

    def __init__(self, hyperdas: HyperDAS, batch: InterventionBatch) -> None:
        self.hyperdas, self.batch = hyperdas, batch
        self.optimizer = build_optimizer(hyperdas, hyperdas.config.training)
        hyperdas.train()

    def forward_loss(self, clock: Callable[[str], None] | None = None) -> Tensor:
        """:meth:`HyperDAS.forward`'s public steps (without its input checks), with a clock
        tick after each phase."""
        hd, b = self.hyperdas, self.batch
        tick = clock or (lambda phase: None)
        states = hd.target_states(b)
        tick("frozen passes (base + source)")
        weights = hd.intervention_weights(b, states)
        tick("hypernetwork + selection + subspace")
        loss = hd.loss(b, hd.intervene(b, states, weights), weights).total
        tick("intervened suffix (L..n) + loss")
        return loss

    def __call__(self) -> dict[str, float]:
        phases: dict[str, float] = {}
        last = [time.perf_counter()]

        def tick(phase: str) -> None:
            now = time.perf_counter()
            phases[phase] = now - last[0]
            last[0] = now

        loss = self.forward_loss(tick)
        loss.backward()
        tick("backward")
        grad_clip = self.hyperdas.config.training.grad_clip
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.hyperdas.trainable_parameters(), grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        tick("optimizer (clip + AdamW)")
        return phases


@contextlib.contextmanager
def target_trainable(model: nn.Module) -> Iterator[None]:
    """Let the target's parameters require grad for the block (restored afterwards)."""
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(True)
        yield
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
            p.grad = None


def plain_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy on the label positions."""
    judged = labels != IGNORE_INDEX
    return F.cross_entropy(logits[judged].float(), labels[judged])


def bench_hyperdas_step(model: nn.Module, settings: BenchSettings) -> dict[str, Any]:
    """HyperDAS step breakdown vs plain forward+backward; start-at-L vs full intervened pass."""
    config = resolved(model, settings)
    batch = make_batch(model, settings)
    hyperdas = HyperDAS(model, config)
    step = HyperDASStep(hyperdas, batch)
    ids, mask, labels = batch.base_ids, batch.base_attention_mask, batch.labels

    def plain_weight_grads() -> None:
        with target_trainable(model):
            plain_loss(model(ids, attention_mask=mask), labels).backward()

    def plain_input_grads() -> None:
        embedded = model.embed(ids).detach().requires_grad_(True)
        plain_loss(run_from_layer(model, embedded, 0, mask), labels).backward()

    timings = interleaved(
        {
            "HyperDAS step": step,
            "plain fwd+bwd (weight grads)": plain_weight_grads,
            "plain fwd+bwd (input grads only)": plain_input_grads,
        },
        settings.repeats,
    )
    rows = ratio_rows(timings, "plain fwd+bwd (weight grads)")
    weight_ref, input_ref = (
        timings["plain fwd+bwd (weight grads)"],
        timings["plain fwd+bwd (input grads only)"],
    )
    hd_timing = timings["HyperDAS step"]
    phases = [
        {"phase": name, "min_s": min(v), "median_s": statistics.median(v)}
        for name, v in hd_timing.phases_s.items()
    ]
    total_median = sum(p["median_s"] for p in phases)
    for p in phases:
        p["share_of_step"] = p["median_s"] / total_median

    return {
        "layer": int(config.architecture.layer),
        "k": int(config.architecture.k),
        "n_hypernet_layers": int(config.architecture.n_hypernet_layers),
        "shape": list(ids.shape),
        "concept_len": settings.concept_len,
        "trainable_params": sum(p.numel() for p in hyperdas.trainable_parameters()),
        "rows": rows,
        "phases": phases,
        "step_vs_plain_weight_grads_min": hd_timing.min_s / weight_ref.min_s,
        "step_vs_plain_weight_grads_median": hd_timing.median_s / weight_ref.median_s,
        "step_vs_plain_input_grads_min": hd_timing.min_s / input_ref.min_s,
        "step_vs_plain_input_grads_median": hd_timing.median_s / input_ref.median_s,
        "goal": "HyperDAS step <= 2.5x a plain forward+backward of the target",
        "timings": {n: t.to_dict() for n, t in timings.items()},
        "start_at_layer": bench_start_at_layer(hyperdas, batch, settings.repeats),
    }


def bench_start_at_layer(hyperdas: HyperDAS, batch: InterventionBatch, repeats: int) -> dict:
    """Forward+backward of the intervened pass from layer L three ways (same hook, same
    selection, gradient into the basis)."""
    model, layer = hyperdas.target, hyperdas.layer
    ids, mask = batch.base_ids, batch.base_attention_mask
    with torch.no_grad():
        states = hyperdas.target_states(batch)
        weights = hyperdas.intervention_weights(batch, states)
    base_l, source_l = states.base.at(layer), states.source.at(layer)
    selection = weights.soft_selection.detach()
    basis = weights.basis.detach().clone().requires_grad_(True)
    weights = replace(weights, selection=selection, basis=basis)

    def hooks() -> list:
        return [soft_interchange_hook_for(model, layer, source_l, selection, basis)]

    def ours() -> Tensor:  # what HyperDAS.forward runs
        return hyperdas.intervene(batch, states, weights)

    def tl_start() -> Tensor:
        return model.run_with_hooks(
            base_l, start_at_layer=layer, fwd_hooks=hooks(), attention_mask=mask
        )

    def full() -> Tensor:
        return model.run_with_hooks(ids, fwd_hooks=hooks(), attention_mask=mask)

    def fwd_bwd(fn: Callable[[], Tensor]) -> Callable[[], None]:
        def run() -> None:
            plain_loss(fn(), batch.labels).backward()
            basis.grad = None

        return run

    with torch.no_grad():
        reference = ours()
        agreement = {
            "TL start_at_layer": float((tl_start() - reference).abs().max()),
            "full forward + hook": float((full() - reference).abs().max()),
        }
    timings = interleaved(
        {
            "run_from_layer (blocks L..n)": fwd_bwd(ours),
            "TL start_at_layer": fwd_bwd(tl_start),
            "full forward + hook": fwd_bwd(full),
        },
        repeats,
    )
    rows = ratio_rows(timings, "run_from_layer (blocks L..n)")
    for row in rows:
        row["speedup_of_run_from_layer_min"] = row["ratio_min"]
        row["speedup_of_run_from_layer_median"] = row["ratio_median"]
    return {
        "rows": rows,
        "max_abs_logit_diff_vs_run_from_layer": agreement,
        "timings": {n: t.to_dict() for n, t in timings.items()},
    }
