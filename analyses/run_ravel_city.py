"""HyperDAS vs DAS / MDAS / probe subspaces on SmolLM2-135M and real RAVEL city, same examples.

One command, phases written as they finish (``<out>/report.json``, ``<out>/report.md``):

1. data: the model-specific RAVEL instance (cached) -> cause/isolate pairs per attribute;
2. layer sweep: DAS at each ``--layers`` (short training), Disentangle on ``val_entity``
   (teacher forced) picks the layer;
3. baselines at that layer: DAS, MDAS (same k as HyperDAS), probes at every swept layer, and the
   probe-weight subspace as an interchange;
4. HyperDAS at that layer (checkpoint in ``<out>/checkpoint``);
5. every method on ``test_entity`` and ``test_context`` in both judging modes; HyperDAS with all
   three read-outs.

    HYPERDAS_TL_CACHE=... python analyses/run_ravel_city.py --ravel ../shared/ravel/data.tgz
"""

import argparse
import json
import logging
import os
import time
from pathlib import Path

import torch

from hyperdas_tl.baselines.das import DASConfig, train_das
from hyperdas_tl.baselines.probes import ProbeConfig, train_probes
from hyperdas_tl.baselines.sweeps import layer_sweep
from hyperdas_tl.data import collate_examples
from hyperdas_tl.data_config import BUCKETINGS
from hyperdas_tl.experiment import TEST_SPLITS, build_experiment_data, ravel_city_data_config
from hyperdas_tl.hyperdas import HyperDAS, HyperDASConfig
from hyperdas_tl.hyperdas.checkpoint import load_hyperdas
from hyperdas_tl.hyperdas.run import evaluate_hyperdas
from hyperdas_tl.hyperdas.train import train_hyperdas
from hyperdas_tl.metrics import (
    EvalConfig,
    EvalResult,
    entity_subspace_intervention,
    evaluate,
    results_to_markdown,
)
from hyperdas_tl.models import load_model
from hyperdas_tl.precision import model_dtype, precision_name
from hyperdas_tl.provenance import run_provenance

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m"
CITY = ravel_city_data_config()  # the defaults of the data flags
logger = logging.getLogger("run_ravel_city")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ravel", default=os.environ.get("HYPERDAS_TL_RAVEL"))
    p.add_argument("--domain", default="city")
    p.add_argument("--attributes", nargs="+", default=list(CITY.attributes))
    p.add_argument("--layers", nargs="+", type=int, default=[3, 6, 9, 12, 15])
    p.add_argument("--k", type=int, default=18, help="rank for DAS, MDAS and HyperDAS")
    p.add_argument("--max-entities", type=int, default=CITY.max_entities)
    p.add_argument("--max-templates", type=int, default=CITY.max_templates)
    p.add_argument("--train-pairs", type=int, default=CITY.train_pairs)
    p.add_argument("--eval-pairs", type=int, default=CITY.eval_pairs)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--bucketing",
        choices=BUCKETINGS,
        default=CITY.bucketing,
        help="which splits are length-bucketed (DataConfig.bucketing; none: the batching of "
        "runs made before the option existed, such as the committed ravel_city_smollm2 reports)",
    )
    p.add_argument("--sweep-steps", type=int, default=60)
    p.add_argument("--das-epochs", type=int, default=2)
    p.add_argument("--das-lr", type=float, default=1e-2)
    p.add_argument("--hyperdas-steps", type=int, default=400)
    p.add_argument("--hyperdas-lr", type=float, default=3e-4)
    p.add_argument(
        "--hyperdas-head-lr",
        type=float,
        default=1e-3,
        help="learning rate of the selection and Householder heads",
    )
    p.add_argument(
        "--null-init-weight",
        type=float,
        default=0.5,
        help="starting null ('keep base') weight of the selection",
    )
    p.add_argument("--selection-score", choices=("dot", "cosine"), default="dot")
    p.add_argument("--n-hypernet-layers", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0, help="HyperDAS training seed (data fixed)")
    p.add_argument("--out", type=Path, default=REPO / "analyses/results/ravel_city_smollm2")
    p.add_argument(
        "--phases",
        nargs="+",
        choices=("sweep", "baselines", "hyperdas"),
        default=["sweep", "baselines", "hyperdas"],
        help="run a subset (e.g. HyperDAS in a second process beside the baselines)",
    )
    p.add_argument("--layer", type=int, default=None, help="skip the sweep: use this layer")
    p.add_argument(
        "--modes",
        nargs="+",
        choices=("teacher_forced", "generation"),
        default=["teacher_forced", "generation"],
        help="judging modes of the test scores",
    )
    p.add_argument(
        "--from-checkpoint",
        action="store_true",
        help="hyperdas phase: score <out>/checkpoint instead of training",
    )
    p.add_argument("--resume", action="store_true", help="hyperdas phase: continue the checkpoint")
    p.add_argument("--checkpoint-name", default="checkpoint", help="<out>/<name>: HyperDAS weights")
    p.add_argument("--report-name", default="report", help="<out>/<name>.json and .md")
    p.add_argument(
        "--render",
        nargs="+",
        default=None,
        metavar="JSON",
        help="only write <out>/<report-name>.md from these report JSONs (results concatenated)",
    )
    return p.parse_args()


class Report:
    """Accumulates results and rewrites report.json / report.md after every phase."""

    def __init__(self, out: Path, meta: dict, name: str = "report") -> None:
        self.out = out
        self.name = name
        self.data: dict = {"seconds": {}, **meta, "results": []}
        self.results: list[EvalResult] = []
        out.mkdir(parents=True, exist_ok=True)

    def add(self, results: list[EvalResult]) -> None:
        self.results.extend(results)
        self.data["results"] = [r.to_dict() for r in self.results]
        self.save()

    def save(self) -> None:
        layer_origin = "picked by the DAS sweep" if "layer_sweep" in self.data else "given"
        (self.out / f"{self.name}.json").write_text(json.dumps(self.data, indent=2) + "\n")
        lines = [
            f"# {MODEL} on RAVEL {self.data['domain']}: HyperDAS vs DAS / MDAS / probes",
            "",
            f"Layer {self.data.get('layer')} ({layer_origin}), k = {self.data['k']}; "
            f"examples per split: `{json.dumps(self.data.get('examples', {}))}`.",
            f"Run times (s): `{json.dumps({k: round(v) for k, v in self.data['seconds'].items()})}`"
            f" on {self.data['machine']}.",
            "",
            results_to_markdown(self.results) if self.results else "(no scores yet)",
        ]
        if "layer_sweep" in self.data:
            lines += ["", "## DAS layer sweep (val_entity, teacher forced)", ""]
            lines += ["| layer | Cause | Isolate | Disentangle |", "|---|---|---|---|"]
            for row in self.data["layer_sweep"]:
                lines.append(
                    f"| {row['layer']} | {row['cause']:.3f} | {row['isolate']:.3f} | "
                    f"{row['disentangle']:.3f} |"
                )
        if "probe_accuracy" in self.data:
            lines += ["", "## Probe test accuracy by layer (test_entity)", ""]
            for attribute, rows in self.data["probe_accuracy"].items():
                cells = ", ".join(f"L{r['layer']}: {r['test_accuracy']:.2f}" for r in rows)
                lines.append(f"- {attribute}: {cells}")
        (self.out / f"{self.name}.md").write_text("\n".join(lines) + "\n")

    def timed(self, name: str, start: float) -> None:
        self.data["seconds"][name] = time.perf_counter() - start
        self.save()


def mean_over_domain(result: EvalResult, mode: str, metric: str) -> float:
    values = [getattr(d, metric) for d in result.domains if d.mode == mode]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.render:
        render(args)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    report = Report(
        args.out,
        {
            "model": MODEL,
            "domain": args.domain,
            "attributes": args.attributes,
            "k": args.k,
            "args": {k: str(v) for k, v in vars(args).items()},
            "machine": f"CPU x{os.cpu_count()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads",
        },
        args.report_name,
    )
    model = load_model(MODEL, device="cpu")
    # what made the report (commit, package versions, command, threads); recorded only: the
    # run's seeding stays as it was, so earlier reports replay
    report.data["provenance"] = run_provenance(
        seed=args.seed, dtype=precision_name(model_dtype(model))
    )

    start = time.perf_counter()
    data_config = ravel_city_data_config(
        args.ravel,
        domain=args.domain,
        attributes=tuple(args.attributes),
        max_entities=args.max_entities,
        max_templates=args.max_templates,
        train_pairs=args.train_pairs,
        eval_pairs=args.eval_pairs,
        batch_size=args.batch_size,
        bucketing=args.bucketing,
    )
    data = build_experiment_data(model, data_config, model_name=MODEL)
    report.data["examples"] = data.counts()
    report.data["data_config"] = data_config.to_dict()
    report.timed("data", start)
    train, val = data.batches["train"], data.batches["val_entity"]
    eval_config = EvalConfig(modes=tuple(args.modes), max_new_tokens=args.max_new_tokens)

    if args.layer is not None:
        layer = args.layer
        report.data["layer"] = layer
    else:
        layer = run_sweep(args, model, train, val, report)
    if "baselines" in args.phases:
        run_baselines(args, model, data, layer, report, eval_config)
    if "hyperdas" in args.phases:
        run_hyperdas(args, model, data, data_config, layer, report, eval_config)
    logger.info("done: %s", args.out / f"{args.report_name}.md")


def render(args: argparse.Namespace) -> None:
    """Concatenate the results of several report JSONs into one markdown report."""
    merged: dict = {}
    results: list[EvalResult] = []
    for path in args.render:
        data = json.loads(Path(path).read_text())
        seconds = {**data.get("seconds", {}), **merged.get("seconds", {})}  # first file wins
        merged = {**data, **{k: v for k, v in merged.items() if k != "results"}}
        merged["seconds"] = seconds
        results += [EvalResult.from_dict(r) for r in data.get("results", [])]
    report = Report(args.out, merged, args.report_name)
    report.add(results)


def run_sweep(args, model, train, val, report: Report) -> int:
    """DAS at each layer (short training), Disentangle on val_entity picks the layer."""
    start = time.perf_counter()
    sweep = layer_sweep(
        model,
        train,
        val,
        args.layers,
        DASConfig(layer=args.layers[0], k=args.k, max_steps=args.sweep_steps, lr=args.das_lr),
        EvalConfig(modes=("teacher_forced",)),
        setting="val_entity",
    )
    rows = []
    for point in sweep.points:
        rows.append(
            {
                "layer": point.config.layer,
                **{
                    m: mean_over_domain(point.result, "teacher_forced", m)
                    for m in ("cause", "isolate", "disentangle")
                },
            }
        )
    layer = max(
        rows, key=lambda r: -1.0 if r["disentangle"] != r["disentangle"] else r["disentangle"]
    )["layer"]
    report.data["layer_sweep"] = rows
    report.data["layer"] = layer
    report.timed("layer_sweep", start)
    return layer


def run_baselines(args, model, data, layer: int, report: Report, eval_config) -> None:
    """DAS, MDAS and probe subspaces at ``layer``, scored on the test splits."""
    train = data.batches["train"]
    start = time.perf_counter()
    methods = {}
    for objective in ("das", "mdas"):
        trained = train_das(
            model,
            train,
            DASConfig(layer=layer, k=args.k, objective=objective, epochs=args.das_epochs,
                      lr=args.das_lr),
        )  # fmt: skip
        methods[f"{objective.upper()} L{layer} k{args.k}"] = trained.intervention.intervention(
            model
        )
    all_batches = [b for batches in data.batches.values() for b in batches]
    probe_rows = {}
    for attribute in args.attributes:
        probes = train_probes(
            model,
            all_batches,
            attribute,
            ProbeConfig(layers=tuple(args.layers), train_split="train", test_split="test_entity"),
        )
        probe_rows[attribute] = [
            {"layer": s.layer, "test_accuracy": s.test_accuracy} for s in probes.scores
        ]
        probe = probes.probes[layer]
        k_probe = min(args.k, len(probe.classes) - 1)
        methods[f"probe[{attribute}] L{layer} k{k_probe}"] = entity_subspace_intervention(
            model, layer, probe.subspace(k_probe)
        )
    report.data["probe_accuracy"] = probe_rows
    report.timed("baselines_train", start)

    start = time.perf_counter()
    for split in TEST_SPLITS:
        for name, intervention in methods.items():
            batches = data.batches[split]
            if name.startswith("probe["):  # a probe's subspace is scored on its own attribute
                attribute = name[len("probe[") : name.index("]")]
                examples = [e for e in data.examples[split] if e.target_attribute == attribute]
                batches = [
                    collate_examples(examples[i : i + args.batch_size], model.tokenizer)
                    for i in range(0, len(examples), args.batch_size)
                ]
                if not batches:
                    continue
            report.add(
                [evaluate(model, batches, intervention, method=name, setting=split,
                          config=eval_config)]
            )  # fmt: skip
    report.timed("baselines_eval", start)


def run_hyperdas(args, model, data, data_config, layer: int, report: Report, eval_config) -> None:
    """HyperDAS at the same layer and k, all three read-outs scored on the test splits."""
    train, val = data.batches["train"], data.batches["val_entity"]
    start = time.perf_counter()
    config = HyperDASConfig.build(
        target_model=MODEL,
        layer=layer,
        k=args.k,
        n_hypernet_layers=args.n_hypernet_layers,
        n_steps=args.hyperdas_steps,
        lr=args.hyperdas_lr,
        head_lr=args.hyperdas_head_lr,
        null_init_weight=args.null_init_weight,
        selection_score=args.selection_score,
        cache_target_states=True,
        eval_every=50,
        val_batches=6,
        checkpoint_every=50,
        seed=args.seed,
        data=data_config.to_dict(),
    )
    if args.from_checkpoint:
        hyperdas = load_hyperdas(args.out / args.checkpoint_name, model)
        config = hyperdas.config
    else:
        hyperdas = HyperDAS(model, config)
        trained = train_hyperdas(
            hyperdas,
            train,
            val_batches=val,
            checkpoint_dir=args.out / args.checkpoint_name,
            resume=args.resume,
        )
        last = trained.history[-1].to_dict() if trained.history else None
        report.data["hyperdas_final_loss"] = last
        report.data["hyperdas_validation"] = [
            {k: r.to_dict()[k] for k in ("step", "running_loss", "val_cause", "val_isolate")}
            for r in trained.history
            if r.val_cause is not None
        ]
        report.timed("hyperdas_train", start)
    report.data["hyperdas_config"] = config.to_dict()

    start = time.perf_counter()
    score = config.architecture.selection_score
    name = "HyperDAS" if score == "dot" else f"HyperDAS-{score}"
    report.add(evaluate_hyperdas(hyperdas, data, eval_config=eval_config, name=name))
    report.timed("hyperdas_eval", start)


if __name__ == "__main__":
    main()
