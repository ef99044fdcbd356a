import json
from dataclasses import replace

import pytest
from bad_input import raises_bad_input
from tiny_experiment import tiny_experiment_data

from hyperdas_tl.compare import HYPERDAS_METHODS
from hyperdas_tl.demo import DEMO_MD, DemoConfig, demo_verdicts, run_demo
from hyperdas_tl.faithfulness import majority_label_rate
from hyperdas_tl.hyperdas.config import HyperDASConfig
from hyperdas_tl.stats import BootstrapConfig


def tiny_demo_config() -> DemoConfig:
    config = DemoConfig(layer=1, k=4)
    settings = replace(
        config.settings,
        das_max_epochs=1,
        das_patience=1,
        hyperdas=HyperDASConfig.build(
            target_model="tiny-llama", n_hypernet_layers=2, n_selection_heads=4, n_steps=2,
            eval_every=2, val_batches=1,
        ),
        bootstrap=BootstrapConfig(n_resamples=200),
    )  # fmt: skip
    return replace(config, settings=settings)


@pytest.fixture(scope="module")
def demo(tiny_model, tmp_path_factory):
    data = tiny_experiment_data(
        tiny_model.tokenizer, batch_size=16, splits=("train", "val_entity", "test_entity")
    )
    out = tmp_path_factory.mktemp("demo")
    metadata = {"provenance": {"command": ["hyperdas_tl", "demo"]}}
    return data, out, run_demo(tiny_model, data, tiny_demo_config(), out_dir=out,
                               metadata=metadata)  # fmt: skip


def test_demo_scores_the_three_methods_on_the_same_examples(demo):
    data, out, result = demo
    report = result.report
    assert set(report.methods) == {"no intervention", "DAS", *HYPERDAS_METHODS}
    ids = {
        method: {r.example_id for r in report.records if r.method == method and r.split == split}
        for split in ("val_entity", "test_entity")
        for method in report.methods
    }
    assert len({frozenset(v) for v in ids.values()}) == 1
    for split in ("val_entity", "test_entity"):
        assert result.constant_cause[split] == majority_label_rate(data.batches[split])


def test_best_readout_is_chosen_on_validation_and_verdicts_follow_the_intervals(demo):
    _, _, result = demo
    report = result.report
    val = {m: report.score(m, "val_entity").pooled.disentangle.mean for m in HYPERDAS_METHODS}
    assert val[result.best_readout] == max(val.values())
    bar = result.constant_cause["test_entity"]
    no_op, constant, das = result.verdicts
    d = report.difference(f"{result.best_readout} - no intervention", "test_entity").disentangle
    assert no_op.interval == (d.mean, d.lo, d.hi) and no_op.holds == (d.lo > 0)
    cause = report.score(result.best_readout, "test_entity").pooled.cause
    assert constant.interval == (cause.mean, cause.lo, cause.hi)
    assert constant.holds == (cause.lo > bar)
    assert das.holds == (das.interval[1] > 0)
    assert result.shows_effect == (no_op.holds and constant.holds and das.holds)


def test_demo_writes_its_verdicts_beside_the_summary(demo):
    _, out, result = demo
    summary = json.loads((out / "summary.json").read_text())
    assert summary["demo"] == json.loads(json.dumps(result.to_dict()))
    assert summary["provenance"] == {"command": ["hyperdas_tl", "demo"]}
    text = (out / DEMO_MD).read_text()
    assert result.best_readout in text and "constant answer" in text


def test_verdicts_against_hand_made_intervals(demo):
    _, _, result = demo
    best, verdicts = demo_verdicts(result.report, constant_cause=1.0, test_split="test_entity")
    assert best == result.best_readout
    assert not verdicts[1].holds  # nothing beats a constant answer that is always right
    best, verdicts = demo_verdicts(result.report, constant_cause=-1.0, test_split="test_entity")
    assert verdicts[1].holds


def test_demo_config_refuses_a_test_split_it_does_not_score():
    with raises_bad_input("add it to settings.eval_splits"):
        DemoConfig(test_split="test_context")
    with raises_bad_input("seeds must name"):
        DemoConfig(seeds=())
