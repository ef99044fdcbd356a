"""An :class:`~hyperdas_tl.experiment.ExperimentData` on the tiny RAVEL-format city dataset, with
labels from a fake generator (no model generation, no download), collated with SmolLM2's
tokenizer so any tiny Llama can run it."""

import random

from data.tiny_ravel import fake_generator, tiny_ravel_files

from hyperdas_tl.data import (
    InstanceConfig,
    PairConfig,
    build_instance,
    collate_examples,
    make_pairs,
)
from hyperdas_tl.data.pairs import PAIR_SPLITS
from hyperdas_tl.data.ravel import parse_ravel_domain, ravel_file_names
from hyperdas_tl.experiment import DataConfig, ExperimentData

ATTRIBUTES = ("Country", "Continent")


def tiny_experiment_data(
    tokenizer,
    *,
    pairs: int = 24,
    batch_size: int = 8,
    splits: tuple[str, ...] = tuple(PAIR_SPLITS),
    seed: int = 0,
) -> ExperimentData:
    """Cause / isolate pairs of Country and Continent in ``splits`` (default: all of RAVEL's),
    as :func:`~hyperdas_tl.experiment.build_experiment_data` batches them."""
    files = tiny_ravel_files()
    domain = parse_ravel_domain(
        "city", {role: files[name] for role, name in ravel_file_names("city").items()}
    )
    instance = build_instance(
        None,
        domain,
        InstanceConfig(attributes=ATTRIBUTES, max_entities=None, seed=seed),
        model_name="tiny-llama",
        generate=fake_generator(domain),
    )
    config = DataConfig(
        source="ravel",
        attributes=ATTRIBUTES,
        train_pairs=pairs,
        eval_pairs=pairs,
        batch_size=batch_size,
        instance_attributes=ATTRIBUTES,
        seed=seed,
        bucketing="none",  # the batches below: training shuffled, nothing sorted by length
    )
    data = ExperimentData(config=config, instance=instance)
    for attribute in ATTRIBUTES:
        made = make_pairs(
            instance, attribute, PairConfig(max_pairs_per_split=pairs, splits=splits, seed=seed)
        )
        for split, examples in made.splits.items():
            data.examples.setdefault(split, []).extend(examples)
    rng = random.Random(seed)
    for split, examples in data.examples.items():
        if split == "train":
            examples = list(examples)
            rng.shuffle(examples)
        data.batches[split] = [
            collate_examples(examples[i : i + batch_size], tokenizer)
            for i in range(0, len(examples), batch_size)
        ]
    return data
