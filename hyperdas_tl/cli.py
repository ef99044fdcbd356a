"""Command line: ``python -m hyperdas_tl {demo,quickstart} ...`` (script ``hyperdas-tl``)."""

import argparse
import logging
import sys
from collections.abc import Sequence

from hyperdas_tl.models import KNOWN_MODELS, SMOLLM2_NAME


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hyperdas_tl", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="INFO logging")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [
        ("quickstart", "load the default model and apply one interchange"),
        ("demo", "the main job (currently: the quick start)"),
    ]:
        sub = commands.add_parser(name, help=help_text)
        add_model_args(sub)
        sub.add_argument("--layer", type=int, default=4)
        sub.set_defaults(func=run_quickstart)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    return args.func(args)
