"""What the command line accepts, checked before anything heavy is imported: each option's
value (argparse ``type=`` functions) and the option combinations the parser cannot see."""

import argparse
import os
from pathlib import Path

RAVEL_ENV_VAR = "HYPERDAS_TL_RAVEL"


class CLIError(ValueError):
    """Bad command-line input found after parsing (the message names the option)."""


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def open_unit_float(text: str) -> float:
    value = _float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}")
    return value


def attribute_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("attribute names must not be empty")
    return text


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def check_train_args(args: argparse.Namespace) -> None:
    """Option combinations the parser cannot see (no heavy imports)."""
    source = args.source or "geonames"
    if source == "geonames" and args.domain not in (None, "city"):
        raise CLIError(
            f"--domain {args.domain}: the offline geonames data has only the 'city' domain; "
            "pass --source ravel for the other RAVEL domains"
        )
    if args.ravel is not None and not Path(args.ravel).expanduser().exists():
        raise CLIError(f"--ravel {args.ravel} does not exist")
    if source == "ravel" and args.ravel is None and not os.environ.get(RAVEL_ENV_VAR):
        raise CLIError(f"--source ravel needs --ravel (a data.tgz or folder) or ${RAVEL_ENV_VAR}")
    if args.out.exists() and not args.out.is_dir():
        raise CLIError(f"--out {args.out} is a file, not a folder")


def check_demo_args(args: argparse.Namespace) -> None:
    if args.out.exists() and not args.out.is_dir():
        raise CLIError(f"--out {args.out} is a file, not a folder")
    if not args.resume and args.out.is_dir() and any(args.out.iterdir()):
        raise CLIError(
            f"--out {args.out} already holds a run; pass --resume to continue it or choose "
            "another --out"
        )
