"""95 % cluster-bootstrap intervals for the runs of the seed study (issue 11), from the
judgements that ``run_ravel_city.py`` (removed after commit 19f5cc6; the runs are replayed by
``run_benchmark.py``, README "Earlier HyperDAS run") stored in its report JSON, and paired
differences between runs on the same examples.

Every run of the study scores the same test examples (same data, same sampling seed), so two
runs can be compared example by example with :func:`hyperdas_tl.compare.scores.
paired_method_difference`, the one the benchmark uses (resampling base entities).

    python analyses/seed_study_intervals.py \\
        --run "seed 1=analyses/results/seed_study_ravel_city/seed1/report_hyperdas.json" \\
        --run "seed 2=analyses/results/seed_study_ravel_city/seed2/report_hyperdas.json" \\
        --pair "seed 1" "seed 2" --out analyses/results/seed_study_ravel_city/intervals
"""

import argparse
import json
from pathlib import Path

from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.compare.records import ExampleRecord
from hyperdas_tl.compare.report import format_interval
from hyperdas_tl.compare.scores import paired_method_difference, summarise_method
from hyperdas_tl.stats import BootstrapConfig

METRICS = ("cause", "isolate", "disentangle")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--run",
        action="append",
        required=True,
        metavar="LABEL=REPORT_JSON",
        help="a run_ravel_city.py report with judgements, under a label",
    )
    p.add_argument(
        "--pair",
        nargs=2,
        action="append",
        default=[],
        metavar=("A", "B"),
        help="labels of two runs: the paired difference A - B on the same examples",
    )
    p.add_argument("--mode", default="teacher_forced")
    p.add_argument("--resamples", type=int, default=2000)
    p.add_argument("--out", type=Path, required=True, help="writes <out>.json and <out>.md")
    args = p.parse_args()
    runs = {}
    for item in args.run:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            p.error(f"--run expects LABEL=REPORT_JSON, got {item!r}")
        if label in runs:
            p.error(f"--run label {label!r} given twice")
        if not Path(path).is_file():
            p.error(f"--run {label!r}: no such file {path}")
        runs[label] = Path(path)
    for a, b in args.pair:
        for label in (a, b):
            if label not in runs:
                p.error(f"--pair names {label!r}, which no --run defines")
    args.runs = runs
    return args


def run_records(label: str, path: Path, mode: str) -> dict[tuple[str, str], list[ExampleRecord]]:
    """``{(split, read-out): records}`` of one report; the method name is the run's label."""
    report = json.loads(path.read_text())
    out: dict[tuple[str, str], list[ExampleRecord]] = {}
    for result in report["results"]:
        judgements = [j for j in result.get("judgements", []) if j["mode"] == mode]
        if not judgements:
            raise ValueError(
                f"{path}: {result['method']} on {result['setting']} has no {mode} judgements "
                "(reports written before judgements were stored cannot be re-scored)"
            )
        read_out = result["method"]
        out[(result["setting"], read_out)] = [
            ExampleRecord(
                method=label,
                seed=None,
                domain=j["domain"],
                split=j["split"],
                attribute=j["attribute"],
                kind=j["kind"],
                mode=j["mode"],
                example_id=j["example_id"],
                base_entity=j["base_entity"],
                correct=bool(j["correct"]),
            )
            for j in judgements
        ]
    return out


def main() -> None:
    args = parse_args()
    config = BootstrapConfig(n_resamples=args.resamples)
    records = {label: run_records(label, path, args.mode) for label, path in args.runs.items()}
    keys = sorted({key for by_key in records.values() for key in by_key})
    scores, differences = [], []
    lines = [
        "# Seed study: intervals per run and paired differences",
        "",
        f"Mode {args.mode}; 95 % cluster bootstrap over base entities, {args.resamples} "
        "resamples (hyperdas_tl.compare.scores, as the benchmark). Written by "
        "`analyses/seed_study_intervals.py`; the runs:",
        "",
        *[f"- {label}: `{path}`" for label, path in args.runs.items()],
        "",
        "| split | read-out | run | n cause / isolate | Cause | Isolate | Disentangle |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split, read_out in keys:
        for label in args.runs:
            mine = records[label].get((split, read_out))
            if not mine:
                continue
            score = summarise_method(mine, config)
            row = {"split": split, "read_out": read_out, "run": label}
            row |= {"n_cause": score.n_cause, "n_isolate": score.n_isolate}
            row |= {m: score.pooled.get(m).to_dict() for m in METRICS if score.pooled.get(m)}
            scores.append(row)
            lines.append(
                f"| {split} | {read_out} | {label} | {score.n_cause} / {score.n_isolate} | "
                + " | ".join(format_interval(score.pooled.get(m)) for m in METRICS)
                + " |"
            )
    if args.pair:
        lines += [
            "",
            "Paired differences (same examples; the rule: A differs from B only when the "
            "interval excludes 0):",
            "",
            "| split | read-out | A − B | Cause | Isolate | Disentangle | decision (Dis.) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
    for a, b in args.pair:
        for split, read_out in keys:
            ra, rb = records[a].get((split, read_out)), records[b].get((split, read_out))
            if not ra or not rb:
                continue
            diff = paired_method_difference(ra, rb, config)
            row = {"split": split, "read_out": read_out, "a": a, "b": b}
            row |= {m: getattr(diff, m).to_dict() for m in METRICS if getattr(diff, m)}
            row["decision"] = diff.decision
            differences.append(row)
            lines.append(
                f"| {split} | {read_out} | {a} − {b} | "
                + " | ".join(format_interval(getattr(diff, m)) for m in METRICS)
                + f" | {diff.decision} |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"runs": {k: str(v) for k, v in args.runs.items()}, "mode": args.mode}
    payload |= {"resamples": args.resamples, "scores": scores, "differences": differences}
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
