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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from hyperdas_tl.choices import PRECISIONS, RAVEL_DOMAINS
from hyperdas_tl.cli.checks import (
    argparse_type,
    check_demo_args,
    check_evaluate_args,
    check_train_args,
)
from hyperdas_tl.cli.commands import (
    run_demo_command,
    run_evaluate,
    run_quickstart,
    run_reproduce,
    run_train,
)
from hyperdas_tl.cli.options import (
    DEMO_OUT,
    MODEL_CHOICES,
    OPTIONS,
    SMOLLM2_NAME,
    TRAIN_OUT,
    OptionError,
    parse_options,
)
from hyperdas_tl.config_values import non_negative_float, non_negative_int
from hyperdas_tl.hyperdas.profiles import PROFILES

PROFILE_CHOICES = tuple(sorted(PROFILES))
RAVEL_DOMAIN_CHOICES = RAVEL_DOMAINS
PRECISION_CHOICES = PRECISIONS
EXIT_ERROR = 2
__all__ = ["DEMO_OUT", "MODEL_CHOICES", "SMOLLM2_NAME", "TRAIN_OUT", "build_parser"]


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: <message> (see <prog> --help)``, exit 2.

    ``train``, ``evaluate`` and ``demo`` take their options from tyro
    (:mod:`hyperdas_tl.cli.options`): :meth:`parse_args` hands a command's arguments to
    :func:`~hyperdas_tl.cli.options.parse_options` and keeps the result as ``args.options``.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"error: {message} (see {self.prog} --help)\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> argparse.Namespace:
        parsed, rest = self.parse_known_args(args, namespace)
        command = getattr(parsed, "command", None)
        if command not in OPTIONS:
            if rest:
                self.error(f"unrecognized arguments: {' '.join(rest)}")
            return parsed
        prog = f"{self.prog} {command}"
        try:
            parsed.options = parse_options(command, rest, prog=prog)
        except OptionError as error:
            self.exit(EXIT_ERROR, f"error: {error} (see {prog} --help)\n")
        parsed.verbose = parsed.verbose or parsed.options.verbose
        parsed.debug = parsed.debug or parsed.options.debug
        return parsed


def add_common_args(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """``-v`` and ``--debug``, accepted before or after the command name."""
    default = False if top_level else argparse.SUPPRESS
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="INFO logging"
    )
    parser.add_argument(
        "--debug", action="store_true", default=default, help="print tracebacks of errors"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="hyperdas_tl", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add_common_args(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", required=True)

    quick = commands.add_parser("quickstart", help="load the model and apply one interchange")
    add_common_args(quick, top_level=False)
    quick.add_argument("--model", default=SMOLLM2_NAME, choices=MODEL_CHOICES)
    quick.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    quick.add_argument("--layer", type=argparse_type(non_negative_int), default=4)
    quick.set_defaults(func=run_quickstart)

    # options from tyro (hyperdas_tl.cli.options); their --help is tyro's
    for name, func, check in (
        ("train", run_train, check_train_args),
        ("demo", run_demo_command, check_demo_args),
        ("evaluate", run_evaluate, check_evaluate_args),
    ):
        help_text = (OPTIONS[name].__doc__ or "").strip().replace("%", "%%")
        command = commands.add_parser(name, help=help_text, add_help=False)
        command.set_defaults(func=func, check=check)

    rep = commands.add_parser(
        "reproduce", help="re-run a results file's recorded command into a fresh folder, compare"
    )
    add_common_args(rep, top_level=False)
    rep.add_argument("results", type=Path, help="a results JSON with a provenance block")
    rep.add_argument("--out", type=Path, default=None, help="default: runs/reproduce/<name>-<time>")
    rep.add_argument(
        "--tolerance",
        type=argparse_type(non_negative_float),
        default=0.0,
        help="max |delta| per score",
    )
    rep.set_defaults(func=run_reproduce)
    return parser
