"""Does training in bf16 give the same result as float32? One DAS and one HyperDAS run per dtype.

The frozen target is loaded once in float32 and once in bfloat16; the examples are built once
(by the float32 target, so both runs see the same labels) and both runs train with the same
seed and settings through :func:`hyperdas_tl.compare.compare_methods`. Their per-example
verdicts on the validation split are then paired: ``"<method> [bfloat16] - <method>
[float32]"`` gets a paired 95 % bootstrap interval (cluster by base entity) for Cause, Isolate
and Disentangle. Equivalent within the interval means the interval holds 0.

    python analyses/compare_precision_runs.py --threads 2 \\
        --out analyses/results/precision_runs_smollm2
"""

import argparse
import dataclasses
import logging
import time
from pathlib import Path

import torch

from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.compare import (
    CompareSettings,
    build_report,
    compare_methods,
    scored_names,
    write_report,
)
from hyperdas_tl.demo import demo_data_config
from hyperdas_tl.experiment import build_experiment_data
from hyperdas_tl.hyperdas.config import HyperDASConfig
from hyperdas_tl.models import load_model
from hyperdas_tl.provenance import make_reproducible, run_provenance

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m"
METHODS = ("DAS", "HyperDAS")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
logger = logging.getLogger("compare_precision_runs")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--layer", type=int, default=6)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--das-lr", type=float, default=1e-2)
    p.add_argument("--das-epochs", type=int, default=4)
    p.add_argument("--hyperdas-steps", type=int, default=100)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "precision_runs")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    threads = make_reproducible(args.seed, args.threads)
    settings = CompareSettings(
        eval_splits=("val_entity",),
        das_lrs=(args.das_lr,),
        das_max_epochs=args.das_epochs,
        das_patience=args.das_epochs,
        hyperdas=HyperDASConfig.build(
            n_hypernet_layers=2, n_steps=args.hyperdas_steps, lr=3e-4, head_lr=1e-3,
            null_init_weight=0.5, eval_every=args.hyperdas_steps,
        ),
    )  # fmt: skip
    data = None
    records, seconds = [], {}
    for name, dtype in DTYPES.items():
        model = load_model(MODEL, device="cpu", dtype=dtype)
        if data is None:  # the float32 target labels the examples both runs use
            data = build_experiment_data(model, demo_data_config(), model_name=MODEL)
        start = time.perf_counter()
        report = compare_methods(
            model, data, args.layer, args.k, METHODS, (args.seed,), settings=settings,
            out_dir=args.out / name,
        )  # fmt: skip
        seconds[name] = time.perf_counter() - start
        records += [dataclasses.replace(r, method=f"{r.method} [{name}]") for r in report.records]
        del model
    scored = [m for method in METHODS for m in scored_names(method)]
    names = [f"{m} [{d}]" for m in scored for d in DTYPES]
    pairs = tuple((f"{m} [bfloat16]", f"{m} [float32]") for m in scored)
    paired = build_report(
        records,
        domain="city",
        layer=args.layer,
        k=args.k,
        methods=names,
        seeds=(args.seed,),
        splits=("val_entity",),
        settings=dataclasses.replace(settings, differences=pairs),
        metadata={
            "seconds": seconds,
            "provenance": run_provenance(seed=args.seed, threads=threads),
            "examples": data.counts() if data is not None else {},
        },
    )
    write_report(paired, args.out)
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    raise SystemExit(run_script(main))
