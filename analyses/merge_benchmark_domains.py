"""One ``summary.json`` for every domain of the benchmark (issue 13's layout), from the finished
``run_benchmark.py`` folder of each domain.

Each domain's run writes ``summary.json`` as ``{domain: {split: {method: scores}},
"differences": {split: {"A - B": interval}}}``. The merged file keeps every domain's scores under
its name and nests the differences one level deeper, ``"differences": {domain: {split: ...}}``,
so that the domains' differences cannot collide; ``"sources"`` names each domain's folder, where
its per-example ``records.jsonl.gz``, ``details.json`` and curves stay (they are not copied).

    python analyses/merge_benchmark_domains.py \\
        analyses/results/benchmark_smollm2_city_unbucketed \\
        analyses/results/benchmark_smollm2_physical_object \\
        --out analyses/results/benchmark_smollm2/summary.json
"""

import argparse
import json
import os
from pathlib import Path

from hyperdas_tl.atomic_write import write_text_atomically
from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.compare.run_folder import RECORDS_JSONL, SUMMARY_JSON


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("folders", nargs="+", type=Path, help="finished run_benchmark.py folders")
    p.add_argument("--out", type=Path, required=True, help="the merged summary.json to write")
    args = p.parse_args()
    for folder in args.folders:
        if not (folder / SUMMARY_JSON).is_file() or not (folder / RECORDS_JSONL).is_file():
            p.error(f"{folder}: no {SUMMARY_JSON} / {RECORDS_JSONL} (not a finished run folder)")
    return args


def merge(summaries: dict[Path, dict], out_dir: Path) -> dict:
    """The merged summary of ``{folder: its summary.json}``; a domain given twice is an error."""
    merged: dict = {"differences": {}, "sources": {}}
    for folder, summary in summaries.items():
        domains = [key for key in summary if key != "differences"]
        if len(domains) != 1:
            raise ValueError(f"{folder}: expected one domain in {SUMMARY_JSON}, got {domains}")
        (domain,) = domains
        if domain in merged:
            raise ValueError(f"domain {domain!r} is in {merged['sources'][domain]} and {folder}")
        merged[domain] = summary[domain]
        merged["differences"][domain] = summary.get("differences", {})
        merged["sources"][domain] = os.path.relpath(folder, out_dir)
    return merged


def main() -> None:
    args = parse_args()
    summaries = {f: json.loads((f / SUMMARY_JSON).read_text()) for f in args.folders}
    merged = merge(summaries, args.out.parent)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(args.out, json.dumps(merged, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
