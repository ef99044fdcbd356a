"""Build SmolLM2-135M instances of every RAVEL domain and of the offline GeoNames city domain.

For each domain and attribute it records, before and after filtering: entities, templates (per
split), the model's accuracy on the capped grid, cause/isolate pairs per split, what the caps
cost in coverage, and build time. Writes ``analyses/results/instances_smollm2.json`` and
``.md`` (rewritten after every domain, so a partial run leaves partial results).

Usage (CPU, ~40 min with the default caps on one shared core)::

    OMP_NUM_THREADS=1 HYPERDAS_TL_CACHE=/work/cache \\
        python analyses/build_instances.py --ravel ../shared/ravel/data.tgz
"""

import argparse
import json
import logging
import os
import time
from pathlib import Path

import torch

from hyperdas_tl.choices import GENERATION_BACKENDS
from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.data import (
    RAVEL_DOMAINS,
    InstanceConfig,
    PairConfig,
    build_geonames_city,
    check_no_leakage,
    load_or_build_instance,
    load_ravel,
    make_pairs,
)
from hyperdas_tl.data.ravel import SPLITS, RavelDomain
from hyperdas_tl.models import load_model

RESULTS = Path(__file__).parent / "results"
MODEL = "smollm2-135m"


def domain_report(domain: RavelDomain, instance, pair_config: PairConfig, seconds: float) -> dict:
    """Per-attribute statistics of one built instance."""
    attributes = {}
    for name, item in instance.attributes.items():
        all_templates = domain.templates_for(name)
        all_entities = [e for e in domain.entities() if domain.has_value(e, name)]
        pairs = make_pairs(instance, name, pair_config)
        check_no_leakage(instance, pairs)
        attributes[name] = {
            "accuracy_before_filtering": round(item.accuracy, 3),
            "template_accuracy": {
                t.text: round(item.template_accuracy(t.text), 3) for t in item.templates
            },
            "entities": {
                "available": len(all_entities),
                "capped": len(item.entities),
                "kept": {s: len(instance.kept_entities(name, s)) for s in SPLITS},
            },
            "templates": {
                "available": {s: len(domain.templates_for(name, s)) for s in SPLITS},
                "capped": {s: sum(t.split == s for t in item.templates) for s in SPLITS},
                "kept": {s: len(instance.kept_templates(name, s)) for s in SPLITS},
            },
            "coverage": {
                "prompts_available": len(all_entities) * len(all_templates),
                "prompts_run": len(item.entities) * len(item.templates),
                "fraction_run": round(
                    len(item.entities)
                    * len(item.templates)
                    / max(1, len(all_entities) * len(all_templates)),
                    4,
                ),
            },
            "pairs": pairs.counts(),
            "examples": {
                s: [e.to_dict() for e in examples[:2]] for s, examples in pairs.splits.items()
            },
        }
    return {
        "domain": domain.name,
        "source": domain.source,
        "data_checksum": domain.checksum,
        "build_seconds": round(seconds, 1),
        "instance_build_seconds": round(instance.build_seconds, 1),
        "skipped_attributes": instance.skipped_attributes,
        "attributes": attributes,
    }


def verdict(stats: dict) -> str:
    """Worth training on: accurate enough, enough kept entities, pairs in every split."""
    pairs = stats["pairs"]
    kept = stats["entities"]["kept"]
    templates = stats["templates"]["kept"]
    acc = stats["accuracy_before_filtering"]
    cause = {s: pairs.get(s, {}).get("cause", 0) for s in pairs}
    if (
        acc >= 0.3
        and kept["train"] >= 15
        and min(kept["val"], kept["test"]) >= 4
        and min(templates.values()) >= 1
        and min(cause.values()) > 0
    ):
        return "yes"
    if acc >= 0.1 and kept["train"] >= 5 and cause.get("train", 0) > 0:
        return "marginal"
    return "no"


def write_markdown(report: dict, path: Path) -> None:
    lines = [
        "# SmolLM2-135M RAVEL instances",
        "",
        f"Model `{report['model']}`; caps: {json.dumps(report['instance_config'])}; "
        f"pairs: {json.dumps(report['pair_config'])}.",
        f"Machine: {report['machine']}. Instance build time (all domains, generation + "
        f"filtering): {sum(d['instance_build_seconds'] for d in report['domains']):.0f} s; "
        f"this run: {report['total_seconds']:.0f} s.",
        "",
        "Entities/templates are `kept` after filtering, written train/val/test. Pairs are "
        "cause+isolate per split (train, val_entity, test_entity, val_context, test_context). "
        "Coverage = share of the full entity x template grid that the caps let us run.",
        "",
        "| source | domain | attribute | acc | entities kept (of capped / available) | "
        "templates kept (capped) | pairs train | entity val/test | context val/test | "
        "coverage | worth training |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dom in report["domains"]:
        for name, s in dom["attributes"].items():
            ent, tpl, pairs = s["entities"], s["templates"], s["pairs"]

            def n(split: str, pairs=pairs) -> str:
                c = pairs.get(split, {})
                return f"{c.get('cause', 0)}+{c.get('isolate', 0)}"

            lines.append(
                f"| {dom['source']} | {dom['domain']} | {name} | "
                f"{s['accuracy_before_filtering']:.2f} | "
                f"{'/'.join(str(ent['kept'][x]) for x in SPLITS)} "
                f"(of {ent['capped']} / {ent['available']}) | "
                f"{'/'.join(str(tpl['kept'][x]) for x in SPLITS)} "
                f"({'/'.join(str(tpl['capped'][x]) for x in SPLITS)}) | {n('train')} | "
                f"{n('val_entity')} / {n('test_entity')} | "
                f"{n('val_context')} / {n('test_context')} | "
                f"{s['coverage']['fraction_run']:.1%} | {s['verdict']} |"
            )
        for name, reason in dom["skipped_attributes"].items():
            lines.append(
                f"| {dom['source']} | {dom['domain']} | {name} | - | skipped: {reason} "
                "| | | | | | no |"
            )
    lines += [
        "",
        "Instance build time per domain (generation + filtering when first built; a rerun "
        "reuses the cached instance) and this run's wall time (s):",
        "",
    ]
    for dom in report["domains"]:
        lines.append(
            f"- {dom['source']}/{dom['domain']}: {dom['instance_build_seconds']:.0f} "
            f"(this run: {dom['build_seconds']:.0f})"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ravel", default=os.environ.get("HYPERDAS_TL_RAVEL"))
    parser.add_argument("--max-entities", type=int, default=80)
    parser.add_argument("--max-templates", type=int, default=6)
    parser.add_argument("--max-pairs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--generation", default="kv_cached", choices=GENERATION_BACKENDS)
    parser.add_argument("--domains", nargs="*", default=["geonames", *RAVEL_DOMAINS])
    parser.add_argument("--out", default=str(RESULTS / "instances_smollm2"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    config = InstanceConfig(
        max_entities=args.max_entities,
        max_templates_per_attribute=args.max_templates,
        batch_size=args.batch_size,
        generation=args.generation,
    )
    pair_config = PairConfig(max_pairs_per_split=args.max_pairs)
    model = load_model(MODEL, device="cpu")
    report = {
        "model": MODEL,
        "instance_config": config.to_dict(),
        "pair_config": pair_config.to_dict(),
        "machine": f"CPU, torch threads={torch.get_num_threads()}",
        "domains": [],
        "total_seconds": 0.0,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for name in args.domains:
        t0 = time.perf_counter()
        domain = build_geonames_city() if name == "geonames" else load_ravel(name, args.ravel)
        instance = load_or_build_instance(model, domain, config, model_name=MODEL)
        stats = domain_report(domain, instance, pair_config, time.perf_counter() - t0)
        for attribute in stats["attributes"].values():
            attribute["verdict"] = verdict(attribute)
        report["domains"].append(stats)
        report["total_seconds"] = time.perf_counter() - start
        out.with_suffix(".json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
        write_markdown(report, out.with_suffix(".md"))
        logging.info("%s/%s done in %.0f s", domain.source, name, stats["build_seconds"])


if __name__ == "__main__":
    raise SystemExit(run_script(main))
