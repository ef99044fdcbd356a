"""Diagnostics behind HyperDAS's design choices on SmolLM2 + real RAVEL city (Country, Continent).

1. Residual-stream norm of position 0 (the attention sink) vs the other prompt tokens, at layers
   3 / 6 / 12 (why HyperDAS never reads or writes position 0, ``skip_attention_sink``).
2. Oracle: the *whole* residual vector of the source's entity token swapped into the base's entity
   token (k = d_model) at layers 3 / 6 / 9 / 12, ``val_entity``, teacher forced: the most Cause any
   single-position interchange at that layer can reach.
3. No-op vs oracle label cross-entropy on the first training batches (the loss scale HyperDAS
   starts from and could reach).
4. How sharp the soft selection is (largest source weight per intervenable base column, the null
   weight, the entity-to-entity weight: :func:`hyperdas_tl.faithfulness.soft_selection_summary`)
   on the first val_entity batch: fresh HyperDAS with dot and cosine scores, and the
   ``--checkpoint`` if given.

    HYPERDAS_TL_CACHE=... python analyses/hyperdas_diagnostics.py --ravel ../shared/ravel/data.tgz

Writes ``analyses/results/hyperdas_diagnostics_smollm2.json``. Short training comparisons of
HyperDAS variants are ``analyses/hyperdas_variants.py``.
"""

import argparse
import json
import os
from pathlib import Path

import torch

from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.experiment import build_experiment_data, ravel_city_data_config
from hyperdas_tl.faithfulness import soft_selection_summary
from hyperdas_tl.hyperdas import HyperDAS, HyperDASConfig
from hyperdas_tl.hyperdas.checkpoint import load_hyperdas
from hyperdas_tl.hyperdas.loss import label_token_ce
from hyperdas_tl.metrics import (
    EvalConfig,
    entity_interchange_hooks,
    entity_subspace_intervention,
    evaluate,
)
from hyperdas_tl.models import load_model
from hyperdas_tl.partial_forward import resid_stream_states

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m"


def label_ce(model, batches, hooks_for) -> dict[str, float]:
    """Mean label-token cross-entropy of cause and isolate examples under ``hooks_for(batch)``."""
    total = {True: [0.0, 0], False: [0.0, 0]}
    for batch in batches:
        with torch.no_grad(), model.hooks(fwd_hooks=hooks_for(batch)):
            logits = model(batch.base_ids, attention_mask=batch.base_attention_mask)
        ce, is_label = label_token_ce(logits, batch.labels)
        for is_cause in (True, False):
            rows = is_label & (batch.is_cause[:, None] == is_cause)
            total[is_cause][0] += float(ce[rows].sum())
            total[is_cause][1] += int(rows.sum())
    return {
        "cause_ce": total[True][0] / total[True][1],
        "isolate_ce": total[False][0] / total[False][1],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ravel", default=os.environ.get("HYPERDAS_TL_RAVEL"))
    p.add_argument("--checkpoint", type=Path, default=None, help="HyperDAS checkpoint to inspect")
    p.add_argument(
        "--out", type=Path, default=REPO / "analyses/results/hyperdas_diagnostics_smollm2.json"
    )
    args = p.parse_args()
    model = load_model(MODEL, device="cpu")
    d_model = int(model.cfg.d_model)
    data = build_experiment_data(model, ravel_city_data_config(args.ravel), model_name=MODEL)
    results: dict = {"model": MODEL, "threads": torch.get_num_threads()}

    batch = data.batches["train"][0]
    states = resid_stream_states(model, batch.source_ids, batch.source_attention_mask)
    real = batch.source_intervenable.bool()
    norms = {}
    for layer in (3, 6, 12):
        norm = states.at(layer).norm(dim=-1)
        rest = real.clone()
        rest[:, 0] = False
        norms[layer] = {
            "position_0": float(norm[:, 0].mean()),
            "other_prompt_tokens": float(norm[rest].mean()),
        }
    results["resid_norms"] = norms

    config = EvalConfig(modes=("teacher_forced",), show_progress=False)
    oracle = {}
    for layer in (3, 6, 9, 12):
        intervention = entity_subspace_intervention(model, layer, torch.eye(d_model))
        result = evaluate(
            model,
            data.batches["val_entity"],
            intervention,
            method=f"full swap L{layer}",
            config=config,
        )
        score = result.domain("city", "teacher_forced")
        oracle[layer] = {
            "cause": score.cause,
            "isolate": score.isolate,
            "disentangle": score.disentangle,
        }
    results["oracle_full_swap_val_entity"] = oracle

    first = data.batches["train"][:8]
    width = lambda b: b.base_ids.shape[1]  # noqa: E731
    results["label_ce_first_8_train_batches"] = {
        "no_intervention": label_ce(model, first, lambda b: []),
        "full_swap_L6": label_ce(
            model,
            first,
            lambda b: entity_interchange_hooks(model, 6, b, width(b), torch.eye(d_model)),
        ),
    }
    sharpness = {}
    val0 = data.batches["val_entity"][0]
    for score in ("dot", "cosine"):
        config = HyperDASConfig.build(layer=6, k=18, null_init_weight=0.5, selection_score=score)
        sharpness[f"init {score}"] = soft_selection_summary(HyperDAS(model, config), val0).to_dict()
    if args.checkpoint is not None:
        trained = load_hyperdas(args.checkpoint, model)
        name = f"checkpoint {args.checkpoint.name}"
        sharpness[name] = soft_selection_summary(trained, val0).to_dict()
    results["selection_sharpness_val_entity_batch_0"] = sharpness
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    raise SystemExit(run_script(main))
