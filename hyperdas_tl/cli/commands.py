"""The command bodies: ``quickstart``, ``train``, ``evaluate``, ``demo`` and ``reproduce``.

Each imports what is heavy (torch, transformers, TransformerLens) inside the function, so the
parser and the option checks never do.
"""

import argparse
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path


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
    """The named profile with the command line's settings (the configs validate here)."""
    return args.options.to_profile()


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


def run_train(args: argparse.Namespace) -> int:
    from hyperdas_tl.run_dir import check_out_dir, run_lock

    options = args.options
    check_out_dir(options.out)
    with run_lock(options.out):
        from hyperdas_tl.hooks import finite_checks
        from hyperdas_tl.hyperdas.run import train_and_evaluate

        profile = profile_from_args(args)
        with keep_results_noted(options.out), finite_checks():
            run = train_and_evaluate(
                profile,
                model_name=options.model,
                out_dir=options.out,
                device=options.device,
                resume=options.resume,
                threads=options.threads,
                allow_emulated_bf16=options.allow_emulated_bf16,
            )
    print(f"trained {run.train.steps} steps; seconds: {run.seconds}")
    print_results(run.results, run.out_dir)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    options = args.options
    if options.out is None:
        return _evaluate(options)
    from hyperdas_tl.run_dir import check_out_dir, run_lock

    check_out_dir(options.out)
    with run_lock(options.out), keep_results_noted(options.out):
        return _evaluate(options)


def _evaluate(options) -> int:
    from hyperdas_tl.hooks import finite_checks
    from hyperdas_tl.hyperdas.run import evaluate_checkpoint

    with finite_checks():
        run = evaluate_checkpoint(
            options.checkpoint,
            out_dir=options.out,
            device=options.device,
            precision=options.precision,
            allow_emulated_bf16=options.allow_emulated_bf16,
        )
    print_results(run.results, None)
    return 0


def demo_config_from_args(args: argparse.Namespace):
    """The demo's configuration with the command line's overrides (validated here)."""
    from dataclasses import replace

    from hyperdas_tl.demo import DemoConfig

    options = args.options
    config = DemoConfig()
    settings = config.settings
    if options.steps is not None:
        settings = replace(settings, hyperdas=settings.hyperdas.with_fields(n_steps=options.steps))
    return replace(
        config,
        settings=settings,
        seeds=tuple(options.seeds) if options.seeds else config.seeds,
        layer=config.layer if options.layer is None else options.layer,
        k=config.k if options.k is None else options.k,
    )


def run_demo_command(args: argparse.Namespace) -> int:
    from hyperdas_tl.run_dir import check_out_dir, run_lock

    options = args.options
    check_out_dir(options.out)
    with run_lock(options.out):
        config = demo_config_from_args(args)
        from hyperdas_tl.demo import run_demo
        from hyperdas_tl.hooks import finite_checks
        from hyperdas_tl.run_start import start_run

        start = time.perf_counter()
        started = start_run(
            options.model,
            config.data,
            seed=config.seeds[0],
            threads=options.threads,
            device=options.device,
            precision=options.precision,
            allow_emulated_bf16=options.allow_emulated_bf16,
        )
        metadata = {
            "model": options.model,
            "examples": started.data.counts(),
            "seconds": {"model_and_data": started.seconds},
            "provenance": started.provenance,
        }
        with finite_checks():
            result = run_demo(
                started.model, started.data, config, out_dir=options.out, metadata=metadata
            )
    total = time.perf_counter() - start
    print(result.to_markdown())
    print(f"results: {options.out / 'summary.json'}  ({total:.0f} s after start-up)")
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from hyperdas_tl.reproduce import reproduce

    report = reproduce(args.results, out_dir=args.out, tolerance=args.tolerance)
    print(report.summary())
    for diff in report.differences[:20]:
        print(f"  {diff.path}: {diff.original} -> {diff.reproduced}")
    for name, change in report.environment_changes.items():
        print(f"  environment: {name} {change['recorded']} -> {change['now']}")
    return 0 if report.ok else 1
