"""``python -m hyperdas_tl.bench``: the benchmark's command line (and the entry point of the memory
probe subprocesses, ``--memory-probe``)."""

import argparse
import json
import logging
from pathlib import Path

from hyperdas_tl.bench.memory import MEMORY_VARIANTS
from hyperdas_tl.bench.memory_probe import memory_probe
from hyperdas_tl.bench.report import write_results
from hyperdas_tl.bench.runner import SECTIONS, run_benchmarks
from hyperdas_tl.bench.settings import BenchSettings

DESCRIPTION = (
    "Speed and memory benchmarks of hyperdas_tl on SmolLM2-135M (CPU), as ratios from one run."
)
DEFAULT_OUT = Path("runs") / "bench" / "bench.json"
"""Where results go unless ``--out`` says otherwise (the committed tables are written with
``--out analyses/results/bench_smollm2.json``)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hyperdas_tl.bench", description=DESCRIPTION)
    defaults = BenchSettings()
    parser.add_argument("--model", default=defaults.model)
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--seq", type=int, default=defaults.seq)
    parser.add_argument("--concept-len", type=int, default=defaults.concept_len)
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--k", type=int, default=None)
    parser.add_argument("--n-hypernet-layers", type=int, default=defaults.n_hypernet_layers)
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument("--hook-repeats", type=int, default=defaults.hook_repeats)
    parser.add_argument("--scaling-repeats", type=int, default=defaults.scaling_repeats)
    parser.add_argument(
        "--scaling-batches", type=int, nargs="+", default=list(defaults.scaling_batches)
    )
    parser.add_argument("--scaling-seqs", type=int, nargs="+", default=list(defaults.scaling_seqs))
    parser.add_argument("--gen-tokens", type=int, default=defaults.gen_tokens)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument(
        "--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS, help="what to run"
    )
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling table")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"JSON path, .md beside (default {DEFAULT_OUT})",
    )
    parser.add_argument("--memory-probe", choices=MEMORY_VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--settings-json", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_probe:
        settings = BenchSettings(**json.loads(args.settings_json))
        settings.scaling_batches = tuple(settings.scaling_batches)
        settings.scaling_seqs = tuple(settings.scaling_seqs)
        print(json.dumps(memory_probe(args.memory_probe, settings)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = BenchSettings(
        model=args.model,
        batch=args.batch,
        seq=args.seq,
        concept_len=args.concept_len,
        layer=args.layer,
        k=args.k,
        n_hypernet_layers=args.n_hypernet_layers,
        repeats=args.repeats,
        hook_repeats=args.hook_repeats,
        scaling_repeats=args.scaling_repeats,
        scaling_batches=tuple(args.scaling_batches),
        scaling_seqs=tuple(args.scaling_seqs),
        gen_tokens=args.gen_tokens,
        threads=args.threads,
    )
    sections = tuple(s for s in args.sections if not (args.no_scaling and s == "scaling"))
    results = run_benchmarks(settings, sections, memory_probes=not args.no_memory)
    markdown = write_results(results, args.out)
    print(markdown)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')}")
    return 0
