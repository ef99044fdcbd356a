"""Faithfulness controls on a trained HyperDAS checkpoint: does it find the concept or inject it?

Runs every control of :mod:`hyperdas_tl.faithfulness` on the checkpoint's test splits (the data
is rebuilt from the settings recorded in the checkpoint; the instance is cached) and writes
``analyses/results/faithfulness_smollm2.json`` (every number) and ``.md`` (the tables), plus the
Householder PCA plot under ``analyses/figures/``.

- source == base (all read-outs), random subspace of the same k, zero source, nonsense source
  entity, selection statistics, soft vs hard gap, Householder vectors: per test split.
- random-init target: one HyperDAS trained with the checkpoint's config and steps against a
  random-init copy of the target, scored on ``--random-target-split``.

Example (the lead's full run; a GPU makes the random-target training fast)::

    HYPERDAS_TL_CACHE=/work/cache python analyses/run_faithfulness.py \\
        --checkpoint runs/hyperdas_small/checkpoint

Memory: the target's residual states of a split are kept for the split's controls
(~2 x batch x n_layers x pos x d_model floats per batch).
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

from hyperdas_tl import faithfulness as ft
from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.experiment import TEST_SPLITS
from hyperdas_tl.hyperdas.run import load_checkpoint
from hyperdas_tl.precision import PRECISIONS, model_dtype, precision_name
from hyperdas_tl.provenance import run_provenance
from hyperdas_tl.viz import householder_pca_figure

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "analyses" / "results"
FIGURES = REPO / "analyses" / "figures"

logger = logging.getLogger("run_faithfulness")


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def to_markdown(report: dict[str, Any]) -> str:
    architecture = report["hyperdas"]["architecture"]  # HyperDASConfig.to_dict()
    lines = [
        f"# Faithfulness controls: {report['model']}",
        "",
        f"Checkpoint `{report['checkpoint']}` (layer {architecture['layer']}, "
        f"k {architecture['k']}, {report['hyperdas']['training']['n_steps']} steps). "
        "Teacher-forced "
        "scores, macro-averaged over the target attributes. *Best constant answer* is the Cause a "
        "source-blind predictor of the most frequent label reaches (the bar for controls that "
        "must not see the source).",
        "",
    ]
    for split, s in report["splits"].items():
        soft = s["hyperdas"]["soft"]
        same, rs, zero = s["source_equals_base"], s["random_subspace"], s["zero_source"]
        nonsense = s["nonsense_source"]
        lines += [
            f"## {split} ({s['n_examples']} examples)",
            "",
            "| read-out | Cause | Isolate | Disentangle |",
            "|---|---|---|---|",
        ]
        for mode, score in s["hyperdas"].items():
            lines.append(
                f"| HyperDAS ({mode}) | {fmt(score['cause'])} | {fmt(score['isolate'])} "
                f"| {fmt(score['disentangle'])} |"
            )
        lines += [
            "",
            "| control | measured | compare with | expected |",
            "|---|---|---|---|",
        ]
        for mode in same["unchanged"]:
            lines.append(
                f"| source == base ({mode}): predictions unchanged "
                f"| {fmt(same['unchanged'][mode])} "
                f"| own-state mass {fmt(same['own_state_mass'][mode])}; unexplained changes "
                f"{same['unexplained_changes'][mode]} | ≈ 1 where the selection is "
                "position-aligned; 0 unexplained |"
            )
        lines += [
            f"| random subspace (k={rs['k']}): Cause | {fmt(rs['random_subspace']['cause'])} "
            f"| HyperDAS soft {fmt(soft['cause'])} | far lower |",
            f"| random subspace: Isolate | {fmt(rs['random_subspace']['isolate'])} "
            f"| HyperDAS soft {fmt(soft['isolate'])} | — |",
            f"| zero source: Cause | {fmt(zero['zero_source']['cause'])} | HyperDAS soft "
            f"{fmt(soft['cause'])}; best constant answer {fmt(zero['majority_label_rate'])} "
            "| ≈ 0, at most the constant answer |",
            f"| nonsense source ('{nonsense['nonsense']}'): original label | "
            f"{fmt(nonsense['counterfactual_label_rate'])} | real source "
            f"{fmt(nonsense['original_cause'])}; best constant answer "
            f"{fmt(nonsense['majority_label_rate'])} | ≈ 0, at most the constant answer |",
            f"| nonsense source: base label kept | {fmt(nonsense['base_label_rate'])} | — | — |",
        ]
        if split == report.get("random_target_split") and report.get("random_target"):
            rt = report["random_target"]
            lines.append(
                f"| random-init target ({rt['n_steps']} steps, hypernetwork from the "
                f"{rt['hypernetwork_init']} model): Cause | {fmt(rt['random_target']['cause'])} "
                f"| real target {fmt(rt['real']['cause'])}; random target alone "
                f"{fmt(rt['random_target_clean']['cause'])}; best constant answer "
                f"{fmt(rt['majority_label_rate'])} | far below the real target |"
            )
        gap, sel = s["soft_hard_gap"]["gaps"], s["selection"]
        lines += [
            "",
            "| read-out | base entity share | source entity share | base positions replaced "
            "| soft - this: Cause / Isolate |",
            "|---|---|---|---|---|",
        ]
        for mode, r in sel["read_outs"].items():
            g = gap.get(mode)
            gap_text = "—" if g is None else f"{fmt(g['cause'])} / {fmt(g['isolate'])}"
            lines.append(
                f"| {mode} | {fmt(r['base_entity_share'])} | {fmt(r['source_entity_share'])} "
                f"| {r['replaced_per_example']:.2f} | {gap_text} |"
            )
        house = s["householder"]
        lines += [
            "",
            f"Entity tokens are {fmt(sel['base_entity_token_share'])} of base and "
            f"{fmt(sel['source_entity_token_share'])} of source prompt tokens (chance level of "
            "the entity shares). Householder vectors: nearest-attribute-centroid accuracy "
            f"{fmt(house['centroid_accuracy'])}, PCA variance "
            f"{house['explained_variance'][0]:.0%} / {house['explained_variance'][1]:.0%}, "
            f"mean cosine {json.dumps({k: round(v, 3) for k, v in house['mean_cosine'].items()})}.",
            "",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="HyperDAS checkpoint dir")
    parser.add_argument("--splits", nargs="+", default=list(TEST_SPLITS))
    parser.add_argument("--max-batches", type=int, default=None, help="cap per split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random-target-split", default="test_entity")
    parser.add_argument(
        "--random-target-steps", type=int, default=None, help="default: the checkpoint's"
    )
    parser.add_argument("--skip-random-target", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "faithfulness_smollm2")
    parser.add_argument("--figure", type=Path, default=FIGURES / "householder_pca_smollm2.png")
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="dtype of the target (default: the one the checkpoint was trained against)",
    )
    parser.add_argument("--allow-emulated-bf16", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.manual_seed(args.seed)

    start = time.perf_counter()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    loaded = load_checkpoint(
        args.checkpoint,
        device=args.device,
        precision=args.precision,
        allow_emulated_bf16=args.allow_emulated_bf16,
    )  # the target in the checkpoint's dtype: a bf16-trained HyperDAS is scored on a bf16 target
    config, target, data = loaded.config, loaded.target, loaded.data
    hyperdas = loaded.model.eval()
    model_name = config.architecture.target_model
    report: dict[str, Any] = {
        "model": model_name,
        "checkpoint": str(args.checkpoint),
        "hyperdas": config.to_dict(),
        "seed": args.seed,
        "splits": {},
        "random_target_split": None if args.skip_random_target else args.random_target_split,
        "provenance": run_provenance(
            seed=args.seed,
            dtype=precision_name(model_dtype(target)),
            argv=[sys.argv[0], *(sys.argv[1:] if argv is None else argv)],
        ),
    }
    suite = ft.faithfulness_suite(
        hyperdas,
        {split: data.batches.get(split, [])[: args.max_batches] for split in args.splits},
        data.batches["train"],
        seed=args.seed,
        random_target_split=None if args.skip_random_target else args.random_target_split,
        random_target_batches=data.batches.get(args.random_target_split, [])[: args.max_batches],
        random_target_steps=args.random_target_steps,
        show_progress=True,
    )
    result = suite.to_dict()
    report["splits"] = result["splits"]
    if suite.random_target is not None:
        report["random_target"] = {
            **result["random_target"],
            "seconds": suite.seconds["random_target"],
        }
    report["seconds"] = round(time.perf_counter() - start, 2)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(to_markdown(report))
    if suite.splits:
        split, controls = next(iter(suite.splits.items()))
        house = controls.householder
        fig = householder_pca_figure(
            house.projection,
            house.attributes,
            house.explained_variance,
            title=f"Householder vectors v(e), {split}",
            point_size=10,
        )
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=130)
    print(f"wrote {args.out.with_suffix('.json')}, {args.out.with_suffix('.md')}, {args.figure}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
