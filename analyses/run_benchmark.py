"""The benchmark of issue 13: every method on the same RAVEL examples, with intervals.

A thin caller of :func:`hyperdas_tl.compare.compare_methods`: data (the cached model-specific
instance, :func:`hyperdas_tl.experiment.build_experiment_data`) -> layer (given, or chosen on
validation) -> controls, probes, per-attribute DAS / MDAS and HyperDAS at that layer, each
trained method once per seed -> ``summary.json``, ``details.json``, ``records.jsonl.gz``,
``summary.md``, ``curves/`` and ``records/`` in ``--out``.

The run is resumable: run the same command again and every (method, seed) already in ``--out``
is skipped. It is also shareable: start the same command N times (one process per core, e.g.
``--threads 1`` each) and the processes share the (method, seed) units out between them
(:mod:`hyperdas_tl.claims`; ``--longest-first`` makes them finish close together);
each ends by writing the complete report. ``--out`` defaults to
``runs/benchmark_<model>_<domain>`` (git-ignored); a folder holding committed files is refused
unless ``--allow-committed`` says so.

    HYPERDAS_TL_CACHE=... python analyses/run_benchmark.py --ravel ../shared/ravel/data.tgz \\
        --domain city --attributes Country Continent --layers 3 6 9 12 --k 18 --seeds 0 1 2
"""

import argparse
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

from hyperdas_tl.choices import GENERATION_BACKENDS
from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.compare import DEFAULT_METHODS, METHODS, CompareSettings, compare_methods
from hyperdas_tl.data_config import BUCKETINGS, DataConfig
from hyperdas_tl.hyperdas.config import HyperDASConfig
from hyperdas_tl.models import KNOWN_MODELS
from hyperdas_tl.precision import PRECISIONS
from hyperdas_tl.run_start import start_run
from hyperdas_tl.stats import BOOTSTRAP_METHODS, BootstrapConfig

REPO = Path(__file__).resolve().parents[1]
logger = logging.getLogger("run_benchmark")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--model", default="smollm2-135m", choices=KNOWN_MODELS)
    data.add_argument("--source", default="ravel", choices=("ravel", "geonames"))
    data.add_argument(
        "--ravel",
        default=os.environ.get("HYPERDAS_TL_RAVEL"),
        help="RAVEL data.tgz or folder (default $HYPERDAS_TL_RAVEL)",
    )
    data.add_argument("--domain", default="city")
    data.add_argument("--attributes", nargs="+", default=["Country", "Continent"])
    data.add_argument("--max-entities", type=int, default=240)
    data.add_argument("--max-templates", type=int, default=6)
    data.add_argument(
        "--train-pairs",
        type=int,
        default=512,
        help="cause + isolate training examples per attribute",
    )
    data.add_argument(
        "--eval-pairs",
        type=int,
        default=128,
        help="cause + isolate examples per attribute in each val/test split",
    )
    data.add_argument("--batch-size", type=int, default=16)
    data.add_argument("--data-seed", type=int, default=0)
    data.add_argument(
        "--bucketing",
        choices=BUCKETINGS,
        default=DataConfig.bucketing,
        help="which splits are batched by token length (less padding): eval (validation and "
        "test; scores do not depend on it), all (training too, which changes what training "
        "learns: each batch then asks about one attribute), none; see DataConfig.bucketing",
    )
    data.add_argument(
        "--instance-attributes",
        nargs="+",
        default=None,
        help="attributes the instance is built for (default: --attributes)",
    )
    data.add_argument(
        "--instance-generation",
        choices=GENERATION_BACKENDS,
        default=DataConfig.instance_generation,
        help="how the instance's prompts are decoded: kv_cached (every committed run) or "
        "prefix_cached (each batch's shared template prefix once: for full-size instances; "
        "another cached instance); see DataConfig.instance_generation",
    )

    where = p.add_argument_group("layer and subspace")
    layer = where.add_mutually_exclusive_group()
    layer.add_argument("--layer", type=int, default=None, help="use this layer")
    layer.add_argument(
        "--layers",
        nargs="+",
        type=int,
        default=None,
        help="choose among these layers on --val-split (default: 3 6 9 12 15)",
    )
    where.add_argument("--k", type=int, default=18, help="rank of DAS, MDAS, random, HyperDAS")
    where.add_argument(
        "--layer-epochs",
        type=int,
        default=3,
        help="epochs of the per-attribute DAS that scores each candidate layer",
    )

    run = p.add_argument_group("methods")
    run.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS)
    run.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    run.add_argument("--val-split", default="val_entity")
    run.add_argument(
        "--eval-splits",
        nargs="+",
        default=None,
        help="splits scored (default: every split but train)",
    )
    run.add_argument(
        "--modes",
        nargs="+",
        default=["teacher_forced"],
        choices=("teacher_forced", "generation"),
        help="judging modes; summary.json reports the first",
    )
    run.add_argument("--max-new-tokens", type=int, default=8)
    run.add_argument("--das-lrs", nargs="+", type=float, default=[1e-3, 3e-3, 1e-2])
    run.add_argument("--das-max-epochs", type=int, default=20)
    run.add_argument("--das-patience", type=int, default=3)
    run.add_argument("--hyperdas-steps", type=int, default=400)
    run.add_argument("--hyperdas-lr", type=float, default=3e-4)
    run.add_argument("--hyperdas-head-lr", type=float, default=1e-3)
    run.add_argument(
        "--hyperdas-batch-size",
        type=int,
        default=None,
        help="re-batch the training examples for HyperDAS (default: --batch-size)",
    )
    run.add_argument(
        "--hyperdas-cause-weight",
        type=float,
        default=None,
        help="loss weight of HyperDAS's cause examples (default: the official 3.5)",
    )
    run.add_argument(
        "--hyperdas-isolate-weight",
        type=float,
        default=None,
        help="loss weight of HyperDAS's isolate examples (default: the official 0.5; MDAS "
        "weighs the two kinds equally)",
    )
    run.add_argument("--null-init-weight", type=float, default=0.5)
    run.add_argument("--n-hypernet-layers", type=int, default=8)
    run.add_argument("--selection-score", choices=("dot", "cosine"), default="dot")
    run.add_argument(
        "--no-cache-states",
        action="store_true",
        help="recompute HyperDAS's frozen target states on every visit (default: cached)",
    )

    stats = p.add_argument_group("intervals")
    stats.add_argument("--n-resamples", type=int, default=2000)
    stats.add_argument("--bootstrap-method", default="percentile", choices=BOOTSTRAP_METHODS)
    stats.add_argument(
        "--plain-bootstrap", action="store_true", help="resample examples, not base entities"
    )

    out = p.add_argument_group("machine and output")
    out.add_argument("--device", default=None, help="default: CUDA when available")
    out.add_argument(
        "--precision",
        default="float32",
        choices=PRECISIONS,
        help="dtype of the frozen target (default float32: in bf16 greedy generation and "
        "teacher forcing can tie differently, which gave the no-intervention control a "
        "non-zero Cause on a smoke run; auto = bf16 where the hardware has it)",
    )
    out.add_argument(
        "--allow-emulated-bf16",
        action="store_true",
        help="run --precision bfloat16 even on a CPU without avx512_bf16 / AMX, where bf16 "
        "matrix products are emulated (a SmolLM2 forward measured 5.8x slower than float32 on an "
        "AVX2-only EPYC)",
    )
    out.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    out.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default runs/benchmark_<model>_<domain>)",
    )
    out.add_argument(
        "--allow-committed",
        action="store_true",
        help="allow --out to be a folder that holds committed files",
    )
    out.add_argument(
        "--longest-first",
        action="store_true",
        help="take the (method, seed) units on longest first (HyperDAS, MDAS, DAS, ...): for "
        "several processes sharing --out, so they finish close together",
    )
    out.add_argument("--progress", action="store_true", help="tqdm bars")
    args = p.parse_args(argv)  # fmt: skip
    if args.layer is None and args.layers is None:
        args.layers = [3, 6, 9, 12, 15]
    if args.out is None:
        args.out = REPO / "runs" / f"benchmark_{args.model}_{args.domain}"
    return args


def committed_files(folder: Path) -> list[str]:
    """Files under ``folder`` that git tracks (empty outside a checkout)."""
    if not folder.exists():
        return []
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--", str(folder)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return []
    return listed.stdout.split()


def compare_settings(args: argparse.Namespace) -> CompareSettings:
    """The comparison's settings from the parsed options (a bad value raises ``ValueError``)."""
    hyperdas = HyperDASConfig.build(
        target_model=args.model,
        n_hypernet_layers=args.n_hypernet_layers,
        n_steps=args.hyperdas_steps,
        lr=args.hyperdas_lr,
        head_lr=args.hyperdas_head_lr,
        null_init_weight=args.null_init_weight,
        selection_score=args.selection_score,
        cache_target_states=not args.no_cache_states,
        **{
            name: value
            for name, value in (
                ("cause_weight", args.hyperdas_cause_weight),
                ("isolate_weight", args.hyperdas_isolate_weight),
            )
            if value is not None
        },
    )
    return CompareSettings(
        val_split=args.val_split,
        eval_splits=None if args.eval_splits is None else tuple(args.eval_splits),
        modes=tuple(args.modes),
        max_new_tokens=args.max_new_tokens,
        das_lrs=tuple(args.das_lrs),
        das_max_epochs=args.das_max_epochs,
        das_patience=args.das_patience,
        layer_epochs=args.layer_epochs,
        hyperdas=hyperdas,
        hyperdas_batch_size=args.hyperdas_batch_size,
        bootstrap=BootstrapConfig(
            n_resamples=args.n_resamples,
            method=args.bootstrap_method,
            cluster=not args.plain_bootstrap,
        ),
        show_progress=args.progress,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    tracked = committed_files(args.out)
    if tracked and not args.allow_committed:
        raise SystemExit(
            f"{args.out} holds committed files ({tracked[0]}, ...); pass --allow-committed to "
            "write there or choose another --out"
        )
    data_config = DataConfig(
        source=args.source,
        domain=args.domain,
        attributes=tuple(args.attributes),
        ravel_path=args.ravel,
        max_entities=args.max_entities,
        max_templates=args.max_templates,
        train_pairs=args.train_pairs,
        eval_pairs=args.eval_pairs,
        batch_size=args.batch_size,
        seed=args.data_seed,
        bucketing=args.bucketing,
        instance_attributes=tuple(args.instance_attributes or args.attributes),
        instance_generation=args.instance_generation,
    )
    settings = compare_settings(args)  # checked here, before the model loads
    start = time.perf_counter()
    started = start_run(
        args.model,
        data_config,
        seed=args.seeds[0],
        threads=args.threads,
        device=args.device,
        precision=args.precision,
        allow_emulated_bf16=args.allow_emulated_bf16,
        argv=None if argv is None else ["analyses/run_benchmark.py", *argv],
    )  # bad input (a refused precision, a data error) raises here, before the model loads
    model, data = started.model, started.data
    command = shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(argv)
    metadata = {
        "command": command,
        "machine": f"{os.cpu_count()} CPUs, {started.threads} torch threads, "
        f"torch {torch.__version__}, cuda {torch.cuda.is_available()}",
        "model": args.model,
        "provenance": started.provenance,
        "examples": data.counts(),
        "seconds": {"model_and_data": started.seconds},
    }
    logger.info("examples per split: %s", data.counts())

    layer = args.layer if args.layer is not None else args.layers
    report = compare_methods(
        model,
        data,
        layer,
        args.k,
        args.methods,
        args.seeds,
        settings=settings,
        out_dir=args.out,
        metadata=metadata,
        longest_first=args.longest_first,
    )
    logger.info("layer %d; done in %.0fs: %s", report.layer, time.perf_counter() - start, args.out)


if __name__ == "__main__":
    raise SystemExit(run_script(main))
