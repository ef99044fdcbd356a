"""How many instance labels change with the target's precision or the instance's decoding.

Builds (or reuses from the cache) the same model-specific instance twice, varying one thing
(``--vary``): ``precision``, the target in fp32 and in bf16 (KV-cached decoding), or
``generation``, the ``kv_cached`` and ``prefix_cached`` decoders (the target in
``--precision``). Counts prompts whose extracted label differs, judgements that differ, and
changes in the kept templates / entities. Writes ``<out>/instance_<vary>_smollm2.json``.

    python analyses/compare_instances.py --max-entities 40 --max-templates 3 --out analyses/results
    python analyses/compare_instances.py --vary generation --precision bfloat16 --source ravel \\
        --ravel ../shared/ravel/data.tgz --domain physical_object --attributes Category Texture \\
        --max-entities 563 --max-templates 6 --out analyses/results/instance_build_avx512bf16
"""

import argparse
import json
from pathlib import Path

import torch

from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.data.instance import InstanceConfig
from hyperdas_tl.data.instance_cache import load_or_build_instance
from hyperdas_tl.experiment import DataConfig, load_domain
from hyperdas_tl.models import load_model
from hyperdas_tl.precision import resolve_precision
from hyperdas_tl.provenance import make_reproducible, run_provenance


def compare(a, b) -> dict:
    """Per attribute: labels and judgements that differ between instances ``a`` and ``b``."""
    per_attribute = {}
    for attribute in a.attributes:
        x, y = a.attribute(attribute), b.attribute(attribute)
        prompts = [(t.text, e) for t in x.templates for e in x.entities]
        differ = sum(x.label(t, e) != y.label(t, e) for t, e in prompts)
        correct_differ = sum(x.correct[t][e] != y.correct[t][e] for t, e in prompts)
        per_attribute[attribute] = {
            "prompts": len(prompts),
            "labels_differ": differ,
            "judgement_differs": correct_differ,
            "kept_templates": [len(x.kept_templates), len(y.kept_templates)],
            "kept_entities": [len(x.kept_entities), len(y.kept_entities)],
            "kept_entities_symmetric_difference": len(set(x.kept_entities) ^ set(y.kept_entities)),
            "degenerate_labels": [x.degenerate_labels, y.degenerate_labels],
        }
    return per_attribute


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--vary", choices=("precision", "generation"), default="precision")
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                   help="the target's precision with --vary generation")  # fmt: skip
    p.add_argument("--source", choices=("geonames", "ravel"), default="geonames")
    p.add_argument("--domain", default="city")
    p.add_argument("--ravel", default=None)
    p.add_argument("--max-entities", type=int, default=40)
    p.add_argument("--max-templates", type=int, default=3)
    p.add_argument("--attributes", nargs="+", default=["Country", "Continent", "Language"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("runs/instance_precision"))
    args = p.parse_args()
    threads = make_reproducible(0, args.threads)
    domain = load_domain(DataConfig(source=args.source, domain=args.domain, ravel_path=args.ravel))

    def config(generation: str) -> InstanceConfig:
        return InstanceConfig(
            max_entities=args.max_entities,
            max_templates_per_attribute=args.max_templates,
            attributes=tuple(args.attributes),
            generation=generation,
        )

    if args.vary == "precision":
        variants = {
            name: (getattr(torch, name), config("kv_cached")) for name in ("float32", "bfloat16")
        }
    else:
        dtype = resolve_precision(args.precision, "cpu")
        variants = {name: (dtype, config(name)) for name in ("kv_cached", "prefix_cached")}
    instances = {}
    for name, (dtype, instance_config) in variants.items():
        model = load_model("smollm2-135m", device="cpu", dtype=dtype)
        instances[name] = load_or_build_instance(
            model, domain, instance_config, model_name="smollm2-135m"
        )
    result = {
        "vary": args.vary,
        "variants": list(variants),
        "configs": {name: c.to_dict() for name, (_, c) in variants.items()},
        "dtypes": {name: str(d).removeprefix("torch.") for name, (d, _) in variants.items()},
        "build_seconds": {name: i.build_seconds for name, i in instances.items()},
        "source": args.source,
        "domain": args.domain,
        "per_attribute": compare(*instances.values()),
        "provenance": run_provenance(seed=0, threads=threads),
    }
    if args.vary == "precision":  # the layout of the committed instance_precision_smollm2.json
        result["config"] = result["configs"]["float32"]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"instance_{args.vary}_smollm2.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["per_attribute"], indent=2))


if __name__ == "__main__":
    raise SystemExit(run_script(main))
