"""CPU speed of the new defaults (bf16 frozen target, KV-cached generation judging, state cache)
against the float32 / uncached paths they replace, and the equivalence of the two precisions.

Every timing section is one interleaved run (A, B, A, B, ...; ``hyperdas_tl.bench.interleaved``)
so each ratio compares repetitions that shared the machine's load. Writes
``<out>/bench_precision_smollm2.{json,md}``.

    python analyses/bench_precision.py --threads 1 --out analyses/results
"""

import argparse
import json
import logging
import time
from functools import partial
from pathlib import Path

import torch

from hyperdas_tl.bench import (
    BenchSettings,
    DASStep,
    interleaved,
    load_hf_twin,
    machine_info,
    make_batch,
    random_basis,
    ratio_rows,
    resolved,
)
from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.experiment import DataConfig, build_experiment_data
from hyperdas_tl.generation import greedy_generate, kv_cached_greedy_generate
from hyperdas_tl.hyperdas import HyperDAS
from hyperdas_tl.hyperdas.train import build_optimizer, train_hyperdas
from hyperdas_tl.metrics import entity_subspace_intervention, judge_teacher_forced, prompt_lengths
from hyperdas_tl.models import load_model
from hyperdas_tl.provenance import make_reproducible, run_provenance

logger = logging.getLogger("bench_precision")
NAME = "bench_precision_smollm2"
SECTIONS = (
    "matmul", "forward", "logit_equivalence", "hyperdas_step", "das_step", "eval_throughput",
    "cache_epoch",
)  # fmt: skip
DATA_SECTIONS = frozenset({"logit_equivalence", "eval_throughput", "cache_epoch"})
"""The sections that need the offline-city instance (built only when one of them runs)."""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=32)
    p.add_argument("--gen-tokens", type=int, default=5)
    p.add_argument("--epoch-batches", type=int, default=12, help="batches in the cache epoch")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--out", type=Path, default=Path("runs/bench"))
    return p.parse_args()


class HyperDASTrainStep:
    """One training step through the public path (``HyperDAS.forward`` + backward + gradient
    clipping + AdamW, as :func:`~hyperdas_tl.hyperdas.train.train_hyperdas` takes it).

    ``logits_at``: ``"labels"`` is what training unembeds today, ``"all"`` what it did before.
    ``cached_states``: the frozen base / source states computed once and reused, as the state
    cache does on every epoch after the first (False: recomputed every step)."""

    def __init__(self, hyperdas: HyperDAS, batch, *, logits_at: str, cached_states: bool) -> None:
        self.hyperdas, self.batch, self.logits_at = hyperdas, batch, logits_at
        self.optimizer = build_optimizer(hyperdas, hyperdas.config.training)
        self.states = hyperdas.target_states(batch) if cached_states else None
        hyperdas.train()

    def __call__(self) -> float:
        output = self.hyperdas(self.batch, "soft", states=self.states, logits_at=self.logits_at)
        loss = output.loss.total
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.hyperdas.config.training.grad_clip
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(self.hyperdas.trainable_parameters(), clip)
        self.optimizer.step()
        return float(loss.detach())


BEFORE = "fp32 target, states recomputed, logits at every position (before)"
BF16 = "bf16 target, states recomputed, label logits (epoch 1 of a run)"
NEW_DEFAULT = "bf16 target, state cache, label logits (new default, epochs 2+)"


def hyperdas_step(m32, m16, settings: BenchSettings) -> dict:
    config = resolved(m32, settings)
    batch = make_batch(m32, settings)
    steps = {
        BEFORE: HyperDASTrainStep(HyperDAS(m32, config), batch, logits_at="all",
                                  cached_states=False),
        BF16: HyperDASTrainStep(HyperDAS(m16, config), batch, logits_at="labels",
                                cached_states=False),
        NEW_DEFAULT: HyperDASTrainStep(HyperDAS(m16, config), batch, logits_at="labels",
                                       cached_states=True),
    }  # fmt: skip
    first = {name: step() for name, step in steps.items()}
    timings = interleaved(steps, settings.repeats)
    return {
        "layer": config.architecture.layer,
        "k": config.architecture.k,
        "n_hypernet_layers": config.architecture.n_hypernet_layers,
        "shape": list(batch.base_ids.shape),
        "first_step_loss": first,
        "rows": ratio_rows(timings, BEFORE),
        "goal": "new default >= 2x faster",
    }


def das_step(m32, m16, settings: BenchSettings) -> dict:
    config = resolved(m32, settings)
    layer, k = int(config.architecture.layer), int(config.architecture.k)
    batch = make_batch(m32, settings)
    hf = load_hf_twin(settings.model, int(m32.cfg.d_vocab))
    steps = {
        "pyvene 0.1.8 (fp32)": DASStep("pyvene", m32, batch, layer, k, hf_model=hf),
        "ours fp32 (before)": DASStep("ours from layer L", m32, batch, layer, k),
        "ours bf16 (new default)": DASStep("ours from layer L", m16, batch, layer, k),
    }
    timings = interleaved(steps, settings.repeats)
    rows = ratio_rows(timings, "pyvene 0.1.8 (fp32)")
    for row in rows:
        row["speedup_vs_pyvene_median"] = 1 / row["ratio_median"]
    return {"layer": layer, "k": k, "shape": list(batch.base_ids.shape), "rows": rows,
            "goal": "new default >= 4x faster than pyvene"}  # fmt: skip


def eval_throughput(m32, m16, batches, settings: BenchSettings) -> dict:
    """Examples/s of judging real test batches under a DAS-style interchange."""
    architecture = resolved(m32, settings).architecture
    layer, k = int(architecture.layer), int(architecture.k)
    basis = random_basis(int(m32.cfg.d_model), k, settings.seed)
    n = sum(len(b) for b in batches)

    def tf(model):
        intervention = entity_subspace_intervention(model, layer, basis)
        return lambda: [judge_teacher_forced(model, b, intervention) for b in batches]

    def gen(model, decode):
        intervention = entity_subspace_intervention(model, layer, basis)

        def run():
            for b in batches:
                lengths = prompt_lengths(b)
                width = int(lengths.max())
                mask = (torch.arange(width)[None] < lengths[:, None]).long()
                hooks = intervention(b, width + settings.gen_tokens)
                decode(model, b.base_ids[:, :width], mask, settings.gen_tokens, fwd_hooks=hooks)

        return run

    out = {}
    timings = interleaved(
        {"fp32 (before)": tf(m32), "bf16 (new default)": tf(m16)}, settings.repeats
    )
    out["teacher_forced"] = ratio_rows(timings, "fp32 (before)", per_example=n)
    timings = interleaved(
        {
            "fp32, uncached (before)": gen(m32, greedy_generate),
            "fp32, KV-cached": gen(m32, kv_cached_greedy_generate),
            "bf16, KV-cached (new default)": gen(m16, kv_cached_greedy_generate),
        },
        settings.repeats,
    )
    out["generation"] = ratio_rows(timings, "fp32, uncached (before)", per_example=n)
    out["n_examples"] = n
    out["gen_tokens"] = settings.gen_tokens
    return out


def cache_epoch(m16, train_batches, settings: BenchSettings) -> dict:
    """Seconds per epoch of HyperDAS training (bf16 target) with and without the state cache,
    over ``len(train_batches)`` batches; epoch 1 fills the cache, epoch 2 reuses it."""
    config = resolved(m16, settings)
    n = len(train_batches)
    out = {"batches": n, "examples": sum(len(b) for b in train_batches)}
    for cached in (False, True):
        cfg = config.with_fields(n_steps=2 * n, cache_target_states=cached, eval_every=10**6)
        hyperdas = HyperDAS(m16, cfg)
        stamps = [time.perf_counter()]

        def stamp(step, loss, stamps=stamps) -> None:
            stamps.append(time.perf_counter())

        result = train_hyperdas(hyperdas, train_batches, show_progress=False, on_step=stamp)
        epoch1, epoch2 = stamps[n] - stamps[0], stamps[2 * n] - stamps[n]
        out["with cache" if cached else "without cache"] = {
            "epoch1_s": epoch1,
            "epoch2_s": epoch2,
            "cache_mb": result.state_cache_bytes / 2**20,
        }
    out["epoch2_speedup"] = out["without cache"]["epoch2_s"] / out["with cache"]["epoch2_s"]
    return out


def matmul(settings: BenchSettings) -> dict:
    """One MLP projection of the benchmark batch (``batch * seq`` x 576 @ 576 x 1536) in fp32
    and in bf16: the ceiling bf16 sets on this CPU (AMX: several x; AVX-512 bf16 alone: ~2x)."""
    rows, d_model, d_mlp = settings.batch * settings.seq, 576, 1536
    generator = torch.Generator().manual_seed(settings.seed)
    x = torch.randn(rows, d_model, generator=generator)
    w = torch.randn(d_mlp, d_model, generator=generator)
    xb, wb = x.bfloat16(), w.bfloat16()
    products = {
        "fp32": lambda: torch.nn.functional.linear(x, w),
        "bf16": lambda: torch.nn.functional.linear(xb, wb),
    }
    timings = interleaved(products, 10 * settings.repeats)
    return {"shape": [rows, d_model, d_mlp], "rows": ratio_rows(timings, "fp32")}


def forward(m32, m16, settings: BenchSettings) -> dict:
    """A no-grad forward of the SmolLM2 target on the benchmark batch, fp32 vs bf16 weights."""
    batch = make_batch(m32, settings)

    @torch.no_grad()
    def run(model) -> None:
        model(batch.base_ids, attention_mask=batch.base_attention_mask)

    timings = interleaved({"fp32": partial(run, m32), "bf16": partial(run, m16)}, settings.repeats)
    return {"shape": list(batch.base_ids.shape), "rows": ratio_rows(timings, "fp32")}


def logit_equivalence(m32, m16, batches) -> dict:
    """bf16 vs fp32 log-probs on real prompts (label positions and everywhere)."""
    worst_label, worst_any, agree, total, label_agree, n_label = 0.0, 0.0, 0, 0, 0, 0
    with torch.no_grad():
        for b in batches:
            a = m32(b.base_ids, attention_mask=b.base_attention_mask).float().log_softmax(-1)
            c = m16(b.base_ids, attention_mask=b.base_attention_mask).float().log_softmax(-1)
            mask = b.base_attention_mask.bool()
            top = a.argmax(-1)
            top_delta = (a.gather(-1, top[..., None]) - c.gather(-1, top[..., None])).abs()
            worst_any = max(worst_any, float(top_delta[mask].max()))
            agree += int((top == c.argmax(-1))[mask].sum())
            total += int(mask.sum())
            labelled = b.labels != -100
            labels = b.labels.clamp(min=0)
            delta = (a.gather(-1, labels[..., None]) - c.gather(-1, labels[..., None])).abs()
            worst_label = max(worst_label, float(delta[labelled].max()))
            label_agree += int((a.argmax(-1) == c.argmax(-1))[labelled].sum())
            n_label += int(labelled.sum())
    return {
        "positions": total,
        "label_positions": n_label,
        "max_abs_dlogprob_label_token": worst_label,
        "max_abs_dlogprob_fp32_top1": worst_any,
        "argmax_agreement_all_positions": agree / total,
        "argmax_agreement_label_positions": label_agree / n_label,
    }


def to_markdown(results: dict) -> str:
    lines = [f"# CPU precision / caching benchmark ({results['machine'].get('cpu', '')})", ""]
    lines.append(f"threads {results['threads']}; {results['command']}")
    lines.append("")
    for section in ("matmul", "forward", "hyperdas_step", "das_step"):
        if section not in results:
            continue
        lines += [f"## {section}", "", "| variant | min s | median s | ratio (median) |",
                  "|---|---|---|---|"]  # fmt: skip
        for row in results[section]["rows"]:
            lines.append(f"| {row['variant']} | {row['min_s']:.4g} | {row['median_s']:.4g} | "
                         f"{row['ratio_median']:.2f} |")  # fmt: skip
        lines.append("")
    ev = results.get("eval_throughput", {})
    for mode in ("teacher_forced", "generation") if ev else ():
        lines += [f"## evaluation throughput, {mode} ({ev['n_examples']} examples)", ""]
        lines += ["| variant | median s | examples/s | ratio (median) |", "|---|---|---|---|"]
        for row in ev[mode]:
            lines.append(f"| {row['variant']} | {row['median_s']:.2f} | "
                         f"{row['examples_per_s']:.1f} | {row['ratio_median']:.2f} |")  # fmt: skip
        lines.append("")
    ce = results.get("cache_epoch")
    if ce is not None:
        lines += ["## state cache (bf16 target)", "",
                  f"{ce['batches']} batches / {ce['examples']} examples per epoch", "",
                  "| | epoch 1 s | epoch 2 s | cache MB |", "|---|---|---|---|"]  # fmt: skip
        for name in ("without cache", "with cache"):
            row = ce[name]
            lines.append(f"| {name} | {row['epoch1_s']:.1f} | {row['epoch2_s']:.1f} | "
                         f"{row['cache_mb']:.1f} |")  # fmt: skip
        lines += ["", f"epoch-2 speed-up: {ce['epoch2_speedup']:.2f}x", ""]
    eq = results.get("logit_equivalence")
    if eq is not None:
        lines += ["## bf16 vs fp32 logits (real prompts)", ""]
        lines += [f"- {key}: {value:.4g}" if isinstance(value, float) else f"- {key}: {value}"
                  for key, value in eq.items()]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    threads = make_reproducible(0, args.threads)
    settings = BenchSettings(batch=args.batch, seq=args.seq, repeats=args.repeats,
                             threads=threads, gen_tokens=args.gen_tokens)  # fmt: skip
    m32 = load_model("smollm2-135m", device="cpu")
    m16 = load_model("smollm2-135m", device="cpu", dtype=torch.bfloat16)
    data = None
    if DATA_SECTIONS.intersection(args.sections):
        data = build_experiment_data(
            m32, DataConfig(batch_size=args.batch), model_name="smollm2-135m"
        )
    results = {
        "command": " ".join(
            ["python", "analyses/bench_precision.py"]
            + [
                f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in vars(args).items()
            ]
        ),  # fmt: skip
        "threads": threads,
        "machine": machine_info(settings),
        "settings": settings.to_dict(),
        "provenance": run_provenance(seed=0, threads=threads),
    }
    start = time.perf_counter()
    run = {
        "matmul": lambda: matmul(settings),
        "forward": lambda: forward(m32, m16, settings),
        "logit_equivalence": lambda: logit_equivalence(m32, m16, data.batches["test_entity"]),
        "hyperdas_step": lambda: hyperdas_step(m32, m16, settings),
        "das_step": lambda: das_step(m32, m16, settings),
        "eval_throughput": lambda: eval_throughput(
            m32, m16, data.batches["test_entity"][:4], settings
        ),
        "cache_epoch": lambda: cache_epoch(
            m16, data.batches["train"][: args.epoch_batches], settings
        ),
    }
    for section in args.sections:
        results[section] = run[section]()
        logger.info("%s: %s", section, results[section].get("rows", results[section]))
    results["seconds"] = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{NAME}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{NAME}.md").write_text(to_markdown(results))
    logger.info("wrote %s", args.out / f"{NAME}.md")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
