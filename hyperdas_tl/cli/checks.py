"""What the command line checks before anything heavy is imported, beyond each option's value
(those are the parsers of :mod:`hyperdas_tl.config_values`): the option combinations the
parser cannot see."""

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

RAVEL_ENV_VAR = "HYPERDAS_TL_RAVEL"


class CLIError(ValueError):
    """Bad command-line input found after parsing (the message names the option)."""


def argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` (raising ``ValueError`` with the message) as an argparse ``type=``."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = parse.__name__
    return convert


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file, not a folder")


def check_train_args(args: argparse.Namespace) -> None:
    """Option combinations the parser cannot see (no heavy imports)."""
    data = args.options.data
    if data.ravel_path is not None and not Path(data.ravel_path).expanduser().exists():
        raise CLIError(f"--ravel {data.ravel_path} does not exist")
    if data.source == "ravel" and data.ravel_path is None and not os.environ.get(RAVEL_ENV_VAR):
        raise CLIError(f"--source ravel needs --ravel (a data.tgz or folder) or ${RAVEL_ENV_VAR}")
    _check_out(args.options.out)


def check_evaluate_args(args: argparse.Namespace) -> None:
    checkpoint = args.options.checkpoint
    if not checkpoint.is_dir():
        raise CLIError(f"checkpoint {checkpoint} is not a folder")


def check_demo_args(args: argparse.Namespace) -> None:
    out = args.options.out
    _check_out(out)
    if not args.options.resume and out.is_dir() and any(out.iterdir()):
        raise CLIError(
            f"--out {out} already holds a run; pass --resume to continue it or choose another --out"
        )
