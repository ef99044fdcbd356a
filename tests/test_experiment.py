"""From a data choice to batches (hyperdas_tl/experiment.py)."""

from dataclasses import replace

import pytest
import torch
from bad_input import raises_bad_input

import hyperdas_tl.experiment as experiment_module
from hyperdas_tl.data import InterventionExample, collate_examples
from hyperdas_tl.experiment import (
    DataConfig,
    batch_order,
    build_experiment_data,
    ravel_city_data_config,
)
from hyperdas_tl.interchange import random_orthonormal_basis
from hyperdas_tl.metrics import EvalConfig, entity_subspace_intervention, evaluate

MICRO = DataConfig(
    max_entities=40,
    max_templates=3,
    train_pairs=16,
    eval_pairs=8,
    batch_size=4,
    instance_attributes=("Country", "Continent", "Language"),
)


def padding(batches) -> int:
    return sum(int((b.base_attention_mask == 0).sum()) for b in batches)


@pytest.mark.smollm2
def test_length_buckets_cut_padding_and_change_no_score(smollm2):
    bucketed = build_experiment_data(
        smollm2, replace(MICRO, bucketing="all"), model_name="smollm2-135m"
    )
    plain = build_experiment_data(
        smollm2, replace(MICRO, bucketing="none"), model_name="smollm2-135m"
    )
    split = "test_entity"
    assert sorted(e.base_prompt for e in bucketed.examples[split]) == sorted(
        e.base_prompt for e in plain.examples[split]
    )
    assert padding(bucketed.batches["train"]) < padding(plain.batches["train"])
    basis = random_orthonormal_basis(
        int(smollm2.cfg.d_model), 64, generator=torch.Generator().manual_seed(0)
    )
    intervention = entity_subspace_intervention(smollm2, 4, basis)
    config = EvalConfig(modes=("teacher_forced",), show_progress=False)
    scores = [
        evaluate(smollm2, data.batches[split], intervention, method="m", config=config)
        for data in (bucketed, plain)
    ]
    assert scores[0].attributes == scores[1].attributes
    for data in (bucketed, plain):  # batch_order is the order the batches were made in
        order = batch_order(data.examples["train"], "train", data.config, smollm2.tokenizer)
        size = data.config.batch_size
        remade = collate_examples(order[size : 2 * size], smollm2.tokenizer,
                                  max_label_tokens=data.config.max_label_tokens,
                                  n_ctx=int(smollm2.cfg.n_ctx))  # fmt: skip
        assert torch.equal(remade.base_ids, data.batches["train"][1].base_ids)


@pytest.mark.parametrize(
    ("bucketing", "train", "evaluation"),
    [("eval", False, True), ("all", True, True), ("none", False, False)],
)
def test_bucketing_names_the_splits_sorted_by_length(bucketing, train, evaluation):
    config = replace(MICRO, bucketing=bucketing)
    assert config.bucketed("train") is train
    assert all(config.bucketed(s) is evaluation for s in ("val_entity", "test_context"))


def test_default_bucketing_sorts_evaluation_splits_only():
    class Tokenizer:  # one token per character
        def __call__(self, texts):
            return {"input_ids": [list(t) for t in texts]}

    examples = [
        InterventionExample(
            base_prompt="b" * n, base_entity="e", source_prompt="s", source_entity="f",
            target_attribute="Country", queried_attribute="Country", concept="c", label="x",
            base_label="y", counterfactual_label="x", kind="cause",
        )
        for n in (5, 2, 9, 1, 7, 3, 8, 4)
    ]  # fmt: skip
    lengths = {
        split: [len(e.base_prompt) for e in batch_order(examples, split, MICRO, Tokenizer())]
        for split in ("train", "test_entity")
    }
    assert lengths["test_entity"] == sorted(lengths["test_entity"])
    assert lengths["train"] != sorted(lengths["train"])  # shuffled, not sorted


def test_data_config_reads_the_legacy_bucket_flag():
    legacy = {k: v for k, v in MICRO.to_dict().items() if k != "bucketing"}
    assert DataConfig.from_dict({**legacy, "bucket_by_length": True}).bucketing == "all"
    assert DataConfig.from_dict({**legacy, "bucket_by_length": False}).bucketing == "none"
    with raises_bad_input("bucketing must be one of"):
        replace(MICRO, bucketing="train")


def test_data_config_chooses_how_the_instance_is_decoded(tiny_model, monkeypatch):
    """Configs recorded before ``instance_generation`` existed read as the KV-cached decoding
    they were built with; the field reaches the instance's config (and so its cache key)."""
    legacy = {k: v for k, v in MICRO.to_dict().items() if k != "instance_generation"}
    assert DataConfig.from_dict(legacy).instance_generation == "kv_cached"
    with raises_bad_input("instance_generation must be one of"):
        replace(MICRO, instance_generation="beam")
    seen = []

    def stop(model, domain, config, **kwargs):
        seen.append(config.generation)
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment_module, "load_or_build_instance", stop)
    for backend in ("kv_cached", "prefix_cached"):
        with pytest.raises(KeyboardInterrupt):
            build_experiment_data(
                tiny_model, replace(MICRO, instance_generation=backend), model_name="tiny-llama"
            )
    assert seen == ["kv_cached", "prefix_cached"]


def test_ravel_city_data_config_is_the_analyses_city_run():
    config = ravel_city_data_config("data.tgz")
    assert (config.source, config.domain, config.ravel_path) == ("ravel", "city", "data.tgz")
    assert config.attributes == config.instance_attributes == ("Country", "Continent")
    assert (config.max_entities, config.max_templates) == (240, 6)
    assert (config.train_pairs, config.eval_pairs, config.batch_size) == (512, 48, 16)
    narrower = ravel_city_data_config(attributes=("Country",), batch_size=8)
    assert narrower.instance_attributes == ("Country",) and narrower.batch_size == 8
