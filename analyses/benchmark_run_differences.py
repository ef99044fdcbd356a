"""Paired differences between two benchmark runs on the same examples, method by method.

Two ``run_benchmark.py`` folders that score the same examples (the same data and sampling
seed; their ``run.json`` fingerprints hold the same ``examples_sha1``) but differ in something
else — here ``--bucketing none`` — are compared example by example (a run still under
way is read from the units it has finished): for every method both
scored and every split, run A − run B of Cause / Isolate / Disentangle, each example's verdict
averaged over the seeds both runs hold, with the benchmark's paired 95 % cluster bootstrap
(:func:`hyperdas_tl.compare.scores.paired_method_difference`); ``--cross`` pairs two different
methods of the two runs; and A's own scores with intervals. ``--per-seed`` gives each seed
both sides hold its own row instead of pooling them (a seeded method against a deterministic
one pairs every seed with the same records), which shows whether a pooled difference holds
seed by seed; ``--a`` and ``--b`` may be the same folder, with ``--cross`` pairs.

    python analyses/benchmark_run_differences.py \\
        --a unbucketed=analyses/results/benchmark_smollm2_city_unbucketed \\
        --b bucketed=analyses/results/benchmark_smollm2_city \\
        --out analyses/results/benchmark_smollm2_city_unbucketed/vs_bucketed
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.compare import SPLIT_ORDER
from hyperdas_tl.compare.records import ExampleRecord, read_records
from hyperdas_tl.compare.report import format_interval
from hyperdas_tl.compare.run_folder import RECORDS_JSONL, RUN_JSON
from hyperdas_tl.compare.scores import (
    paired_method_difference,
    records_by_shared_seed,
    summarise_method,
)
from hyperdas_tl.data_config import DataConfig
from hyperdas_tl.stats import BootstrapConfig

METRICS = ("cause", "isolate", "disentangle")


def labelled_folder(parser: argparse.ArgumentParser, option: str, value: str) -> tuple[str, Path]:
    label, sep, path = value.partition("=")
    if not sep or not label or not path:
        parser.error(f"{option} expects LABEL=FOLDER, got {value!r}")
    folder = Path(path)
    if not (folder / RUN_JSON).is_file():
        parser.error(f"{option} {label!r}: {folder} has no {RUN_JSON} (not a benchmark folder)")
    if not run_records(folder):
        parser.error(f"{option} {label!r}: {folder} holds no records yet")
    return label, folder


def run_records(folder: Path) -> list[ExampleRecord]:
    """Every record of a run folder: its ``records.jsonl.gz`` when the run is finished, else
    the per-unit files of what has finished so far (``records/*.jsonl.gz``)."""
    if (folder / RECORDS_JSONL).is_file():
        return read_records(folder / RECORDS_JSONL)
    return [r for unit in sorted((folder / "records").glob("*.jsonl*")) for r in read_records(unit)]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--a", required=True, metavar="LABEL=FOLDER", help="run A of A - B")
    p.add_argument("--b", required=True, metavar="LABEL=FOLDER", help="run B of A - B")
    p.add_argument(
        "--cross",
        nargs=2,
        action="append",
        default=[],
        metavar=("METHOD_A", "METHOD_B"),
        help="also pair A's METHOD_A with B's METHOD_B (e.g. 'HyperDAS (soft)' MDAS)",
    )
    p.add_argument(
        "--per-seed", action="store_true", help="one row per common seed instead of pooling them"
    )
    p.add_argument("--mode", default="teacher_forced")
    p.add_argument("--resamples", type=int, default=2000)
    p.add_argument("--out", type=Path, required=True, help="writes <out>.json and <out>.md")
    args = p.parse_args()
    args.a = labelled_folder(p, "--a", args.a)
    args.b = labelled_folder(p, "--b", args.b)
    fingerprints = [
        json.loads((f / RUN_JSON).read_text())["fingerprint"] for _, f in (args.a, args.b)
    ]
    if fingerprints[0]["examples_sha1"] != fingerprints[1]["examples_sha1"]:
        p.error("the two runs score different examples (examples_sha1 differs): nothing to pair")
    data = [DataConfig.from_dict(f["data"]).to_dict() for f in fingerprints]
    args.differs_in = sorted(k for k in data[0] if data[0][k] != data[1][k])
    return args


def by_cell(records: list[ExampleRecord], mode: str) -> dict[tuple[str, str], list[ExampleRecord]]:
    """``{(split, method): records}`` of one mode."""
    out: dict[tuple[str, str], list[ExampleRecord]] = {}
    for record in records:
        if record.mode == mode:
            out.setdefault((record.split, record.method), []).append(record)
    return out


def common_seeds(a: list[ExampleRecord], b: list[ExampleRecord]) -> list[ExampleRecord]:
    """``a``'s records of the seeds ``b`` also has; all of them when either side is a
    deterministic method (seed None), which is paired with every seed of the other."""
    seeds = {r.seed for r in b}
    if seeds == {None} or {r.seed for r in a} == {None}:
        return list(a)
    return [r for r in a if r.seed in seeds]


def seed_groups(
    a: list[ExampleRecord], b: list[ExampleRecord], per_seed: bool
) -> list[tuple[list[ExampleRecord], list[ExampleRecord]]]:
    """The (A, B) record sets to pair: both whole (seeds pooled), or one per seed they share
    (:func:`hyperdas_tl.compare.scores.records_by_shared_seed`)."""
    by_seed = records_by_shared_seed(a, b) if per_seed else {}
    return list(by_seed.values()) or [(a, b)]


def paired_row(
    split: str,
    method_a: str,
    method_b: str,
    a: list[ExampleRecord],
    b: list[ExampleRecord],
    labels: tuple[str, str],
    config: BootstrapConfig,
) -> tuple[dict, str]:
    """A − B on one split: the JSON row and the markdown line."""
    seeds = sorted({r.seed for r in a} | {r.seed for r in b}, key=lambda s: -1 if s is None else s)
    name_a, name_b = labels
    if method_a != method_b:
        name_a, name_b = f"{labels[0]} {method_a}", f"{labels[1]} {method_b}"
    a = [replace(r, method=name_a) for r in a]  # the decision names the runs
    b = [replace(r, method=name_b) for r in b]
    diff = paired_method_difference(a, b, config)
    method = method_a if method_a == method_b else f"{method_a} − {method_b}"
    row = {"split": split, "method": method, "seeds": seeds, "decision": diff.decision}
    row |= {m: getattr(diff, m).to_dict() for m in METRICS if getattr(diff, m)}
    line = (
        f"| {split} | {method} | {', '.join('—' if s is None else str(s) for s in seeds)} | "
        + " | ".join(format_interval(getattr(diff, m)) for m in METRICS)
        + f" | {diff.decision} |"
    )
    return row, line


def main() -> None:
    args = parse_args()
    config = BootstrapConfig(n_resamples=args.resamples)
    (label_a, folder_a), (label_b, folder_b) = args.a, args.b
    cells_a = by_cell(run_records(folder_a), args.mode)
    cells_b = by_cell(run_records(folder_b), args.mode)
    rows, lines = (
        [],
        [
            f"# {label_a} − {label_b}: paired differences on the same examples",
            "",
            f"A = `{folder_a}`, B = `{folder_b}`; the runs' data configs differ in "
            f"{args.differs_in or 'nothing'}. Mode {args.mode}; "
            + (
                "one row per seed both runs hold (a deterministic method paired with each)"
                if args.per_seed
                else "each example's verdict averaged over the seeds both runs hold"
            )
            + "; 95 % cluster bootstrap over base entities, "
            f"{args.resamples} resamples (`analyses/benchmark_run_differences.py`). A differs "
            "from B only when the interval excludes 0.",
            "",
            "| split | method | seeds | Cause | Isolate | Disentangle | decision (Dis.) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ],
    )
    methods = list(dict.fromkeys(method for _, method in cells_a))  # the report's order
    pairs = [(m, m) for m in methods] + [tuple(pair) for pair in args.cross]
    for split in SPLIT_ORDER:
        for method_a, method_b in pairs:
            if (split, method_a) not in cells_a or (split, method_b) not in cells_b:
                continue
            a = common_seeds(cells_a[split, method_a], cells_b[split, method_b])
            b = common_seeds(cells_b[split, method_b], cells_a[split, method_a])
            if not a or not b:
                continue
            for seed_a, seed_b in seed_groups(a, b, args.per_seed):
                row, line = paired_row(
                    split, method_a, method_b, seed_a, seed_b, (label_a, label_b), config
                )
                rows.append(row)
                lines.append(line)
    lines += [
        "",
        f"Scores of {label_a} (every method it has, its seeds pooled):",
        "",
        "| split | method | seeds | n cause / isolate | Cause | Isolate | Disentangle |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    scores = []
    for split in SPLIT_ORDER:
        for method in methods:
            mine = cells_a.get((split, method))
            if not mine:
                continue
            seeds = sorted({r.seed for r in mine}, key=lambda s: -1 if s is None else s)
            score = summarise_method(mine, config)
            row = {"split": split, "method": method, "seeds": seeds}
            row |= {"n_cause": score.n_cause, "n_isolate": score.n_isolate}
            row |= {m: score.pooled.get(m).to_dict() for m in METRICS if score.pooled.get(m)}
            scores.append(row)
            lines.append(
                f"| {split} | {method} | {', '.join('—' if s is None else str(s) for s in seeds)} "
                f"| {score.n_cause} / {score.n_isolate} | "
                + " | ".join(format_interval(score.pooled.get(m)) for m in METRICS)
                + " |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"a": {label_a: str(folder_a)}, "b": {label_b: str(folder_b)}, "mode": args.mode}
    payload |= {"differs_in": args.differs_in, "resamples": args.resamples, "differences": rows}
    payload[f"scores of {label_a}"] = scores
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
