"""How many instance labels change when the target runs in bf16 instead of fp32.

Builds (or reuses from the cache) the same model-specific instance with the target in each
precision and counts prompts whose extracted label differs, and changes in the kept
templates / entities. Writes ``<out>/instance_precision_smollm2.json``.

    python analyses/compare_instance_precision.py --max-entities 40 --max-templates 3
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
from hyperdas_tl.provenance import make_reproducible, run_provenance


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
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
    config = InstanceConfig(
        max_entities=args.max_entities,
        max_templates_per_attribute=args.max_templates,
        attributes=tuple(args.attributes),
        generation="kv_cached",
    )
    instances = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        model = load_model("smollm2-135m", device="cpu", dtype=dtype)
        instances[name] = load_or_build_instance(model, domain, config, model_name="smollm2-135m")
    a, b = instances["float32"], instances["bfloat16"]
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
    result = {
        "config": config.to_dict(),
        "source": args.source,
        "per_attribute": per_attribute,
        "provenance": run_provenance(seed=0, threads=threads),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "instance_precision_smollm2.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(per_attribute, indent=2))


if __name__ == "__main__":
    raise SystemExit(run_script(main))
