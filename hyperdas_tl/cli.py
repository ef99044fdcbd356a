"""Command line: ``python -m hyperdas_tl {demo,train,evaluate,quickstart}`` (``hyperdas-tl``).

``demo`` (what ``make demo`` runs) = ``train --profile quick``: SmolLM2-135M + the offline
GeoNames city data, a few minutes on 2 CPU cores; prints Cause / Isolate / Disentangle per
selection read-out and writes results + a checkpoint under ``--out``.
"""

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from hyperdas_tl.models import KNOWN_MODELS, SMOLLM2_NAME

DEFAULT_OUT = Path("runs") / "demo"


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=SMOLLM2_NAME, choices=KNOWN_MODELS)
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")


def run_quickstart(args: argparse.Namespace) -> int:
    from hyperdas_tl.models import load_model
    from hyperdas_tl.quickstart import entity_swap_demo

    model = load_model(args.model, device=args.device)
    result = entity_swap_demo(model, layer=args.layer)
    print(f"base   : {result.base_prompt!r} -> {result.base_prediction!r}")
    print(f"source : {result.source_prompt!r} -> {result.source_prediction!r}")
    print(
        f"full interchange at blocks.{result.layer}.hook_resid_pre (entity token): "
        f"{result.full_patch_prediction!r} (p={result.full_patch_source_prob:.3f} for the "
        "source answer)"
    )
    print(
        f"random {result.random_k}-dim subspace at the same position: "
        f"{result.random_patch_prediction!r}"
    )
    return 0


def profile_from_args(args: argparse.Namespace):
    from hyperdas_tl.hyperdas.run import PROFILES

    profile = PROFILES[args.profile]
    data_overrides = {
        "source": args.source,
        "domain": args.domain,
        "attributes": tuple(args.attributes) if args.attributes else None,
        "ravel_path": args.ravel,
        "batch_size": args.batch_size,
        "max_entities": args.max_entities,
        "train_pairs": args.train_pairs,
        "eval_pairs": args.eval_pairs,
    }
    model_overrides = {
        "layer": args.layer,
        "k": args.k,
        "n_hypernet_layers": args.n_hypernet_layers,
        "n_steps": args.steps,
        "lr": args.lr,
        "head_lr": args.head_lr,
        "null_init_weight": args.null_init_weight,
        "cache_target_states": True if args.cache_states else None,
        "seed": args.seed,
    }
    data = replace(profile.data, **{k: v for k, v in data_overrides.items() if v is not None})
    hyper = replace(profile.hyperdas, **{k: v for k, v in model_overrides.items() if v is not None})
    return replace(profile, data=data, hyperdas=hyper)


def print_results(results, out_dir: Path | None) -> None:
    from hyperdas_tl.metrics import results_to_markdown

    print(results_to_markdown(results))
    if out_dir is not None:
        print(f"\nresults: {out_dir / 'results.json'}  checkpoint: {out_dir / 'checkpoint'}")


def run_train(args: argparse.Namespace) -> int:
    from hyperdas_tl.hyperdas.run import train_and_evaluate

    run = train_and_evaluate(
        profile_from_args(args),
        model_name=args.model,
        out_dir=args.out,
        device=args.device,
        resume=args.resume,
    )
    print(f"trained {run.train.steps} steps; seconds: {run.seconds}")
    print_results(run.results, run.out_dir)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from hyperdas_tl.hyperdas.run import evaluate_checkpoint

    run = evaluate_checkpoint(args.checkpoint, out_dir=args.out, device=args.device)
    print_results(run.results, None)
    return 0


def add_train_args(parser: argparse.ArgumentParser) -> None:
    from hyperdas_tl.hyperdas.run import PROFILES

    add_model_args(parser)
    parser.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results + checkpoint dir")
    parser.add_argument("--resume", action="store_true", help="continue a killed run in --out")
    parser.add_argument("--source", choices=("geonames", "ravel"), default=None)
    parser.add_argument("--domain", default=None, help="RAVEL entity type (default city)")
    parser.add_argument("--attributes", nargs="+", default=None)
    parser.add_argument("--ravel", default=None, help="RAVEL data.tgz or folder")
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--k", type=int, default=None, help="subspace rank")
    parser.add_argument("--n-hypernet-layers", type=int, default=None, help="N")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument(
        "--head-lr", type=float, default=None, help="lr of the selection / Householder heads"
    )
    parser.add_argument(
        "--null-init-weight", type=float, default=None, help="starting 'keep base' weight"
    )
    parser.add_argument(
        "--cache-states", action="store_true", help="keep frozen target states across epochs"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-entities", type=int, default=None)
    parser.add_argument("--train-pairs", type=int, default=None)
    parser.add_argument("--eval-pairs", type=int, default=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hyperdas_tl", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="INFO logging")
    commands = parser.add_subparsers(dest="command", required=True)

    quick = commands.add_parser("quickstart", help="load the model and apply one interchange")
    add_model_args(quick)
    quick.add_argument("--layer", type=int, default=4)
    quick.set_defaults(func=run_quickstart)

    for name, help_text in [
        ("train", "train HyperDAS, evaluate every read-out, save results + checkpoint"),
        ("demo", "the main job: train --profile quick on the offline data"),
    ]:
        sub = commands.add_parser(name, help=help_text)
        add_train_args(sub)
        sub.set_defaults(func=run_train)

    ev = commands.add_parser("evaluate", help="score a saved checkpoint again")
    ev.add_argument("checkpoint", type=Path)
    ev.add_argument("--out", type=Path, default=None)
    ev.add_argument("--device", default=None)
    ev.set_defaults(func=run_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
