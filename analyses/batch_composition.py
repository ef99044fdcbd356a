"""What length bucketing does to the composition of the training batches: for the city data of
the earlier HyperDAS run (``experiment.ravel_city_data_config``), the mean number of distinct
target attributes, kinds, (target attribute, kind) cells, base templates and base entities per
training batch, with training batches shuffled and bucketed by length (same examples, same shuffle).

    python analyses/batch_composition.py --ravel ../shared/ravel/data.tgz
"""

import argparse
import os
import statistics
from collections.abc import Callable
from dataclasses import replace

from hyperdas_tl.cli.entry import run_script
from hyperdas_tl.data.examples import InterventionExample
from hyperdas_tl.experiment import batch_order, build_experiment_data, ravel_city_data_config
from hyperdas_tl.models import load_model

MODEL = "smollm2-135m"
FEATURES: dict[str, Callable[[InterventionExample], object]] = {
    "target attribute": lambda e: e.target_attribute,
    "kind": lambda e: e.kind,
    "(target attribute, kind)": lambda e: (e.target_attribute, e.kind),
    "queried attribute": lambda e: e.queried_attribute,
    "base template": lambda e: e.base_prompt.replace(e.base_entity, "{}"),
    "base entity": lambda e: e.base_entity,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ravel", default=os.environ.get("HYPERDAS_TL_RAVEL"))
    args = p.parse_args()
    if not args.ravel:
        p.error("give --ravel PATH or set HYPERDAS_TL_RAVEL")
    model = load_model(MODEL, device="cpu")
    config = ravel_city_data_config(args.ravel, bucketing="none")
    examples = build_experiment_data(model, config, model_name=MODEL).examples["train"]
    orders = {  # the orders build_experiment_data batches them in
        bucketed: batch_order(
            examples,
            "train",
            replace(config, bucketing="all" if bucketed else "none"),
            model.tokenizer,
        )
        for bucketed in (False, True)
    }
    size = config.batch_size
    print(f"{len(examples)} training examples, batches of {size}; mean distinct per batch:")
    print("| per batch | training not bucketed | bucketed |")
    print("| --- | --- | --- |")
    for name, feature in FEATURES.items():
        cells = []
        for order in orders.values():
            batches = [order[i : i + size] for i in range(0, len(order), size)]
            cells.append(statistics.mean(len({feature(e) for e in b}) for b in batches))
        print(f"| {name} | {cells[0]:.2f} | {cells[1]:.2f} |")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
