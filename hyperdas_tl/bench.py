"""Speed and memory benchmarks of hyperdas_tl on SmolLM2-135M (CPU), as ratios from one run.

::

    python -m hyperdas_tl.bench                      # default sizes, ~10 min on 1 CPU thread
    python -m hyperdas_tl.bench --repeats 2 --no-memory --no-scaling --out /tmp/quick.json

Every comparison is measured in one process with interleaved repetitions (A, B, C, A, B, C,
...), after one warm-up call of each, so machine load that drifts during the run hits every
variant alike; tables give the min and median over repetitions and the ratios of mins and of
medians. The machine (CPU count, torch version and threads, load average at start and end) is
recorded with the results. Sections:

1. ``hook_overhead``: plain forward vs an identity ``hook_resid_pre`` hook vs our soft
   interchange hook (no grad).
2. ``das_step``: one DAS training step (forward, backward, Adam) at the same layer, k, batch and
   positions: ours (TransformerLens bridge + our hook, as :func:`hyperdas_tl.baselines.das.
   train_das` runs it), ours starting at layer L, ours re-running the source each step, and
   pyvene 0.1.8's ``LowRankRotatedSpaceIntervention`` on the plain HF model. Peak memory of each
   comes from a fresh subprocess per variant (see :func:`memory_probe`).
3. ``hyperdas_step``: a HyperDAS training step split into its phases, vs a plain
   forward+backward of the target; and the intervened pass started at layer L
   (:func:`~hyperdas_tl.partial_forward.run_from_layer`) vs TransformerLens's ``start_at_layer``
   vs a full forward with the hook.
4. ``eval_throughput``: examples/s of teacher-forced and generation judging under a DAS
   interchange, and of HyperDAS's own teacher-forced forward.
5. ``scaling``: DAS and HyperDAS step time vs batch size and vs sequence length.
6. ``memory``: :func:`hyperdas_tl.memory.estimate_training_memory` for Llama-3-8B, and the same
   estimate for SmolLM2 next to what a step really saves for backward.

Threads default to 1: on a shared 2-core machine, two OpenMP threads competing with other jobs
ran a SmolLM2 forward about 8x slower than one thread.
"""

import argparse
import contextlib
import gc
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hyperdas_tl.baselines.das import DASIntervention, label_loss
from hyperdas_tl.data.batching import IGNORE_INDEX, InterventionBatch
from hyperdas_tl.hooks import capture_resid_pre, resid_pre_name, soft_interchange_hook_for
from hyperdas_tl.hyperdas import HyperDAS, HyperDASConfig
from hyperdas_tl.hyperdas.loss import hyperdas_loss
from hyperdas_tl.hyperdas.train import build_optimizer
from hyperdas_tl.interchange import one_hot_selection
from hyperdas_tl.memory import estimate_training_memory
from hyperdas_tl.metrics import (
    entity_source_vectors,
    entity_subspace_intervention,
    judge_generation,
    judge_teacher_forced,
)
from hyperdas_tl.models import (
    SMOLLM2_NAME,
    TINY_LLAMA_NAME,
    build_tiny_llama_hf,
    llama3_8b_hf_config,
    load_model,
    load_smollm2_hf,
    tiny_llama_config,
)
from hyperdas_tl.partial_forward import run_from_layer

logger = logging.getLogger(__name__)

DEFAULT_OUT = Path("analyses/results/bench_smollm2.json")
MEMORY_VARIANTS = ("das_ours", "das_ours_from_layer", "das_pyvene", "hyperdas")
DAS_LR = 1e-3


# --------------------------------------------------------------------------- settings, timing


@dataclass
class BenchSettings:
    """Sizes and repetitions of one benchmark run."""

    model: str = SMOLLM2_NAME
    """Target model (``load_model`` name)."""
    batch: int = 8
    """Examples per batch."""
    seq: int = 32
    """Base and source positions (prompt + label tokens)."""
    concept_len: int = 8
    """Concept tokens (HyperDAS)."""
    n_label: int = 3
    """Label tokens at the end of each base row."""
    layer: int | None = None
    """Intervention layer (None: ``n_layers // 2``, HyperDAS's default)."""
    k: int | None = None
    """Subspace rank (None: HyperDAS's ``default_k``; 18 for SmolLM2)."""
    n_hypernet_layers: int = 8
    """HyperDAS hypernetwork blocks."""
    repeats: int = 5
    """Timed repetitions per variant (after one warm-up)."""
    hook_repeats: int = 10
    """Repetitions of the hook-overhead section (cheap no-grad forwards, a 3 % goal)."""
    gen_tokens: int = 3
    """New tokens in the generation-mode throughput."""
    scaling_batches: tuple[int, ...] = (4, 8, 16)
    """Batch sizes of the scaling table (at ``seq``)."""
    scaling_seqs: tuple[int, ...] = (16, 32, 64)
    """Sequence lengths of the scaling table (at ``batch``)."""
    scaling_repeats: int = 3
    """Repetitions per cell of the scaling table."""
    memory_steps: int = 2
    """Training steps measured per memory probe (after one warm-up step)."""
    threads: int = 1
    """``torch.set_num_threads``."""
    seed: int = 0
    """Seed of the synthetic batches and of the HyperDAS / DAS initialisation."""

    def __post_init__(self) -> None:
        if self.seq < self.n_label + 2:
            raise ValueError(f"seq={self.seq} must leave a prompt before {self.n_label} labels")
        for name in (
            "batch",
            "repeats",
            "hook_repeats",
            "scaling_repeats",
            "memory_steps",
            "threads",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Timing:
    """Wall times of one variant over the interleaved repetitions."""

    times_s: list[float]
    phases_s: dict[str, list[float]] = field(default_factory=dict)
    """Per-phase times of each repetition, for variants that report phases."""

    @property
    def min_s(self) -> float:
        return min(self.times_s)

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "min_s": self.min_s,
            "median_s": self.median_s,
            "times_s": self.times_s,
        }
        if self.phases_s:
            out["phases"] = {
                name: {"min_s": min(v), "median_s": statistics.median(v)}
                for name, v in self.phases_s.items()
            }
        return out


def interleaved(
    variants: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, Timing]:
    """Time every variant ``repeats`` times in turn (A, B, C, A, B, C, ...), after ``warmup``
    untimed rounds. A variant may return ``{phase: seconds}`` to report a breakdown."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    timings = {name: Timing(times_s=[]) for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            gc.collect()
            start = time.perf_counter()
            result = fn()
            timings[name].times_s.append(time.perf_counter() - start)
            phases = result if isinstance(result, dict) else {}
            for phase, seconds in phases.items():
                timings[name].phases_s.setdefault(phase, []).append(seconds)
    return timings


def ratio_rows(
    timings: dict[str, Timing], reference: str, per_example: int | None = None
) -> list[dict[str, Any]]:
    """One table row per variant: min, median and both ratios to ``reference``."""
    ref = timings[reference]
    rows = []
    for name, timing in timings.items():
        row = {
            "variant": name,
            "min_s": timing.min_s,
            "median_s": timing.median_s,
            "ratio_min": timing.min_s / ref.min_s,
            "ratio_median": timing.median_s / ref.median_s,
        }
        if per_example is not None:
            row["examples_per_s"] = per_example / timing.median_s
        rows.append(row)
    return rows


def machine_info(settings: BenchSettings) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "requested_threads": settings.threads,
        "loadavg_start": list(os.getloadavg()),
    }


# --------------------------------------------------------------------------- inputs


def synthetic_batch(
    batch: int,
    seq: int,
    *,
    concept_len: int = 8,
    n_label: int = 3,
    vocab: int = 20000,
    seed: int = 0,
) -> InterventionBatch:
    """An unpadded batch of random tokens: base rows end with ``n_label`` label tokens, the
    entity sits two tokens before the label (base) / at the same place (source), examples
    alternate cause / isolate. Token ids come from ``[100, vocab)``."""
    g = torch.Generator().manual_seed(seed)
    base_ids = torch.randint(100, vocab, (batch, seq), generator=g)
    source_ids = torch.randint(100, vocab, (batch, seq), generator=g)
    concept_ids = torch.randint(100, vocab, (batch, concept_len), generator=g)
    prompt = seq - n_label
    labels = torch.full((batch, seq), IGNORE_INDEX)
    labels[:, prompt - 1 : seq - 1] = base_ids[:, prompt:]
    base_intervenable = torch.zeros(batch, seq, dtype=torch.bool)
    base_intervenable[:, :prompt] = True
    entity = torch.full((batch,), prompt - 2)
    ones = torch.ones(batch, seq, dtype=torch.long)
    return InterventionBatch(
        base_ids=base_ids,
        base_attention_mask=ones,
        base_intervenable=base_intervenable,
        base_entity_last=entity,
        source_ids=source_ids,
        source_attention_mask=ones.clone(),
        source_intervenable=torch.ones(batch, seq, dtype=torch.bool),
        source_entity_last=entity.clone(),
        labels=labels,
        is_cause=torch.arange(batch) % 2 == 0,
        concept_ids=concept_ids,
        concept_attention_mask=torch.ones(batch, concept_len, dtype=torch.long),
    )


def load_target(name: str) -> nn.Module:
    """The benchmarked bridge, on CPU."""
    if name == TINY_LLAMA_NAME:
        return load_model(name, device="cpu", tiny_config=tiny_llama_config())
    return load_model(name, device="cpu")


def load_hf_twin(name: str, vocab: int) -> nn.Module:
    """The same weights as a plain HF model (pyvene's input)."""
    if name == SMOLLM2_NAME:
        return load_smollm2_hf()[0]
    if name == TINY_LLAMA_NAME:
        return build_tiny_llama_hf(tiny_llama_config(), vocab)
    raise ValueError(f"no HF twin for {name!r}")


def resolved(model: nn.Module, settings: BenchSettings) -> HyperDASConfig:
    """The HyperDAS config of the run (fixes the default layer and k for every section)."""
    return HyperDASConfig(
        target_model=settings.model,
        layer=settings.layer,
        k=settings.k,
        n_hypernet_layers=settings.n_hypernet_layers,
        seed=settings.seed,
    ).resolved_for(int(model.cfg.n_layers), int(model.cfg.d_model))


def vocab_limit(model: nn.Module) -> int:
    return min(20000, int(model.cfg.d_vocab))


def make_batch(model: nn.Module, settings: BenchSettings, **overrides: int) -> InterventionBatch:
    sizes = {"batch": settings.batch, "seq": settings.seq} | overrides
    return synthetic_batch(
        sizes["batch"],
        sizes["seq"],
        concept_len=settings.concept_len,
        n_label=settings.n_label,
        vocab=vocab_limit(model),
        seed=settings.seed,
    )


def random_basis(d_model: int, k: int, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(d_model, k, generator=g)).Q


# --------------------------------------------------------------------------- 1. hook overhead


def _identity_hook(resid: Tensor, *, hook: object) -> Tensor:
    return resid


def bench_hook_overhead(model: nn.Module, settings: BenchSettings) -> dict[str, Any]:
    """Plain forward vs identity ``hook_resid_pre`` hook vs our soft interchange hook."""
    config = resolved(model, settings)
    layer, k = int(config.layer), int(config.k)
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


# --------------------------------------------------------------------------- 2. DAS step


class DASStep:
    """One DAS training step on a batch, in one of four ways (see :data:`DAS_VARIANTS`)."""

    def __init__(
        self,
        variant: str,
        model: nn.Module,
        batch: InterventionBatch,
        layer: int,
        k: int,
        *,
        hf_model: nn.Module | None = None,
        n_label: int = 3,
        seed: int = 0,
    ) -> None:
        if variant not in DAS_VARIANTS:
            raise ValueError(f"variant must be one of {DAS_VARIANTS}, got {variant!r}")
        self.variant, self.model, self.batch = variant, model, batch
        self.layer, self.n_label = layer, n_label
        self.width = batch.base_ids.shape[1]
        if variant == "pyvene":
            if hf_model is None:
                raise ValueError("the pyvene variant needs the plain HF model")
            self._setup_pyvene(hf_model, layer, k)
            return
        self.module = DASIntervention(int(model.cfg.d_model), layer, k, seed=seed)
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=DAS_LR)
        # As train_das does: the frozen source activations are captured once per batch.
        self.sources = entity_source_vectors(model, batch, layer)
        if variant == "ours from layer L":
            self.base_resid = capture_resid_pre(
                model, batch.base_ids, [layer], batch.base_attention_mask
            )[layer]

    def _setup_pyvene(self, hf_model: nn.Module, layer: int, k: int) -> None:
        import pyvene as pv

        config = pv.IntervenableConfig(
            model_type=type(hf_model),
            representations=[
                pv.RepresentationConfig(layer, "block_input", "pos", 1, low_rank_dimension=k)
            ],
            intervention_types=pv.LowRankRotatedSpaceIntervention,
        )
        self.intervenable = pv.IntervenableModel(config, hf_model)
        self.intervenable.disable_model_gradients()
        self.optimizer = torch.optim.Adam(self.intervenable.get_trainable_parameters(), lr=DAS_LR)
        b = self.batch
        self.locations = {
            "sources->base": (
                [[[p] for p in b.source_entity_last.tolist()]],
                [[[p] for p in b.base_entity_last.tolist()]],
            )
        }

    def logits(self) -> Tensor:
        b, model = self.batch, self.model
        if self.variant == "pyvene":
            _, counterfactual = self.intervenable(
                {"input_ids": b.base_ids, "attention_mask": b.base_attention_mask},
                [{"input_ids": b.source_ids, "attention_mask": b.source_attention_mask}],
                self.locations,
            )
            return counterfactual.logits
        sources = self.sources
        if self.variant == "ours, source re-run each step":
            sources = entity_source_vectors(model, b, self.layer)
        hooks = self.module.hooks(model, b, self.width, sources)
        if self.variant == "ours from layer L":
            with model.hooks(fwd_hooks=hooks):
                return run_from_layer(model, self.base_resid, self.layer, b.base_attention_mask)
        return model.run_with_hooks(
            b.base_ids, fwd_hooks=hooks, attention_mask=b.base_attention_mask
        )

    def __call__(self) -> float:
        loss = label_loss(self.logits(), self.batch.labels, self.n_label)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


DAS_VARIANTS = ("ours", "ours from layer L", "ours, source re-run each step", "pyvene")


def bench_das_step(
    model: nn.Module,
    hf_model: nn.Module,
    settings: BenchSettings,
    *,
    memory: bool = True,
) -> dict[str, Any]:
    """DAS training step: ours (three ways) vs pyvene, time and (optionally) peak memory."""
    config = resolved(model, settings)
    layer, k = int(config.layer), int(config.k)
    batch = make_batch(model, settings)
    steps = {
        v: DASStep(v, model, batch, layer, k, hf_model=hf_model, n_label=settings.n_label)
        for v in DAS_VARIANTS
    }
    # Same basis everywhere (ours share the seed), so every variant computes the same loss.
    with torch.no_grad():
        basis = steps["ours"].module.basis.detach().clone()
        _pyvene_intervention(steps["pyvene"].intervenable).rotate_layer.weight = basis
        first_losses = {
            v: float(label_loss(s.logits(), batch.labels, settings.n_label))
            for v, s in steps.items()
        }
    timings = interleaved({v: steps[v] for v in DAS_VARIANTS}, settings.repeats)
    rows = ratio_rows(timings, "pyvene")
    for row in rows:  # speed-up over pyvene = its time / ours
        row["speedup_vs_pyvene_min"] = 1 / row["ratio_min"]
        row["speedup_vs_pyvene_median"] = 1 / row["ratio_median"]
    out: dict[str, Any] = {
        "layer": layer,
        "k": k,
        "shape": list(batch.base_ids.shape),
        "rows": rows,
        "first_step_loss": first_losses,
        "goal": "ours >= 2x faster than pyvene",
        "timings": {n: t.to_dict() for n, t in timings.items()},
    }
    if memory:
        out["memory"] = {
            v: memory_probe_subprocess(v, settings)
            for v in ("das_ours", "das_ours_from_layer", "das_pyvene")
        }
    return out


def _pyvene_intervention(intervenable: Any) -> Any:
    (intervention,) = intervenable.interventions.values()
    return intervention[0] if isinstance(intervention, tuple | list) else intervention


# --------------------------------------------------------------------------- 3. HyperDAS step


class HyperDASStep:
    """One HyperDAS training step, timed phase by phase.

    The phases call the same pieces, in the same order, as :meth:`HyperDAS.forward` and
    :func:`~hyperdas_tl.hyperdas.train_hyperdas` (tests check the loss equals the module's).
    """

    def __init__(self, hyperdas: HyperDAS, batch: InterventionBatch) -> None:
        self.hyperdas, self.batch = hyperdas, batch
        self.optimizer = build_optimizer(hyperdas, hyperdas.config)
        hyperdas.train()

    def forward_loss(self, clock: Callable[[str], None] | None = None) -> Tensor:
        hd, b = self.hyperdas, self.batch
        tick = clock or (lambda phase: None)
        states = hd.target_states(b)
        tick("frozen passes (base + source)")
        layer = hd.layer
        base_l, source_l = states.base.at(layer), states.source.at(layer)
        weights = hd.intervention_weights(b, states)
        soft, selection, basis = weights.soft_selection, weights.selection, weights.basis
        tick("hypernetwork + selection + subspace")
        hook = soft_interchange_hook_for(hd.target, layer, source_l, selection, basis)
        with hd.target.hooks(fwd_hooks=[hook]):
            logits = run_from_layer(hd.target, base_l, layer, b.base_attention_mask)
        loss = hyperdas_loss(
            logits,
            b.labels,
            b.is_cause,
            soft,
            cause_weight=hd.config.cause_weight,
            isolate_weight=hd.config.isolate_weight,
            sparsity_weight=0.0,
        ).total
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
        grad_clip = self.hyperdas.config.grad_clip
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
        "layer": int(config.layer),
        "k": int(config.k),
        "n_hypernet_layers": int(config.n_hypernet_layers),
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
        out = hyperdas(batch, "soft", states=states)
    base_l, source_l = states.base.at(layer), states.source.at(layer)
    selection = out.soft_selection.detach()
    basis = out.basis.detach().clone().requires_grad_(True)

    def hooks() -> list:
        return [soft_interchange_hook_for(model, layer, source_l, selection, basis)]

    def ours() -> Tensor:
        with model.hooks(fwd_hooks=hooks()):
            return run_from_layer(model, base_l, layer, mask)

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


# --------------------------------------------------------------------------- 4. evaluation


def bench_eval_throughput(model: nn.Module, settings: BenchSettings) -> dict[str, Any]:
    """Examples/s of teacher-forced and generation judging under a DAS interchange (the
    :mod:`hyperdas_tl.metrics` paths, source capture included), and of HyperDAS's own
    no-grad teacher-forced forward (one-to-one selection)."""
    config = resolved(model, settings)
    layer, k = int(config.layer), int(config.k)
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


# --------------------------------------------------------------------------- 5. scaling


def bench_scaling(model: nn.Module, settings: BenchSettings) -> dict[str, Any]:
    """DAS step (ours) and HyperDAS step time vs batch size (at ``seq``) and vs sequence
    length (at ``batch``); every cell interleaved in one loop."""
    config = resolved(model, settings)
    layer, k = int(config.layer), int(config.k)
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


# --------------------------------------------------------------------------- 6. memory


def llama3_memory(settings: BenchSettings) -> dict[str, Any]:
    """Llama-3-8B on paper: bf16 target, float32 HyperDAS (N blocks), AdamW, two batches."""
    out = {}
    for batch in (8, 32):
        estimate = estimate_training_memory(
            llama3_8b_hf_config(),
            n_hypernet_layers=8,
            batch=batch,
            seq=64,
            concept_len=settings.concept_len,
            model_name="Meta-Llama-3-8B",
        )
        out[f"batch_{batch}"] = estimate.to_dict() | {"markdown": estimate.to_markdown()}
    return out


class SavedTensorBytes:
    """Bytes of distinct storages saved for backward (parameters and buffers excluded)."""

    def __init__(self, exclude: set[int]) -> None:
        self.exclude = exclude
        self.storages: dict[int, int] = {}

    def pack(self, tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.exclude:
            self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    @property
    def total(self) -> int:
        return sum(self.storages.values())


def memory_check(model: nn.Module, settings: BenchSettings) -> dict[str, Any]:
    """The estimate for the benchmarked model's own config next to what one HyperDAS step
    really holds: exact parameter counts, and the tensors saved for backward (by
    ``saved_tensors_hooks``; the frozen states are counted once as "prefix states")."""
    config = resolved(model, settings)
    hyperdas = HyperDAS(model, config)
    batch = make_batch(model, settings)
    dtype = next(model.parameters()).dtype
    estimate = estimate_training_memory(
        model.original_model.config,
        n_hypernet_layers=int(config.n_hypernet_layers),
        k=int(config.k),
        layer=int(config.layer),
        batch=settings.batch,
        seq=settings.seq,
        concept_len=settings.concept_len,
        n_label_tokens=settings.n_label,
        target_dtype=dtype,
        train_dtype=dtype,
        model_name=settings.model,
    )
    exclude = {t.untyped_storage().data_ptr() for t in model.parameters()}
    exclude |= {t.untyped_storage().data_ptr() for t in hyperdas.parameters()}
    exclude |= {t.untyped_storage().data_ptr() for t in hyperdas.buffers()}
    states = hyperdas.target_states(batch)
    exclude |= {states.base.resid_pre.untyped_storage().data_ptr()}
    exclude |= {states.source.resid_pre.untyped_storage().data_ptr()}
    prefix = sum(
        t.untyped_storage().nbytes()
        for t in (states.base.resid_pre, states.base.final)
        + (states.source.resid_pre, states.source.final)
    )
    layer = hyperdas.layer
    hyper = SavedTensorBytes(exclude)
    with torch.autograd.graph.saved_tensors_hooks(hyper.pack, lambda t: t):
        weights = hyperdas.intervention_weights(batch, states)
        soft, basis = weights.soft_selection, weights.basis
    suffix = SavedTensorBytes(exclude | set(hyper.storages))
    with torch.autograd.graph.saved_tensors_hooks(suffix.pack, lambda t: t):
        hook = soft_interchange_hook_for(model, layer, states.source.at(layer), soft, basis)
        with model.hooks(fwd_hooks=[hook]):
            logits = run_from_layer(model, states.base.at(layer), layer, batch.base_attention_mask)
        hyperdas_loss(
            logits,
            batch.labels,
            batch.is_cause,
            soft,
            cause_weight=1.0,
            isolate_weight=1.0,
            sparsity_weight=0.0,
        )
    # logits and their gradient are counted by the estimate but are not "saved" tensors.
    measured_suffix = suffix.total + 2 * logits.numel() * logits.element_size()
    hf_params = sum(p.numel() for p in model.original_model.parameters())
    return {
        "estimate": estimate.to_dict(),
        "measured": {
            "target_params": hf_params,
            "hyperdas_trainable_params": sum(
                p.numel() for p in hyperdas.parameters() if p.requires_grad
            ),
            "prefix_states_bytes": prefix,
            "hypernetwork_activations_bytes": hyper.total,
            "suffix_activations_bytes": measured_suffix,
        },
    }


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
            int(config.layer),
            int(config.k),
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


def memory_probe_subprocess(variant: str, settings: BenchSettings) -> dict[str, Any]:
    """:func:`memory_probe` in a fresh Python process (one per variant, so allocator caches
    and one variant's peak never leak into another's)."""
    env = dict(os.environ)
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"  # tensors >= 64 KiB are mmapped, freed to the OS
    env["OMP_NUM_THREADS"] = str(settings.threads)
    command = [sys.executable, "-m", "hyperdas_tl.bench", "--memory-probe", variant]
    command += ["--settings-json", json.dumps(settings.to_dict())]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"memory probe {variant} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- run + report


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


def _f(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def to_markdown(results: dict[str, Any]) -> str:
    """The results as markdown tables (what ``main`` prints and saves beside the JSON)."""
    m, s = results["machine"], results["settings"]
    lines = [
        f"# hyperdas_tl benchmarks: {s['model']}, CPU",
        "",
        f"Machine: {m['processor']}, {m['cpu_count']} CPUs, torch {m['torch']} with "
        f"{m['torch_threads']} thread(s), Python {m['python']}. Load average (1/5/15 min) "
        f"at start {', '.join(_f(x, 2) for x in m['loadavg_start'])}"
        + (
            f", at end {', '.join(_f(x, 2) for x in m['loadavg_end'])}"
            if "loadavg_end" in m
            else ""
        )
        + (f"; run took {m['wall_s']:.0f} s." if "wall_s" in m else "."),
        f"Batch {s['batch']} x {s['seq']} positions (base and source), concept "
        f"{s['concept_len']} tokens, {s['repeats']} interleaved repetitions after one warm-up "
        f"({s['hook_repeats']} for the hook overhead, {s['scaling_repeats']} per scaling cell); "
        "ratios are of mins and of medians.",
        "",
    ]

    def ratio_table(rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> list[str]:
        labels = {
            "speedup_vs_pyvene_min": "speed-up vs pyvene (min)",
            "speedup_vs_pyvene_median": "speed-up vs pyvene (median)",
            "examples_per_s": "examples/s (median)",
        }
        headers = ["variant", "min s", "median s", "ratio (min)", "ratio (median)"]
        headers += [labels.get(key, key) for key in extra]
        body = []
        for r in rows:
            cells = [r["variant"], _f(r["min_s"]), _f(r["median_s"])]
            cells += [_f(r["ratio_min"]), _f(r["ratio_median"])]
            for key in extra:
                cells.append(_f(r[key], 1) if key == "examples_per_s" else _f(r[key], 2))
            body.append(cells)
        return _table(headers, body)

    if "hook_overhead" in results:
        h = results["hook_overhead"]
        lines += [
            f"## 1. Hook overhead (no grad, layer {h['layer']}, k {h['k']}, shape {h['shape']})",
            "",
            *ratio_table(h["rows"]),
            f"Identity hook overhead: {100 * h['identity_overhead_min']:+.1f} % (min), "
            f"{100 * h['identity_overhead_median']:+.1f} % (median); goal <= 3 %.",
            "",
        ]
    if "das_step" in results:
        d = results["das_step"]
        lines += [
            f"## 2. DAS training step (layer {d['layer']}, k {d['k']}, shape {d['shape']}; "
            "ratio = time / pyvene's)",
            "",
            *ratio_table(d["rows"], ("speedup_vs_pyvene_min", "speedup_vs_pyvene_median")),
        ]
        if "memory" in d:
            lines += [
                "Peak memory of a step above the settled process (fresh process per variant):",
                "",
                *_table(
                    ["variant", "peak step delta MB", "RSS before steps MB"],
                    [
                        [v, _f(p["peak_step_delta_mb"], 1), _f(p["rss_before_steps_mb"], 1)]
                        for v, p in d["memory"].items()
                    ],
                ),
            ]
    if "hyperdas_step" in results:
        h = results["hyperdas_step"]
        lines += [
            f"## 3. HyperDAS training step (layer {h['layer']}, k {h['k']}, N "
            f"{h['n_hypernet_layers']}, shape {h['shape']}, "
            f"{h['trainable_params'] / 1e6:.1f} M trainable parameters)",
            "",
            *ratio_table(h["rows"]),
            f"HyperDAS step / plain fwd+bwd: {_f(h['step_vs_plain_weight_grads_min'], 2)}x "
            f"(min), {_f(h['step_vs_plain_weight_grads_median'], 2)}x (median) against weight "
            f"grads; {_f(h['step_vs_plain_input_grads_min'], 2)}x / "
            f"{_f(h['step_vs_plain_input_grads_median'], 2)}x against input grads only. "
            "Goal <= 2.5x.",
            "",
            *_table(
                ["phase", "min s", "median s", "share of step (median)"],
                [
                    [
                        p["phase"],
                        _f(p["min_s"]),
                        _f(p["median_s"]),
                        f"{100 * p['share_of_step']:.0f} %",
                    ]
                    for p in h["phases"]
                ],
            ),
            "Intervened pass (forward + backward into the basis), ratio = time / run_from_layer:",
            "",
            *ratio_table(h["start_at_layer"]["rows"]),
        ]
    if "eval_throughput" in results:
        e = results["eval_throughput"]
        lines += [
            f"## 4. Evaluation throughput (shape {e['shape']})",
            "",
            *ratio_table(e["rows"], ("examples_per_s",)),
        ]
    if "scaling" in results:
        c = results["scaling"]
        lines += [
            f"## 5. Scaling (layer {c['layer']}, k {c['k']}; median s per training step)",
            "",
            *_table(
                ["varied", "batch", "seq", "DAS step s", "HyperDAS step s", "HyperDAS ms/example"],
                [
                    [
                        r["axis"],
                        str(r["batch"]),
                        str(r["seq"]),
                        _f(r["das_step_median_s"]),
                        _f(r["hyperdas_step_median_s"]),
                        _f(r["hyperdas_ms_per_example"], 0),
                    ]
                    for r in c["rows"]
                ],
            ),
        ]
    if "memory" in results:
        mem = results["memory"]
        lines += ["## 6. Memory", ""]
        for estimate in mem["llama3_8b"].values():
            lines += [estimate["markdown"], ""]
        check = mem["benchmarked_model"]
        est, meas = check["estimate"], check["measured"]
        lines += [
            f"Estimate vs measured on {s['model']} (batch {s['batch']}, seq {s['seq']}, float32):",
            "",
            *_table(
                ["quantity", "estimate", "measured"],
                [
                    [
                        "target params",
                        str(est["params"]["target"]),
                        str(meas["target_params"]),
                    ],
                    [
                        "HyperDAS trainable params",
                        str(est["params"]["trainable"]),
                        str(meas["hyperdas_trainable_params"]),
                    ],
                    *[
                        [
                            f"{label} MB",
                            _f(est["bytes"][label] / 1e6, 1),
                            _f(meas[key] / 1e6, 1),
                        ]
                        for label, key in (
                            ("frozen prefix states", "prefix_states_bytes"),
                            ("hypernetwork activations", "hypernetwork_activations_bytes"),
                            ("intervened suffix activations", "suffix_activations_bytes"),
                        )
                    ],
                ],
            ),
        ]
        if "hyperdas_step_probe" in mem:
            probe = mem["hyperdas_step_probe"]
            parts = est["bytes"]
            step_bytes = parts["activations (subtotal)"] + parts["gradients"]
            lines += [
                f"Peak RSS of a real {s['model']} HyperDAS step above the settled process "
                f"(weights and AdamW state already allocated by a warm-up step): "
                f"{_f(probe['peak_step_delta_mb'], 1)} MB. The estimate's activations + "
                f"gradients: {_f(step_bytes / 1e6, 1)} MB, an upper bound: it counts them all "
                "alive at once, while backward frees the suffix activations before most "
                "gradients (the hypernetwork's) exist.",
                "",
            ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hyperdas_tl.bench", description=__doc__.split("\n")[0]
    )
    defaults = BenchSettings()
    parser.add_argument("--model", default=defaults.model)
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--seq", type=int, default=defaults.seq)
    parser.add_argument("--concept-len", type=int, default=defaults.concept_len)
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--k", type=int, default=None)
    parser.add_argument("--n-hypernet-layers", type=int, default=defaults.n_hypernet_layers)
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument("--hook-repeats", type=int, default=defaults.hook_repeats)
    parser.add_argument("--scaling-repeats", type=int, default=defaults.scaling_repeats)
    parser.add_argument(
        "--scaling-batches", type=int, nargs="+", default=list(defaults.scaling_batches)
    )
    parser.add_argument("--scaling-seqs", type=int, nargs="+", default=list(defaults.scaling_seqs))
    parser.add_argument("--gen-tokens", type=int, default=defaults.gen_tokens)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument(
        "--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS, help="what to run"
    )
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling table")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON path (.md beside)")
    parser.add_argument("--memory-probe", choices=MEMORY_VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--settings-json", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_probe:
        settings = BenchSettings(**json.loads(args.settings_json))
        settings.scaling_batches = tuple(settings.scaling_batches)
        settings.scaling_seqs = tuple(settings.scaling_seqs)
        print(json.dumps(memory_probe(args.memory_probe, settings)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = BenchSettings(
        model=args.model,
        batch=args.batch,
        seq=args.seq,
        concept_len=args.concept_len,
        layer=args.layer,
        k=args.k,
        n_hypernet_layers=args.n_hypernet_layers,
        repeats=args.repeats,
        hook_repeats=args.hook_repeats,
        scaling_repeats=args.scaling_repeats,
        scaling_batches=tuple(args.scaling_batches),
        scaling_seqs=tuple(args.scaling_seqs),
        gen_tokens=args.gen_tokens,
        threads=args.threads,
    )
    sections = tuple(s for s in args.sections if not (args.no_scaling and s == "scaling"))
    results = run_benchmarks(settings, sections, memory_probes=not args.no_memory)
    markdown = to_markdown(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown + "\n")
    print(markdown)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
