"""Short HyperDAS training runs on SmolLM2 + real RAVEL city (Country, Continent), layer 6,
k = 18, N = 8, batch 16, to compare training variants before a long run.

Each run prints the loss parts every 5 steps, Cause / Isolate on ``val_entity`` (teacher forced,
soft read-out) every ``--eval-every`` steps, the one-to-many read-out at the end, and how much
soft weight the source's entity token sends to the base's entity token. Results are appended as
one JSON line per run to ``--out``.

    python analyses/hyperdas_variants.py --name sink_skipped --steps 60
    python analyses/hyperdas_variants.py --name reads_sink --steps 60 \\
        --extra '{"skip_attention_sink": false}'
    python analyses/hyperdas_variants.py --name null_start --steps 60 \\
        --extra '{"head_lr": 1e-3, "null_init_weight": 0.5}'
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch

from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.experiment import build_experiment_data, ravel_city_data_config
from hyperdas_tl.faithfulness import soft_selection_summary
from hyperdas_tl.hyperdas import HyperDAS, HyperDASConfig
from hyperdas_tl.hyperdas.train import teacher_forced_accuracy, train_hyperdas
from hyperdas_tl.models import load_model

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--name", required=True)
    p.add_argument("--ravel", default=os.environ.get("HYPERDAS_TL_RAVEL"))
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--layer", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--extra", default="{}", help="JSON of further HyperDASConfig fields")
    p.add_argument(
        "--out", type=Path, default=REPO / "analyses/results/hyperdas_variants_smollm2.jsonl"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(MODEL, device="cpu")
    data = build_experiment_data(
        model, ravel_city_data_config(args.ravel, batch_size=args.batch_size), model_name=MODEL
    )
    extra = json.loads(args.extra)
    config = HyperDASConfig.build(
        target_model=MODEL, layer=args.layer, k=18, n_hypernet_layers=8, n_steps=args.steps,
        lr=args.lr, eval_every=args.eval_every, val_batches=6, cache_target_states=True, **extra,
    )  # fmt: skip
    hyperdas = HyperDAS(model, config)
    start = time.perf_counter()
    losses = []

    def on_step(step: int, loss) -> None:
        losses.append({"step": step + 1, "cause_ce": float(loss.cause_ce.detach()),
                       "isolate_ce": float(loss.isolate_ce.detach())})  # fmt: skip
        if (step + 1) % 5 == 0:
            print(args.name, losses[-1], flush=True)

    val = data.batches["val_entity"]
    result = train_hyperdas(hyperdas, data.batches["train"], val_batches=val,
                            show_progress=False, on_step=on_step)  # fmt: skip
    one_to_many = teacher_forced_accuracy(
        hyperdas, val[: config.training.val_batches], "one_to_many"
    )
    sharpness = soft_selection_summary(hyperdas, val[0])
    record = {
        "name": args.name,
        "config": {"lr": args.lr, "layer": args.layer, "batch_size": args.batch_size, **extra},
        "steps": args.steps,
        "seconds": round(time.perf_counter() - start),
        "threads": args.threads,
        "val_soft": [
            {"step": r.step, "cause": r.val_cause, "isolate": r.val_isolate}
            for r in result.history
            if r.val_cause is not None
        ],
        "val_one_to_many": {"cause": one_to_many.cause, "isolate": one_to_many.isolate},
        "entity_to_entity_mass": sharpness.entity_to_entity_mass,
        "null_mass_at_base_entity": sharpness.null_mass_at_base_entity,
        "losses": losses,
    }
    with args.out.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "losses"}, indent=2))


if __name__ == "__main__":
    raise SystemExit(run_script(main))
