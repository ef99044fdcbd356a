"""Does a benchmark folder's HyperDAS unit reproduce an earlier ``run_ravel_city.py`` report?

``analyses/run_ravel_city.py`` (removed; last at commit 19f5cc6) trained the HyperDAS checkpoint
that the faithfulness section analyses. Its run is now one ``run_benchmark.py --methods HyperDAS``
command (README, "Earlier HyperDAS run"); this script says whether that command trains the same
HyperDAS: the running loss at every validation step of the report against the unit's curve, and
every (split, read-out, attribute) Cause / Isolate of the report against the unit's per-example
records, with the example counts. Exit status 1 on any mismatch.

    python analyses/replay_check.py analyses/results/ravel_city_smollm2/report_hyperdas.json \\
        runs/ravel_city_smollm2 --out analyses/results/ravel_city_smollm2/replay_check.md
"""

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.compare.records import read_records
from hyperdas_tl.compare.run_folder import RECORDS_JSONL, unit_curves_path, unit_name

TOLERANCE = 1e-9  # the report stores floats as JSON: equal up to their printed digits


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("report", type=Path, help="a run_ravel_city.py report JSON")
    p.add_argument("run", type=Path, help="a finished run_benchmark.py folder with HyperDAS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="markdown file to write")
    args = p.parse_args()
    if not (args.run / RECORDS_JSONL).is_file():
        p.error(f"{args.run}: no {RECORDS_JSONL} (not a finished run_benchmark.py folder)")
    return args


def loss_rows(report: dict, curves: dict) -> list[tuple[int, float, float]]:
    """(step, report's running loss, unit's running loss) at each of the report's val steps."""
    by_step = {row["step"]: row["running_loss"] for row in curves["history"]}
    return [
        (row["step"], row["running_loss"], by_step.get(row["step"], math.nan))
        for row in report["hyperdas_validation"]
    ]


def score_rows(
    report: dict, records: list
) -> list[tuple[str, str, str, str, float, float, int, int]]:
    """(split, method, attribute, metric, report's value, unit's value, report n, unit n)."""
    verdicts: dict[tuple[str, str, str, str], list[bool]] = defaultdict(list)
    for r in records:
        verdicts[(r.split, r.method, r.attribute, r.kind)].append(r.correct)
    rows = []
    for result in report["results"]:
        for cell in result["attributes"]:
            for metric in ("cause", "isolate"):
                mine = verdicts.get(
                    (result["setting"], result["method"], cell["attribute"], metric)
                )
                value = sum(mine) / len(mine) if mine else math.nan
                rows.append(
                    (result["setting"], result["method"], cell["attribute"], metric,
                     cell[metric], value, cell[f"n_{metric}"], len(mine or []))
                )  # fmt: skip
    return rows


def main() -> None:
    args = parse_args()
    report = json.loads(args.report.read_text(encoding="utf-8"))
    curves = json.loads(unit_curves_path(args.run, unit_name("HyperDAS", args.seed)).read_text())
    records = [
        r
        for r in read_records(args.run / RECORDS_JSONL)
        if r.method.startswith("HyperDAS") and r.seed == args.seed and r.mode == "teacher_forced"
    ]
    losses = loss_rows(report, curves)
    scores = score_rows(report, records)
    loss_ok = all(abs(a - b) <= TOLERANCE for _, a, b in losses)
    score_ok = all(abs(a - b) <= TOLERANCE and n == m for *_, a, b, n, m in scores)
    lines = [
        f"# {args.run} against {args.report}",
        "",
        f"Running loss at the report's validation steps: "
        f"{'identical' if loss_ok else 'DIFFERENT'} (tolerance {TOLERANCE:g}).",
        "",
        "| step | report | replay |",
        "| --- | --- | --- |",
        *(f"| {step} | {a:.12f} | {b:.12f} |" for step, a, b in losses),
        "",
        f"Cause / Isolate per split, read-out and attribute: "
        f"{'identical, same n' if score_ok else 'DIFFERENT'}.",
        "",
        "| split | read-out | attribute | metric | report | replay | n report | n replay |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *(
            f"| {s} | {m} | {a} | {k} | {x:.4f} | {y:.4f} | {n} | {nn} |"
            for s, m, a, k, x, y, n, nn in scores
        ),  # fmt: skip
    ]
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    sys.exit(0 if loss_ok and score_ok else 1)


if __name__ == "__main__":
    raise SystemExit(run_script(main))
