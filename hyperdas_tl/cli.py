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
import contextlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

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
RAVEL_ENV_VAR = "HYPERDAS_TL_RAVEL"
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class CLIError(ValueError):
    """Bad command-line input found after parsing (the message names the option)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: <message> (see <prog> --help)``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"error: {message} (see {self.prog} --help)\n")


# ---------------------------------------------------------------------------------------------
# Value checks run by the parser (no heavy imports)


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


# ---------------------------------------------------------------------------------------------
# Commands


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
    """The named profile with the command line's overrides (the configs validate here)."""
    from dataclasses import replace

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
        "cache_target_states": None if args.cache_states else False,
        "checkpoint_every": args.checkpoint_every,
        "seed": args.seed,
    }
    data = replace(profile.data, **{k: v for k, v in data_overrides.items() if v is not None})
    hyper = replace(profile.hyperdas, **{k: v for k, v in model_overrides.items() if v is not None})
    eval_modes = tuple(args.eval_modes) if args.eval_modes else profile.eval_modes
    precision = args.precision or profile.precision
    return replace(profile, data=data, hyperdas=hyper, eval_modes=eval_modes, precision=precision)


def print_results(results, out_dir: Path | None) -> None:
    from hyperdas_tl.metrics import results_to_markdown

    print(results_to_markdown(results))
    if out_dir is not None:
        print(f"\nresults: {out_dir / 'results.json'}  checkpoint: {out_dir / 'checkpoint'}")


def kept_results_note(out_dir: Path | None, since: float) -> str | None:
    """After a failure: which splits' results this run (started at ``since``) left in
    ``out_dir/results.json``."""
    if out_dir is None:
        return None
    path = out_dir / "results.json"
    try:
        if path.stat().st_mtime < since:
            return None
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if saved.get("complete", True) or not saved.get("finished_splits"):
        return None
    splits = ", ".join(saved["finished_splits"])
    return f"(the results of the finished splits {splits} are kept in {path})"


def run_train(args: argparse.Namespace) -> int:
    from hyperdas_tl.run_dir import check_out_dir, run_lock

    check_out_dir(args.out)
    with run_lock(args.out):
        from hyperdas_tl.hooks import finite_checks
        from hyperdas_tl.hyperdas.run import train_and_evaluate

        profile = profile_from_args(args)
        with keep_results_noted(args.out), finite_checks():
            run = train_and_evaluate(
                profile,
                model_name=args.model,
                out_dir=args.out,
                device=args.device,
                resume=args.resume,
                threads=args.threads,
            )
    print(f"trained {run.train.steps} steps; seconds: {run.seconds}")
    print_results(run.results, run.out_dir)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    if not args.checkpoint.is_dir():
        raise CLIError(f"checkpoint {args.checkpoint} is not a folder")
    if args.out is None:
        return _evaluate(args)
    from hyperdas_tl.run_dir import check_out_dir, run_lock

    check_out_dir(args.out)
    with run_lock(args.out), keep_results_noted(args.out):
        return _evaluate(args)


@contextlib.contextmanager
def keep_results_noted(out_dir: Path | None) -> Iterator[None]:
    """Add :func:`kept_results_note` to an exception leaving the block."""
    since = time.time() - 1.0  # file times can be coarser than time.time()
    try:
        yield
    except Exception as error:
        note = kept_results_note(out_dir, since)
        if note:
            error.add_note(note)
        raise


def _evaluate(args: argparse.Namespace) -> int:
    from hyperdas_tl.hooks import finite_checks
    from hyperdas_tl.hyperdas.run import evaluate_checkpoint

    with finite_checks():
        run = evaluate_checkpoint(args.checkpoint, out_dir=args.out, device=args.device)
    print_results(run.results, None)
    return 0


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


def check_demo_args(args: argparse.Namespace) -> None:
    if args.out.exists() and not args.out.is_dir():
        raise CLIError(f"--out {args.out} is a file, not a folder")
    if not args.resume and args.out.is_dir() and any(args.out.iterdir()):
        raise CLIError(
            f"--out {args.out} already holds a run; pass --resume to continue it or choose "
            "another --out"
        )


def demo_config_from_args(args: argparse.Namespace):
    """The demo's configuration with the command line's overrides (validated here)."""
    from dataclasses import replace

    from hyperdas_tl.demo import DemoConfig

    config = DemoConfig()
    settings = config.settings
    if args.steps is not None:
        settings = replace(settings, hyperdas=replace(settings.hyperdas, n_steps=args.steps))
    return replace(
        config,
        settings=settings,
        seeds=tuple(args.seeds) if args.seeds else config.seeds,
        layer=config.layer if args.layer is None else args.layer,
        k=config.k if args.k is None else args.k,
    )


def run_demo_command(args: argparse.Namespace) -> int:
    from hyperdas_tl.run_dir import check_out_dir, run_lock

    check_out_dir(args.out)
    with run_lock(args.out):
        config = demo_config_from_args(args)
        from hyperdas_tl.demo import run_demo
        from hyperdas_tl.experiment import build_experiment_data
        from hyperdas_tl.hooks import finite_checks
        from hyperdas_tl.models import default_device, load_model
        from hyperdas_tl.precision import precision_name, resolve_precision
        from hyperdas_tl.provenance import make_reproducible, run_provenance

        threads = make_reproducible(config.seeds[0], args.threads)
        device = args.device or default_device()
        dtype = resolve_precision(args.precision, device)
        start = time.perf_counter()
        model = load_model(args.model, device=device, dtype=dtype)
        data = build_experiment_data(model, config.data, model_name=args.model)
        seconds = {"model_and_data": time.perf_counter() - start}
        metadata = {
            "model": args.model,
            "examples": data.counts(),
            "seconds": seconds,
            "provenance": run_provenance(
                seed=config.seeds[0], threads=threads, dtype=precision_name(dtype)
            ),
        }
        with finite_checks():
            result = run_demo(model, data, config, out_dir=args.out, metadata=metadata)
    total = time.perf_counter() - start
    print(result.to_markdown())
    print(f"results: {args.out / 'summary.json'}  ({total:.0f} s after start-up)")
    return 0


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
        "--tolerance", type=_non_negative_float, default=0.0, help="max |delta| per score"
    )
    rep.set_defaults(func=run_reproduce)
    return parser


def _non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def run_reproduce(args: argparse.Namespace) -> int:
    from hyperdas_tl.reproduce import reproduce

    report = reproduce(args.results, out_dir=args.out, tolerance=args.tolerance)
    print(report.summary())
    for diff in report.differences[:20]:
        print(f"  {diff.path}: {diff.original} -> {diff.reproduced}")
    for name, change in report.environment_changes.items():
        print(f"  environment: {name} {change['recorded']} -> {change['now']}")
    return 0 if report.ok else 1


def is_expected(error: BaseException) -> bool:
    """Errors whose message is written for the user (bad input, files, the lock, a training run
    that went non-finite); anything else is a bug or an environment problem."""
    from hyperdas_tl.run_dir import RunDirLockedError

    return isinstance(error, ValueError | OSError | FloatingPointError | RunDirLockedError)


def describe_error(error: BaseException) -> str:
    """One line for ``error: ...``: the library's own message (they name the file or option),
    with the exception type for unexpected errors, and any notes appended."""
    text = str(error) or type(error).__name__
    if not is_expected(error):
        text = f"{type(error).__name__}: {text}"
    notes = [str(note) for note in getattr(error, "__notes__", [])]
    return " ".join(" ".join([text, *notes]).split())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    try:
        if hasattr(args, "check"):
            args.check(args)
        return args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # the one error boundary: every failure ends in one line
        if args.debug:
            traceback.print_exception(error, file=sys.stderr)
        hint = "" if args.debug or is_expected(error) else " (run with --debug for the traceback)"
        print(f"error: {describe_error(error)}{hint}", file=sys.stderr)
        return EXIT_ERROR
