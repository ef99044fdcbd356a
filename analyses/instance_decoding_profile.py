"""Where an instance build's decoding time goes, and how much of it a template-prefix KV cache
saves (issue #13: a full-size instance in about 30 minutes per domain).

Three measurements (``--sections``), written to ``<out>/instance_decoding_profile.json`` and
``.md``:

1. **Shared template prefix** (tokenizer only): for every RAVEL template of each domain and a
   seeded sample of its entities, the share of prompt tokens that come before the entity and
   tokenise the same with any entity, i.e. what one KV cache per template could compute once
   instead of once per entity: the leading tokens of the prompt that equal the prefix's own
   tokens (where BPE merges the prefix's last token with the entity, that token is not shared;
   the merge rate is reported).
2. **Prompt pass vs generated tokens** (the model, fp32 unless ``--precision``): one batch of
   real prompts decoded by the builder's KV-cached greedy loop with ``max_new_tokens`` = 1 (the
   prompt pass and the first token) and = the builder's 8, timed interleaved
   (:func:`hyperdas_tl.bench.timing.interleaved`); the prompt pass's share of a batch's time
   bounds what a prefix cache can buy (Amdahl).
3. **The builder's backends** (``backends``): the same real prompts (a few seeded templates of
   the timing domain's first two attributes, with many seeded entities each, as in a
   full-size build where every entity meets every template) decoded by the instance builder's
   ``kv_cached`` and ``prefix_cached`` backends (:func:`model_generate_fn`, the builder's batch
   size), timed interleaved, and the outputs compared prompt by prompt.

    python analyses/instance_decoding_profile.py --ravel ../shared/ravel/data.tgz \\
        --out analyses/results/instance_build_avx2
"""

import argparse
import json
import random
import shlex
from functools import partial
from pathlib import Path

import torch

from hyperdas_tl.atomic_write import write_text_atomically
from hyperdas_tl.bench.timing import interleaved
from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.data.instance import InstanceConfig
from hyperdas_tl.data.instance_decoding import decoding_order, model_generate_fn
from hyperdas_tl.data.ravel import PLACEHOLDER, load_ravel
from hyperdas_tl.generation import kv_cached_greedy_generate, shared_prefix_length
from hyperdas_tl.models import SMOLLM2_NAME, load_model
from hyperdas_tl.precision import PRECISIONS, resolve_precision
from hyperdas_tl.provenance import make_reproducible, run_provenance

DOMAINS = ("city", "physical_object", "verb", "nobel_prize_winner")
SECTIONS = ("prefix", "timing", "backends")


def prefix_share(tokenizer, domain, entities: list[str]) -> dict:
    """Token counts of every (template, sampled entity with a value) prompt of ``domain``."""
    total = shared = prompts = merged = 0
    for attribute in domain.attributes:
        for template in domain.templates_for(attribute):
            prefix = template.text[: template.text.index(PLACEHOLDER)]
            prefix_ids = tokenizer(prefix)["input_ids"] if prefix else []
            for entity in entities:
                if not domain.has_value(entity, attribute):
                    continue
                ids = tokenizer(template.fill(entity))["input_ids"]
                same = 0
                while same < min(len(prefix_ids), len(ids)) and ids[same] == prefix_ids[same]:
                    same += 1
                total += len(ids)
                shared += same  # causal: these positions' keys and values see only the prefix
                prompts += 1
                merged += same < len(prefix_ids)
    return {
        "prompts": prompts,
        "mean_tokens": total / prompts,
        "shared_prefix_fraction": shared / total,
        "boundary_merge_rate": merged / prompts,
    }


def batched_prompt_tokens(tokenizer, prompts: list[str], batch_size: int) -> dict:
    """Prompt tokens the builder's prompt passes compute for ``prompts``, batched as the builder
    batches them (:func:`decoding_order`): every row's whole prompt (``kv_cached``) against each
    batch's shared prefix once (``prefix_cached``, :func:`shared_prefix_length`)."""
    rows = tokenizer(prompts)["input_ids"]

    def computed(order: list[int], share: bool) -> int:
        total = 0
        for start in range(0, len(order), batch_size):
            batch = [rows[i] for i in order[start : start + batch_size]]
            width = max(map(len, batch))
            ids = torch.tensor([r + [0] * (width - len(r)) for r in batch])
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in batch])
            prefix = shared_prefix_length(ids, mask) if share else 0
            total += prefix + len(batch) * (width - prefix)
        return total

    kv = computed(decoding_order(rows, "kv_cached"), share=False)
    prefix = computed(decoding_order(rows, "prefix_cached"), share=True)
    return {
        "prompts": len(rows),
        "batch_size": batch_size,
        "real_tokens": sum(map(len, rows)),
        "kv_cached_tokens": kv,
        "prefix_cached_tokens": prefix,
        "prefix_cached_fraction": prefix / kv,
    }


def prompt_pass_share(model, prompts: list[str], max_new_tokens: int, repeats: int) -> dict:
    """Interleaved timings of one batch decoded with 1 and with ``max_new_tokens`` tokens."""
    batch = model.tokenizer(prompts, return_tensors="pt", padding=True)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    variants = {
        f"{n} new tokens": partial(kv_cached_greedy_generate, model, ids, mask, n)
        for n in (1, max_new_tokens)
    }
    timings = interleaved(variants, repeats=repeats)
    one, full = (timings[name].median_s for name in variants)
    return {
        "batch": list(ids.shape),
        "timings": {name: t.to_dict() for name, t in timings.items()},
        "prompt_pass_share": one / full,
        "prompts_per_s": len(prompts) / full,
    }


def backend_speed(
    model, prompts: list[str], max_new_tokens: int, repeats: int, batch_size: int
) -> dict:
    """Interleaved timings of the builder's two KV-cached backends on ``prompts``, and how many
    prompts they decode differently. Each backend's check of its first batch against uncached
    decoding (once per build) runs in the untimed warm-up round."""
    backends = ("kv_cached", "prefix_cached")
    generate = {b: model_generate_fn(model, batch_size, b) for b in backends}
    outputs: dict[str, list[str]] = {}

    def run(backend: str) -> None:
        outputs[backend] = generate[backend](prompts, max_new_tokens)

    timings = interleaved({b: partial(run, b) for b in backends}, repeats=repeats)
    before, after = (timings[b].median_s for b in backends)
    differ = [i for i, (a, b) in enumerate(zip(*outputs.values(), strict=True)) if a != b]
    return {
        "prompts": len(prompts),
        "batch_size": batch_size,
        "max_new_tokens": max_new_tokens,
        "timings": {name: t.to_dict() for name, t in timings.items()},
        "speedup_median": before / after,
        "prompts_per_s": {b: len(prompts) / timings[b].median_s for b in backends},
        "outputs_differing": len(differ),
        "examples_differing": [
            {"prompt": prompts[i], **{b: outputs[b][i] for b in backends}} for i in differ[:5]
        ],
    }


def to_markdown(report: dict) -> str:
    lines = [
        "# Instance decoding: shared template prefixes and the prompt pass's share",
        "",
        f"Command: `python {shlex.join(report['provenance']['command'])}`",
        "",
    ]
    if "prefix" in report:
        lines += [
            "| domain | prompts sampled | mean tokens | shared-prefix share of tokens | "
            "prefix/entity BPE merge rate | prompt tokens computed: kv_cached | prefix_cached "
            "| ratio |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for domain, row in report["prefix"].items():
            batched = row.get("batched")
            tokens = (
                f"{batched['kv_cached_tokens']:,} | {batched['prefix_cached_tokens']:,} | "
                f"{batched['prefix_cached_fraction']:.2f}"
                if batched
                else "| |"
            )
            lines.append(
                f"| {domain} | {row['prompts']:,} | {row['mean_tokens']:.1f} | "
                f"{row['shared_prefix_fraction']:.2f} | {row['boundary_merge_rate']:.2f} | "
                f"{tokens} |"
            )
        lines += [
            "",
            "Prompt tokens computed: every sampled entity with every template of every "
            "attribute, batches of the builder's size; kv_cached sorts by length and runs every "
            "row's whole prompt, prefix_cached sorts by token ids and runs each batch's shared "
            "prefix once.",
            "",
        ]
    if "timing" in report:
        lines += [f"One batch of {report['timing_domain']} prompts (one template, seeded "
                  f"entities) per batch size, {report['dtype']}, {report['threads']} thread(s), "
                  "KV-cached greedy decoding, medians of interleaved repeats:", "",
                  "| batch [rows, tokens] | 1 new token | 8 new tokens | prompt-pass share | "
                  "prompts/s (8 tokens) |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
        for timing in report["timing"].values():
            one, full = (t["median_s"] for t in timing["timings"].values())
            lines.append(
                f"| {timing['batch']} | {one:.2f} s | {full:.2f} s | "
                f"{timing['prompt_pass_share']:.2f} | {timing['prompts_per_s']:.1f} |"
            )
        lines.append("")
    if "backends" in report:
        row = report["backends"]
        lines += [
            f"The instance builder's backends on {row['prompts']:,} real "
            f"{report['timing_domain']} prompts ({report['backend_templates']} seeded templates, "
            f"seeded entities), batches of {row['batch_size']}, {row['max_new_tokens']} new "
            f"tokens, {report['dtype']}, {report['threads']} thread(s), interleaved repeats:",
            "",
            "| backend | min s | median s | prompts/s (median) |",
            "| --- | --- | --- | --- |",
        ]
        for name, timing in row["timings"].items():
            lines.append(
                f"| {name} | {timing['min_s']:.2f} | {timing['median_s']:.2f} | "
                f"{row['prompts_per_s'][name]:.1f} |"
            )
        lines += [
            "",
            f"prefix_cached / kv_cached speed-up (median): **{row['speedup_median']:.2f}x**; "
            f"prompts decoded differently: {row['outputs_differing']} of {row['prompts']:,}.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ravel", required=True, help="RAVEL's data.tgz (or its unpacked folder)")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--domains", nargs="+", choices=DOMAINS, default=list(DOMAINS))
    p.add_argument("--entities", type=int, default=200, help="entities sampled per domain")
    p.add_argument("--timing-domain", choices=DOMAINS, default="city")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128],
                   help="rows per timed batch (32: the builder's default)")  # fmt: skip
    p.add_argument("--backend-prompts", type=int, default=512,
                   help="prompts decoded by each backend (section backends)")  # fmt: skip
    p.add_argument("--backend-templates", type=int, default=4,
                   help="templates those prompts are drawn from (section backends)")  # fmt: skip
    p.add_argument("--max-new-tokens", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--precision", choices=PRECISIONS, default="float32")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    sizes = (*args.batch_sizes, args.backend_prompts, args.backend_templates)
    if min(args.entities, *sizes, args.repeats) < 1 or args.max_new_tokens < 2:
        p.error(
            "--entities, --batch-sizes, --backend-prompts, --backend-templates, --repeats must "
            "be >= 1 and --max-new-tokens >= 2"
        )
    dtype = resolve_precision(args.precision, "cpu")
    threads = make_reproducible(0, args.threads)
    domains = {name: load_ravel(name, args.ravel) for name in args.domains}
    model = load_model(SMOLLM2_NAME, device="cpu", dtype=dtype)
    rng = random.Random(0)
    report: dict = {}
    if "prefix" in args.sections:
        report["prefix"] = {}
        for name, domain in domains.items():
            entities = domain.entities()
            sample = rng.sample(entities, min(args.entities, len(entities)))
            report["prefix"][name] = prefix_share(model.tokenizer, domain, sample)
            prompts = [
                template.fill(entity)
                for attribute in domain.attributes
                for template in domain.templates_for(attribute)
                for entity in sample
                if domain.has_value(entity, attribute)
            ]
            report["prefix"][name]["batched"] = batched_prompt_tokens(
                model.tokenizer, prompts, InstanceConfig().batch_size
            )
    timing_domain = domains.get(args.timing_domain) or load_ravel(args.timing_domain, args.ravel)
    if "timing" in args.sections:
        attribute = timing_domain.attributes[0]
        template = timing_domain.templates_for(attribute)[0]
        entities = [e for e in timing_domain.entities() if timing_domain.has_value(e, attribute)]
        report["timing"] = {}
        for size in args.batch_sizes:
            prompts = [template.fill(e) for e in rng.sample(entities, size)]
            with torch.no_grad():
                report["timing"][str(size)] = prompt_pass_share(
                    model, prompts, args.max_new_tokens, args.repeats
                )
    if "backends" in args.sections:
        # a full-size build decodes every entity with each template: sample a few templates
        # and many entities each, not a few prompts of every template
        templates = [
            (attribute, template)
            for attribute in timing_domain.attributes[:2]
            for template in timing_domain.templates_for(attribute)
        ]
        prompts = []
        per_template = args.backend_prompts // args.backend_templates
        for attribute, template in rng.sample(
            templates, min(args.backend_templates, len(templates))
        ):
            entities = [
                e for e in timing_domain.entities() if timing_domain.has_value(e, attribute)
            ]
            prompts += [
                template.fill(e) for e in rng.sample(entities, min(per_template, len(entities)))
            ]
        report["backends"] = backend_speed(
            model, prompts, args.max_new_tokens, args.repeats, InstanceConfig().batch_size
        )
    report |= {
        "timing_domain": args.timing_domain,
        "backend_templates": args.backend_templates,
        "dtype": str(dtype).removeprefix("torch."),
        "threads": threads,
        "provenance": run_provenance(
            seed=0,
            threads=threads,
            dtype=str(dtype).removeprefix("torch."),
            argv=None if argv is None else ["analyses/instance_decoding_profile.py", *argv],
        ),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(
        args.out / "instance_decoding_profile.json", json.dumps(report, indent=1) + "\n"
    )
    write_text_atomically(args.out / "instance_decoding_profile.md", to_markdown(report))


if __name__ == "__main__":
    raise SystemExit(run_script(main))
