"""Baselines on SmolLM2-135M and real RAVEL: DAS, MDAS and probe subspaces, plus the sweeps.

Subcommands (one command each):

- ``all``: per target attribute, a DAS layer sweep (scored on ``val_entity``, teacher forced)
  picks the best layer; DAS, MDAS and the probe subspace at that layer are scored on
  ``test_entity`` and ``test_context`` in both judging modes; probes give accuracy vs layer.
  Writes ``analyses/results/baselines_smollm2.json`` and ``.md``.
- ``layer-sweep``: DAS (or MDAS) at each ``--layers`` scored on ``--eval-split``.
- ``dim-sweep``: DAS (or MDAS) at ``--layer`` for each ``--ks``.
- ``render``: re-write the ``.md`` of an ``all`` run from its ``.json``.

Data: ``hyperdas_tl.data`` (``load_ravel`` -> ``load_or_build_instance`` -> ``make_pairs`` ->
``collate_examples``). The RAVEL archive comes from ``--ravel`` or ``$HYPERDAS_TL_RAVEL``
(``../shared/ravel/data.tgz`` in this checkout). The instance is cached, so only the first run
pays for the model's generations.

Example (CPU, 2 threads, the "small" profile is the default)::

    HYPERDAS_TL_CACHE=/work/cache OMP_NUM_THREADS=2 python analyses/run_baselines.py all \\
        --attributes Country Continent --layers 2 4 6 8 10 12 14
"""

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from hyperdas_tl.baselines.das import DASConfig, train_das
from hyperdas_tl.baselines.probes import ProbeConfig, train_probes
from hyperdas_tl.baselines.sweeps import dimension_sweep, layer_sweep
from hyperdas_tl.data import (
    InstanceConfig,
    PairConfig,
    collate_examples,
    load_or_build_instance,
    load_ravel,
    make_pairs,
)
from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.data.examples import InterventionExample
from hyperdas_tl.metrics import (
    EvalConfig,
    EvalResult,
    entity_subspace_intervention,
    evaluate,
    results_to_markdown,
)
from hyperdas_tl.models import load_model

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "analyses" / "results"
SHARED_RAVEL = REPO.parent / "shared" / "ravel" / "data.tgz"
MODEL_NAME = "smollm2-135m"
EVAL_SPLITS = ("test_entity", "test_context")

logger = logging.getLogger("run_baselines")


@dataclass
class Profile:
    """Sizes of one run (``small`` fits ~30 min of 2 CPU threads; ``full`` wants a GPU)."""

    max_entities: int
    max_templates: int
    pairs_per_split: int
    eval_pairs_per_split: int
    batch_size: int
    epochs: int
    max_steps: int | None
    k: int
    lr: float


PROFILES = {
    # tiny/small use the instance caps of analyses/build_instances.py (80 entities, 6 templates,
    # every attribute), so a cached instance built there is reused here.
    "tiny": Profile(80, 6, 64, 32, 16, 1, 8, 8, 1e-2),
    "small": Profile(80, 6, 256, 96, 16, 2, 40, 16, 1e-2),
    "full": Profile(400, 12, 2000, 500, 32, 3, None, 64, 1e-3),
}


def batches_of(
    examples: list[InterventionExample], tokenizer, size: int
) -> list[InterventionBatch]:
    return [
        collate_examples(examples[i : i + size], tokenizer) for i in range(0, len(examples), size)
    ]


def build_data(args, model, profile: Profile) -> dict[str, dict[str, list[InterventionBatch]]]:
    """``{attribute: {split: batches}}`` for every target attribute."""
    domain = load_ravel(args.domain, args.ravel)
    instance = load_or_build_instance(
        model,
        domain,
        InstanceConfig(
            max_entities=profile.max_entities,
            max_templates_per_attribute=profile.max_templates,
            generation="hf_cached",
        ),
        model_name=MODEL_NAME,
    )
    data = {}
    for attribute in args.attributes:
        pairs = make_pairs(
            instance,
            attribute,
            PairConfig(
                max_pairs_per_split=profile.pairs_per_split,
                splits=("train", "val_entity", *EVAL_SPLITS),
            ),
        )
        logger.info("%s pairs: %s", attribute, pairs.counts())
        data[attribute] = {}
        for split, examples in pairs.splits.items():
            cap = profile.pairs_per_split if split == "train" else profile.eval_pairs_per_split
            if examples:
                data[attribute][split] = batches_of(
                    examples[:cap], model.tokenizer, profile.batch_size
                )
    return data


def das_config(profile: Profile, layer: int, objective: str = "das") -> DASConfig:
    return DASConfig(
        layer=layer,
        k=profile.k,
        objective=objective,  # type: ignore[arg-type]
        epochs=profile.epochs,
        max_steps=profile.max_steps,
        lr=profile.lr,
    )


def run_all(args, model, profile: Profile) -> dict:
    start = time.perf_counter()
    data = build_data(args, model, profile)
    data_seconds = time.perf_counter() - start
    sweep_eval = EvalConfig(modes=("teacher_forced",))
    test_eval = EvalConfig(max_new_tokens=args.max_new_tokens)
    report: dict = {
        "model": MODEL_NAME,
        "domain": args.domain,
        "profile": args.profile,
        "profile_sizes": profile.__dict__,
        "data_seconds": data_seconds,
        "attributes": {},
    }
    all_batches = [b for splits in data.values() for batches in splits.values() for b in batches]
    for attribute, splits in data.items():
        t0 = time.perf_counter()
        sweep = layer_sweep(
            model,
            splits["train"],
            splits["val_entity"],
            args.layers,
            das_config(profile, args.layers[0]),
            sweep_eval,
            setting="entity",
        )
        # Disentangle needs both kinds in val_entity; small pools can lack one, then use Cause.
        has_both = any(d.disentangle is not None for p in sweep.points for d in p.result.domains)
        metric = "disentangle" if has_both else "cause"
        best = sweep.best("teacher_forced", metric=metric).config.layer
        sweep_seconds = time.perf_counter() - t0
        probes = train_probes(
            model,
            all_batches,
            attribute,
            ProbeConfig(layers=tuple(args.layers), train_split="train", test_split="test_entity"),
        )
        methods = {}
        for objective in ("das", "mdas"):
            trained = train_das(model, splits["train"], das_config(profile, best, objective))
            methods[f"{objective.upper()} L{best} k{profile.k}"] = (
                trained.intervention.intervention(model),
                {"train_seconds": trained.history.seconds, "config": trained.config.to_dict()},
            )
        probe = probes.probes[best]
        k_probe = min(profile.k, len(probe.classes) - 1)
        methods[f"probe L{best} k{k_probe}"] = (
            entity_subspace_intervention(model, best, probe.subspace(k_probe)),
            {
                "probe_test_accuracy": next(
                    s.test_accuracy for s in probes.scores if s.layer == best
                )
            },
        )
        attribute_report = {
            "best_layer": best,
            "best_layer_metric": metric,
            "layer_sweep": sweep.to_dict(),
            "layer_sweep_seconds": sweep_seconds,
            "probes": probes.to_dict(),
            "methods": {},
        }
        for name, (intervention, meta) in methods.items():
            for split in EVAL_SPLITS:
                if split not in splits:
                    continue
                t1 = time.perf_counter()
                result = evaluate(
                    model,
                    splits[split],
                    intervention,
                    method=name,
                    setting=split.removeprefix("test_"),
                    config=test_eval,
                    metadata=meta,
                )
                result.metadata["eval_seconds"] = time.perf_counter() - t1
                attribute_report["methods"].setdefault(name, {})[split] = result.to_dict()
        report["attributes"][attribute] = attribute_report
        logger.info("%s done in %.0fs (best layer %d)", attribute, time.perf_counter() - t0, best)
    report["total_seconds"] = time.perf_counter() - start
    write_outputs(args.out, report)
    return report


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def write_outputs(stem: Path, report: dict) -> None:
    """Write ``stem.json`` (the whole report) and ``stem.md`` (tables rendered from it)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    results = [
        EvalResult.from_dict(result)
        for item in report["attributes"].values()
        for by_split in item["methods"].values()
        for result in by_split.values()
    ]
    lines = [
        f"# Baselines: {report['model']} on RAVEL {report['domain']} ({report['profile']} profile)",
        "",
        f"Total run time {report['total_seconds']:.0f} s (data {report['data_seconds']:.0f} s).",
        "",
        "## Test scores at the best layer (chosen on val_entity by DAS Disentangle, else Cause)",
        "",
        results_to_markdown(results),
        "## Layer sweeps (DAS, val_entity, teacher forced) and probe accuracy",
        "",
        "| attribute | layer | DAS Cause | DAS Isolate | DAS Disentangle | probe test acc |",
        "|---|---|---|---|---|---|",
    ]
    for attribute, item in report["attributes"].items():
        probe_acc = {s["layer"]: s["test_accuracy"] for s in item["probes"]["scores"]}
        for point in item["layer_sweep"]["points"]:
            layer = point["config"]["layer"]
            for domain in point["result"]["domains"]:
                lines.append(
                    f"| {attribute} | {layer} | {fmt(domain['cause'])} | "
                    f"{fmt(domain['isolate'])} | {fmt(domain['disentangle'])} | "
                    f"{fmt(probe_acc.get(layer))} |"
                )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


def run_sweep(args, model, profile: Profile) -> None:
    data = build_data(args, model, profile)
    eval_config = EvalConfig(modes=tuple(args.modes), max_new_tokens=args.max_new_tokens)
    report = {}
    for attribute, splits in data.items():
        base = das_config(profile, args.layer if args.command == "dim-sweep" else args.layers[0])
        base = DASConfig.from_dict({**base.to_dict(), "objective": args.objective})
        if args.command == "layer-sweep":
            sweep = layer_sweep(
                model, splits["train"], splits[args.eval_split], args.layers, base, eval_config
            )
        else:
            sweep = dimension_sweep(
                model, splits["train"], splits[args.eval_split], args.ks, base, eval_config
            )
        report[attribute] = sweep.to_dict()
        print(f"## {attribute}\n\n{sweep.to_markdown()}")
    args.out.with_suffix(".json").parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("all", "layer-sweep", "dim-sweep", "render"))
    parser.add_argument("--domain", default="city")
    parser.add_argument("--attributes", nargs="+", default=["Country", "Continent"])
    parser.add_argument("--ravel", default=None, help="RAVEL data.tgz or folder")
    parser.add_argument("--profile", choices=tuple(PROFILES), default="small")
    parser.add_argument("--layers", nargs="+", type=int, default=[2, 4, 6, 8, 10, 12, 14])
    parser.add_argument("--layer", type=int, default=6, help="dim-sweep layer")
    parser.add_argument("--ks", nargs="+", type=int, default=[4, 8, 16, 32, 64])
    parser.add_argument("--objective", choices=("das", "mdas"), default="das")
    parser.add_argument("--eval-split", default="val_entity")
    parser.add_argument("--modes", nargs="+", default=["teacher_forced", "generation"])
    parser.add_argument("--max-new-tokens", type=int, default=6)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.ravel = args.ravel or os.environ.get("HYPERDAS_TL_RAVEL") or str(SHARED_RAVEL)
    if not Path(args.ravel).exists():
        parser.error(f"no RAVEL data at {args.ravel}: pass --ravel or set HYPERDAS_TL_RAVEL")
    default_name = {
        "all": "baselines_smollm2",
        "layer-sweep": "layer_sweep_smollm2",
        "dim-sweep": "dim_sweep_smollm2",
        "render": "baselines_smollm2",
    }
    args.out = args.out or RESULTS / default_name[args.command]
    if args.command == "render":  # re-write the .md from an existing .json
        write_outputs(args.out, json.loads(args.out.with_suffix(".json").read_text()))
        return
    torch.manual_seed(0)
    model = load_model(MODEL_NAME, device=args.device)
    profile = PROFILES[args.profile]
    if args.command == "all":
        report = run_all(args, model, profile)
        print(Path(args.out).with_suffix(".md").read_text())
        print(f"total {report['total_seconds']:.0f}s")
    else:
        run_sweep(args, model, profile)


if __name__ == "__main__":
    main()
