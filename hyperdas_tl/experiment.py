"""From a data choice to batches: the one path the CLI, the notebooks and ``analyses/`` share.

``DataConfig`` names the data (the offline GeoNames city domain or a real RAVEL domain), the
target attributes and the caps; :func:`build_experiment_data` builds (or reuses from the cache)
the model-specific instance, draws cause/isolate pairs per target attribute and split, and
collates them. HyperDAS trains one hypernetwork on the union of the attributes' training pairs
(the concept text tells them apart); scores are reported per attribute.
"""

import logging
import os
import random
from dataclasses import dataclass, field
from typing import Any

from hyperdas_tl.data import (
    GeonamesConfig,
    InstanceConfig,
    PairConfig,
    RavelInstance,
    build_geonames_city,
    collate_examples,
    load_or_build_instance,
    load_ravel,
    make_pairs,
)
from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.data.examples import InterventionExample
from hyperdas_tl.data_config import DataConfig as DataConfig
from hyperdas_tl.data_config import DataSource as DataSource
from hyperdas_tl.target import TargetModel

logger = logging.getLogger(__name__)

TEST_SPLITS = ("test_entity", "test_context")


def ravel_city_data_config(ravel_path: str | None = None, **overrides: Any) -> DataConfig:
    """The data of the earlier real-RAVEL city runs of ``analyses/`` (the faithfulness
    checkpoint's, replayed by ``run_benchmark.py``; the HyperDAS diagnostics and variant runs):
    Country + Continent, 240 entities, 6 templates per attribute, 512 training and 48 evaluation
    pairs per attribute, batches of 16; any field overridable by keyword (the instance is built
    for the target attributes unless ``instance_attributes`` is given)."""
    settings: dict[str, Any] = {
        "source": "ravel",
        "domain": "city",
        "attributes": ("Country", "Continent"),
        "ravel_path": ravel_path,
        "max_entities": 240,
        "max_templates": 6,
        "train_pairs": 512,
        "eval_pairs": 48,
        "batch_size": 16,
    }
    settings.update(overrides)
    settings.setdefault("instance_attributes", tuple(settings["attributes"]))
    return DataConfig(**settings)


@dataclass
class ExperimentData:
    """Collated batches per split (all attributes together) and the examples behind them."""

    config: DataConfig
    instance: RavelInstance
    examples: dict[str, list[InterventionExample]] = field(default_factory=dict)
    """``{split: examples}`` over every target attribute."""
    batches: dict[str, list[InterventionBatch]] = field(default_factory=dict)
    """``{split: batches}``; training batches mix attributes (shuffled, seeded)."""

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {attribute/kind: n}}``."""
        out: dict[str, dict[str, int]] = {}
        for split, examples in self.examples.items():
            counts: dict[str, int] = {}
            for e in examples:
                key = f"{e.target_attribute}/{e.kind}"
                counts[key] = counts.get(key, 0) + 1
            out[split] = counts
        return out


def sorted_by_length(
    examples: list[InterventionExample], tokenizer: Any
) -> list[InterventionExample]:
    """``examples`` stably sorted by (base prompt + label, source prompt) token lengths."""
    if not examples:
        return examples
    base = tokenizer([e.base_prompt + e.label for e in examples])["input_ids"]
    source = tokenizer([e.source_prompt for e in examples])["input_ids"]
    order = sorted(range(len(examples)), key=lambda i: (len(base[i]), len(source[i])))
    return [examples[i] for i in order]


def batch_order(
    examples: list[InterventionExample], split: str, config: DataConfig, tokenizer: Any
) -> list[InterventionExample]:
    """``examples`` of ``split`` in the order :func:`build_experiment_data` batches them:
    the training split shuffled (seeded by ``config.seed``), then, where
    ``config.bucketed(split)``, stably sorted by length (:func:`sorted_by_length`)."""
    ordered = list(examples)
    if split == "train":
        random.Random(config.seed).shuffle(ordered)
    if config.bucketed(split):
        ordered = sorted_by_length(ordered, tokenizer)
    return ordered


def load_domain(config: DataConfig):
    """The :class:`~hyperdas_tl.data.RavelDomain` named by ``config``."""
    if config.source == "geonames":
        return build_geonames_city(GeonamesConfig(seed=config.seed))
    return load_ravel(config.domain, config.ravel_path or os.environ.get("HYPERDAS_TL_RAVEL"))


def build_experiment_data(
    model: TargetModel, config: DataConfig, *, model_name: str
) -> ExperimentData:
    """Instance (cached per model/data/caps) -> pairs per attribute -> batches per split."""
    domain = load_domain(config)
    missing = [a for a in config.attributes if a not in domain.attributes]
    if missing:
        raise ValueError(
            f"attributes {missing} are not in the {config.source} {config.domain!r} domain; "
            f"known: {sorted(domain.attributes)}"
        )
    instance = load_or_build_instance(
        model,
        domain,
        InstanceConfig(
            max_entities=config.max_entities,
            max_templates_per_attribute=config.max_templates,
            attributes=config.instance_attributes,
            generation=config.instance_generation,
            seed=config.seed,
        ),
        model_name=model_name,
    )
    data = ExperimentData(config=config, instance=instance)
    for attribute in config.attributes:
        pairs = make_pairs(
            instance,
            attribute,
            PairConfig(
                max_pairs_per_split=max(config.train_pairs, config.eval_pairs), seed=config.seed
            ),
        )
        logger.info("%s pairs: %s", attribute, pairs.counts())
        for split, examples in pairs.splits.items():
            cap = config.train_pairs if split == "train" else config.eval_pairs
            data.examples.setdefault(split, []).extend(examples[:cap])
    for split, examples in data.examples.items():
        examples = batch_order(examples, split, config, model.tokenizer)
        data.batches[split] = [
            collate_examples(
                examples[i : i + config.batch_size],
                model.tokenizer,
                max_label_tokens=config.max_label_tokens,
                n_ctx=int(model.cfg.n_ctx),
            )
            for i in range(0, len(examples), config.batch_size)
        ]
    if not data.batches.get("train"):
        raise ValueError(
            "no training pairs survived the model-specific filtering; raise max_entities / "
            "max_templates or choose attributes the model knows"
        )
    return data
