"""The end-to-end path the CLI runs: real SmolLM2, offline GeoNames data, tiny caps."""

import json
from dataclasses import replace

import pytest

from hyperdas_tl.cli import main
from hyperdas_tl.experiment import DataConfig
from hyperdas_tl.hyperdas.run import PROFILES, evaluate_checkpoint, train_and_evaluate

MICRO = replace(
    PROFILES["quick"],
    data=DataConfig(
        max_entities=40,
        max_templates=3,
        train_pairs=16,
        eval_pairs=4,
        batch_size=4,
        instance_attributes=("Country", "Continent", "Language"),
    ),
    hyperdas=replace(PROFILES["quick"].hyperdas, n_hypernet_layers=2, n_steps=3, eval_every=2),
    eval_modes=("teacher_forced",),  # generation judging is covered in tests/test_metrics.py
)


@pytest.mark.smollm2
def test_train_writes_results_and_a_checkpoint_that_re_evaluates_identically(smollm2, tmp_path):
    run = train_and_evaluate(MICRO, out_dir=tmp_path, target=smollm2, progress=False)
    assert run.train.steps == 3
    saved = json.loads((tmp_path / "results.json").read_text())
    methods = {r["method"] for r in saved["results"]}
    assert methods == {"HyperDAS (soft)", "HyperDAS (one_to_many)", "HyperDAS (one_to_one)"}
    assert {r["setting"] for r in saved["results"]} == {"test_entity", "test_context"}
    assert (tmp_path / "checkpoint" / "config.json").is_file()
    assert "Cause" in (tmp_path / "results.md").read_text()

    again = evaluate_checkpoint(
        tmp_path / "checkpoint", eval_modes=MICRO.eval_modes, progress=False
    )
    first = {(r.method, r.setting): r.to_dict()["attributes"] for r in run.results}
    second = {(r.method, r.setting): r.to_dict()["attributes"] for r in again.results}
    assert first == second  # deterministic scoring from the saved weights and recorded data


def test_cli_reports_bad_input_without_a_traceback(capsys, tmp_path):
    code = main(["train", "--attributes", "Favourite Colour", "--model", "tiny-llama",
                 "--out", str(tmp_path), "--max-entities", "5"])  # fmt: skip
    assert code == 2
    assert "Favourite Colour" in capsys.readouterr().err


def test_data_config_round_trips_through_json():
    config = DataConfig(attributes=("Country",), instance_attributes=("Country", "Language"))
    assert DataConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_cli_training_options_reach_the_profile():
    from hyperdas_tl.cli import build_parser, profile_from_args

    args = build_parser().parse_args(
        ["train", "--profile", "quick", "--head-lr", "2e-3", "--null-init-weight", "0.4",
         "--cache-states", "--lr", "5e-5"]
    )  # fmt: skip
    config = profile_from_args(args).hyperdas
    assert (config.head_lr, config.null_init_weight, config.lr) == (2e-3, 0.4, 5e-5)
    assert config.cache_target_states
    default = profile_from_args(build_parser().parse_args(["train"])).hyperdas
    assert default.head_lr is None and not default.cache_target_states
