"""Command line: ``python -m hyperdas_tl {demo,train,evaluate,quickstart}`` (``hyperdas-tl``).

``demo`` (what ``make demo`` runs, :mod:`hyperdas_tl.demo`): SmolLM2-135M + the offline
GeoNames city data; HyperDAS (three read-outs) beside a no-op and per-attribute DAS on the same
test examples, every score with a 95 % interval, the constant answer's Cause beside them and
the demo's verdicts; writes ``summary.json`` / ``demo.md`` / per-example records under ``--out``.
``train`` trains and scores HyperDAS alone at a named profile and saves a checkpoint.

Fail before the work, recover after a crash:

- ``--help``, bad options and bad values answer at once: this module imports nothing heavy (no
  torch, transformers or TransformerLens) until a command runs, and the option values are
  checked by the parser; ``--out`` is created, proven writable and not full, and locked (a
  second run on the same ``--out`` refuses, naming the other run's PID) before the model loads.
- Before the model loads as well: the profile's configs, an existing checkpoint in ``--out``
  (refused without ``--resume``, checked for compatibility with it), the data archive
  (readable, checksum verified when known), the attribute names.
- Any failure ends with one line, ``error: ...``, naming the file or option, and exit status 2
  (``--debug`` prints the traceback too). Results are written after each test split, so a late
  failure keeps what was scored. ``--checkpoint-every N`` writes crash-safe checkpoints that
  ``--resume`` continues to the same result as an uninterrupted run.
"""

import argparse
from pathlib import Path
from typing import NoReturn

from hyperdas_tl.cli.checks import (
    attribute_name,
    check_demo_args,
    check_train_args,
    non_negative_float,
    non_negative_int,
    open_unit_float,
    positive_float,
    positive_int,
)
from hyperdas_tl.cli.commands import (
    run_demo_command,
    run_evaluate,
    run_quickstart,
    run_reproduce,
    run_train,
)

DEMO_OUT = Path("runs") / "demo"
TRAIN_OUT = Path("runs") / "train"
SMOLLM2_NAME = "smollm2-135m"
MODEL_CHOICES = (
    SMOLLM2_NAME,
    "tiny-llama",
    "meta-llama/Meta-Llama-3-8B",
    "meta-llama/Meta-Llama-3-8B-Instruct",
)
"""= :data:`hyperdas_tl.models.KNOWN_MODELS` (spelled out so ``--help`` needs no torch; a test
checks they agree)."""
PROFILE_CHOICES = ("full", "quick", "small")
"""= ``sorted(hyperdas_tl.hyperdas.run.PROFILES)`` (idem)."""
RAVEL_DOMAIN_CHOICES = ("city", "nobel_prize_winner", "occupation", "physical_object", "verb")
"""= :data:`hyperdas_tl.data.ravel.RAVEL_DOMAINS` (idem)."""
PRECISION_CHOICES = ("auto", "float32", "bfloat16")
"""= :data:`hyperdas_tl.precision.PRECISIONS` (idem)."""
EXIT_ERROR = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: <message> (see <prog> --help)``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"error: {message} (see {self.prog} --help)\n")


def add_common_args(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """``-v`` and ``--debug``, accepted before or after the command name."""
    default = False if top_level else argparse.SUPPRESS
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="INFO logging"
    )
    parser.add_argument(
        "--debug", action="store_true", default=default, help="print tracebacks of errors"
    )


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=SMOLLM2_NAME, choices=MODEL_CHOICES)
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")


def add_train_args(parser: argparse.ArgumentParser) -> None:
    add_model_args(parser)
    parser.add_argument("--profile", default="quick", choices=PROFILE_CHOICES)
    parser.add_argument("--out", type=Path, default=TRAIN_OUT, help="results + checkpoint dir")
    parser.add_argument("--resume", action="store_true", help="continue a killed run in --out")
    parser.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=None,
        metavar="N",
        help="also save a (crash-safe) checkpoint every N steps, for --resume",
    )
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="torch threads (recorded in results)"
    )
    parser.add_argument("--source", choices=("geonames", "ravel"), default=None)
    parser.add_argument(
        "--domain", default=None, choices=RAVEL_DOMAIN_CHOICES, help="RAVEL entity type (city)"
    )
    parser.add_argument("--attributes", nargs="+", type=attribute_name, default=None)
    parser.add_argument("--ravel", default=None, help="RAVEL data.tgz or folder")
    parser.add_argument("--layer", type=non_negative_int, default=None)
    parser.add_argument("--k", type=positive_int, default=None, help="subspace rank")
    parser.add_argument("--n-hypernet-layers", type=positive_int, default=None, help="N")
    parser.add_argument("--steps", type=positive_int, default=None)
    parser.add_argument("--batch-size", type=positive_int, default=None)
    parser.add_argument("--lr", type=positive_float, default=None)
    parser.add_argument(
        "--head-lr",
        type=positive_float,
        default=None,
        help="lr of the selection / Householder heads",
    )
    parser.add_argument(
        "--null-init-weight", type=open_unit_float, default=None, help="starting 'keep base' weight"
    )
    parser.add_argument(
        "--no-cache-states",
        dest="cache_states",
        action="store_false",
        help="recompute the frozen target states on every visit (the cache is on by default)",
    )
    parser.add_argument(
        "--eval-modes",
        nargs="+",
        choices=("teacher_forced", "generation"),
        default=None,
        help="how the test splits are judged (default: both)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default=None,
        help="dtype of the frozen target (default auto: bfloat16 where the hardware has it)",
    )
    parser.add_argument("--seed", type=non_negative_int, default=None)
    parser.add_argument("--max-entities", type=positive_int, default=None)
    parser.add_argument("--train-pairs", type=positive_int, default=None)
    parser.add_argument("--eval-pairs", type=positive_int, default=None)


def add_demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=SMOLLM2_NAME, choices=MODEL_CHOICES)
    parser.add_argument("--device", default=None, help="default: CUDA when available")
    parser.add_argument("--out", type=Path, default=DEMO_OUT, help="results folder")
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="torch threads (recorded in results)"
    )
    parser.add_argument(
        "--seeds", nargs="+", type=non_negative_int, default=None, help="default: 0"
    )
    parser.add_argument("--steps", type=positive_int, default=None, help="HyperDAS steps")
    parser.add_argument("--layer", type=non_negative_int, default=None)
    parser.add_argument("--k", type=positive_int, default=None, help="subspace rank")
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help="dtype of the frozen target (default auto: bfloat16 where the hardware has it)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep the finished methods in --out, run the rest"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="hyperdas_tl", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_common_args(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", required=True)

    quick = commands.add_parser("quickstart", help="load the model and apply one interchange")
    add_common_args(quick, top_level=False)
    add_model_args(quick)
    quick.add_argument("--layer", type=non_negative_int, default=4)
    quick.set_defaults(func=run_quickstart)

    train = commands.add_parser(
        "train", help="train HyperDAS, evaluate every read-out, save results + checkpoint"
    )
    add_common_args(train, top_level=False)
    add_train_args(train)
    train.set_defaults(func=run_train, check=check_train_args)

    demo = commands.add_parser(
        "demo",
        help="the main job: HyperDAS beside a no-op and per-attribute DAS on the offline data, "
        "with 95%% intervals",
    )
    add_common_args(demo, top_level=False)
    add_demo_args(demo)
    demo.set_defaults(func=run_demo_command, check=check_demo_args)

    ev = commands.add_parser("evaluate", help="score a saved checkpoint again")
    add_common_args(ev, top_level=False)
    ev.add_argument("checkpoint", type=Path)
    ev.add_argument("--out", type=Path, default=None)
    ev.add_argument("--device", default=None)
    ev.set_defaults(func=run_evaluate)

    rep = commands.add_parser(
        "reproduce", help="re-run a results file's recorded command into a fresh folder, compare"
    )
    add_common_args(rep, top_level=False)
    rep.add_argument("results", type=Path, help="a results JSON with a provenance block")
    rep.add_argument("--out", type=Path, default=None, help="default: runs/reproduce/<name>-<time>")
    rep.add_argument(
        "--tolerance", type=non_negative_float, default=0.0, help="max |delta| per score"
    )
    rep.set_defaults(func=run_reproduce)
    return parser
