"""The benchmark's figure from its ``summary.json`` (no model needed): Cause / Isolate /
Disentangle per method with 95 % interval error bars, one row of panels per split
(:func:`hyperdas_tl.compare.figure.comparison_figure`, the figure notebook 3 draws).

    python analyses/plot_benchmark.py analyses/results/benchmark_smollm2_city/summary.json \\
        --out analyses/figures/benchmark_smollm2_city.png --splits test_entity test_context
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from hyperdas_tl.cli.entry import run_script  # noqa: E402
from hyperdas_tl.compare.figure import comparison_figure  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("summary", type=Path, help="a comparison's summary.json")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--splits", nargs="+", default=None, help="default: every split")
    p.add_argument("--methods", nargs="+", default=None, help="default: every method")
    p.add_argument("--title", default=None)
    args = p.parse_args(argv)
    summary = json.loads(args.summary.read_text(encoding="utf-8"))
    fig = comparison_figure(summary, splits=args.splits, methods=args.methods, title=args.title)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=130)


if __name__ == "__main__":
    raise SystemExit(run_script(main))
