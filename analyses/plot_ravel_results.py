"""Figures of the RAVEL comparison runs (``analyses/run_ravel_city.py`` reports), no model needed.

For each ``--run NAME=DIR`` (a folder holding ``report*.json``):

- ``analyses/figures/probe_accuracy_per_layer_smollm2.png``: linear-probe test accuracy vs layer,
  one line per attribute, one panel per run;
- ``analyses/figures/method_comparison_smollm2.png``: Cause / Isolate / Disentangle per method and
  HyperDAS read-out on ``test_entity`` and ``test_context`` (teacher forced, mean over the
  attributes), one row per run.

    python analyses/plot_ravel_results.py \\
        --run city=analyses/results/ravel_city_smollm2 \\
        --run physical_object=analyses/results/ravel_physical_object_smollm2
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "analyses" / "figures"
SPLITS = ("test_entity", "test_context")
METRICS = ("cause", "isolate", "disentangle")


def load_reports(folder: Path) -> tuple[list[dict], dict]:
    """Every result of every ``report*.json`` in ``folder`` (later files win on duplicates) and
    the probe accuracies."""
    results: dict[tuple[str, str], dict] = {}
    probes: dict = {}
    for path in sorted(folder.glob("report*.json")):
        report = json.loads(path.read_text())
        probes = report.get("probe_accuracy") or probes
        for result in report.get("results", []):
            results[(result["method"], result["setting"])] = result
    return list(results.values()), probes


def domain_score(result: dict, split: str, metric: str) -> float | None:
    for score in result["domains"]:
        if score["split"] == split and score["mode"] == "teacher_forced":
            return score[metric]
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", action="append", required=True, metavar="NAME=DIR")
    p.add_argument("--out", type=Path, default=FIGURES)
    args = p.parse_args()
    runs = [(name, Path(folder)) for name, folder in (r.split("=", 1) for r in args.run)]
    args.out.mkdir(parents=True, exist_ok=True)
    loaded = {name: load_reports(folder) for name, folder in runs}

    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.2), squeeze=False)
    for ax, (name, (_, probes)) in zip(axes[0], loaded.items(), strict=True):
        for attribute, points in probes.items():
            ax.plot([q["layer"] for q in points], [q["test_accuracy"] for q in points],
                    marker="o", label=attribute)  # fmt: skip
        ax.set_title(f"{name}: probe accuracy"), ax.set_xlabel("layer"), ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "probe_accuracy_per_layer_smollm2.png", dpi=120)

    fig, axes = plt.subplots(len(runs), len(SPLITS), figsize=(13, 3.6 * len(runs)), squeeze=False)
    width = 0.27
    for row, (name, (results, _)) in zip(axes, loaded.items(), strict=True):
        methods = list(dict.fromkeys(r["method"] for r in results))
        for ax, split in zip(row, SPLITS, strict=True):
            by_method = {r["method"]: r for r in results if r["setting"] == split}
            for j, metric in enumerate(METRICS):
                values = [domain_score(by_method[m], split, metric) if m in by_method else None
                          for m in methods]  # fmt: skip
                xs = [i + (j - 1) * width for i in range(len(methods))]
                ax.bar(xs, [v or 0.0 for v in values], width, label=metric.capitalize())
            ax.axhline(0.5, color="grey", lw=0.8, ls="--")
            ax.set_xticks(range(len(methods)), methods, rotation=35, ha="right", fontsize=7)
            ax.set_ylim(0, 1.05), ax.set_title(f"{name}, {split} (teacher forced)")
        row[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "method_comparison_smollm2.png", dpi=120)


if __name__ == "__main__":
    main()
