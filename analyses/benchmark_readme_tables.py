"""The README's two benchmark tables (scores on the test splits; paired Disentangle differences
on every scored split), rendered from a benchmark run folder's ``details.json``, so that every
number in the README's results section comes from one command:

    python analyses/benchmark_readme_tables.py analyses/results/benchmark_smollm2_city
"""

import argparse
import json
import sys
from pathlib import Path

from hyperdas_tl.cli.entry import run_script

DIFFERENCES = (
    ("HyperDAS (soft)", "MDAS"),
    ("HyperDAS (one_to_many)", "MDAS"),
    ("HyperDAS (one_to_one)", "MDAS"),
    ("HyperDAS (soft)", "DAS"),
    ("HyperDAS (one_to_one)", "DAS"),
    ("HyperDAS (soft)", "HyperDAS (one_to_one)"),
    ("MDAS", "no intervention"),
    ("DAS", "no intervention"),
    ("HyperDAS (soft)", "no intervention"),
    ("HyperDAS (one_to_one)", "no intervention"),
    ("HyperDAS (entity position)", "MDAS"),
    ("HyperDAS (entity position)", "HyperDAS (soft)"),
    ("HyperDAS (entity position)", "no intervention"),
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run", type=Path, help="benchmark run folder (holds details.json)")
    p.add_argument("--entity-split", default="test_entity")
    p.add_argument("--context-split", default="test_context")
    args = p.parse_args()
    if not (args.run / "details.json").is_file():
        p.error(f"{args.run}: no details.json (is it a run_benchmark.py output folder?)")
    return args


def interval(cell: dict | None, signed: bool = False) -> str:
    if not cell:
        return "—"
    sign = "+" if signed else ""

    def num(x: float) -> str:
        return f"{x:{sign}.3f}".replace("-", "−")

    return f"{num(cell['mean'])} [{num(cell['lo'])}, {num(cell['hi'])}]"


def spread(score: dict) -> str:
    cell = score.get("over_seeds", {}).get("disentangle")
    if not cell:
        return "—"
    if cell.get("sd") is None:  # one seed: no spread to show
        return f"{cell['mean']:.3f} (1 seed)"
    return f"{cell['mean']:.3f} ± {cell['sd']:.3f}"


def main() -> None:
    args = parse_args()
    details = json.loads((args.run / "details.json").read_text())
    scores = {(s["split"], s["method"]): s for s in details["scores"]}
    methods = list(dict.fromkeys(s["method"] for s in details["scores"]))
    entity, context = args.entity_split, args.context_split
    out = [
        f"| method | {entity} Cause | Isolate | Disentangle | over seeds | "
        f"{context} Disentangle | over seeds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method in methods:
        e, c = scores[(entity, method)], scores[(context, method)]
        pe, pc = e["pooled"], c["pooled"]
        out.append(
            f"| {method} | {interval(pe['cause'])} | {interval(pe['isolate'])} | "
            f"{interval(pe['disentangle'])} | {spread(e)} | {interval(pc['disentangle'])} | "
            f"{spread(c)} |"
        )
    e, c = scores[(entity, methods[0])], scores[(context, methods[0])]
    out += [
        "",
        f"n = {e['n_cause']} cause / {e['n_isolate']} isolate ({entity}), "
        f"{c['n_cause']} / {c['n_isolate']} ({context}); seeds {details['seeds']}.",
        "",
    ]
    splits = list(dict.fromkeys(d["split"] for d in details["differences"]))
    diffs = {(d["split"], d["a"], d["b"]): d for d in details["differences"]}
    out += ["| A − B | " + " | ".join(splits) + " |", "|" + " --- |" * (len(splits) + 1)]
    for a, b in DIFFERENCES:
        cells = [diffs.get((split, a, b)) for split in splits]
        if not any(cells):
            continue
        row = [
            interval(cell and cell["disentangle"], signed=True)
            + (" †" if cell and cell["decision"] == "no consistent difference" else "")
            for cell in cells
        ]
        out.append(f"| {a} − {b} | " + " | ".join(row) + " |")
    out += [
        "",
        "† the pooled interval excludes 0 but a seed's own paired interval lies on the other side "
        "of 0: no consistent difference (the seed condition of the decision rule).",
    ]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
