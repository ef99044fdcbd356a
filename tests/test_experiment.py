"""From a data choice to batches (hyperdas_tl/experiment.py)."""

from dataclasses import replace

import pytest
import torch

from hyperdas_tl.data import collate_examples
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
    bucketed = build_experiment_data(smollm2, MICRO, model_name="smollm2-135m")
    plain = build_experiment_data(
        smollm2, replace(MICRO, bucket_by_length=False), model_name="smollm2-135m"
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


def test_ravel_city_data_config_is_the_analyses_city_run():
    config = ravel_city_data_config("data.tgz")
    assert (config.source, config.domain, config.ravel_path) == ("ravel", "city", "data.tgz")
    assert config.attributes == config.instance_attributes == ("Country", "Continent")
    assert (config.max_entities, config.max_templates) == (240, 6)
    assert (config.train_pairs, config.eval_pairs, config.batch_size) == (512, 48, 16)
    narrower = ravel_city_data_config(attributes=("Country",), batch_size=8)
    assert narrower.instance_attributes == ("Country",) and narrower.batch_size == 8
