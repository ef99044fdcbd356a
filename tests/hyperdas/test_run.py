"""The end-to-end path the CLI runs: real SmolLM2, offline GeoNames data, tiny caps."""

import json
import shutil
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
    hyperdas=PROFILES["quick"].hyperdas.with_fields(n_hypernet_layers=2, n_steps=3, eval_every=2),
    eval_modes=("teacher_forced",),  # generation judging is covered in tests/test_metrics.py
)


@pytest.mark.smollm2
def test_train_writes_results_and_a_checkpoint_that_re_evaluates_identically(smollm2, tmp_path):
    run = train_and_evaluate(MICRO, out_dir=tmp_path, target=smollm2, show_progress=False)
    assert run.train.steps == 3
    saved = json.loads((tmp_path / "results.json").read_text())
    methods = {r["method"] for r in saved["results"]}
    assert methods == {"HyperDAS (soft)", "HyperDAS (one_to_many)", "HyperDAS (one_to_one)"}
    assert {r["setting"] for r in saved["results"]} == {"test_entity", "test_context"}
    assert (tmp_path / "checkpoint" / "config.json").is_file()
    assert "Cause" in (tmp_path / "results.md").read_text()

    again = evaluate_checkpoint(
        tmp_path / "checkpoint", eval_modes=MICRO.eval_modes, show_progress=False
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
         "--no-cache-states", "--lr", "5e-5"]
    )  # fmt: skip
    config = profile_from_args(args).hyperdas
    training = config.training
    assert (training.head_lr, config.architecture.null_init_weight, training.lr) == (
        2e-3,
        0.4,
        5e-5,
    )
    assert not training.cache_target_states
    default = profile_from_args(build_parser().parse_args(["train"])).hyperdas.training
    assert default.head_lr is None and default.cache_target_states  # on by default


# --- nothing lost, nothing silent (tiny model + oracle data, see tests/oracle_run.py) -------


@pytest.fixture
def oracle(tmp_path, monkeypatch):
    """The oracle RAVEL folder (the instance cache answers every stored value)."""
    from oracle_run import use_oracle_cache, write_ravel

    use_oracle_cache(tmp_path / "cache", monkeypatch)
    return write_ravel(tmp_path / "ravel")


def tiny_profile(ravel, **hyperdas):
    from hyperdas_tl.hyperdas.config import HyperDASConfig

    settings = dict(layer=2, k=4, n_hypernet_layers=1, n_steps=2, eval_every=2)
    settings.update(hyperdas)
    return replace(
        PROFILES["small"],
        data=DataConfig(
            source="ravel", ravel_path=str(ravel), train_pairs=8, eval_pairs=4, batch_size=4
        ),
        hyperdas=HyperDASConfig.build(**settings),
        eval_modes=("teacher_forced",),
    )


def no_model(*args, **kwargs):
    raise AssertionError("the model was loaded before the bad input was found")


def test_a_late_failure_keeps_the_results_of_finished_splits(
    oracle, tiny_target, tmp_path, monkeypatch
):
    from oracle_run import fail_evaluation_on

    import hyperdas_tl.hyperdas.run as run_module

    real_evaluate = fail_evaluation_on("test_context", monkeypatch)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="empty after normalisation"):
        train_and_evaluate(tiny_profile(oracle), model_name="tiny-llama", out_dir=out,
                           target=tiny_target, show_progress=False)  # fmt: skip
    saved = json.loads((out / "results.json").read_text())
    assert saved["complete"] is False and saved["finished_splits"] == ["test_entity"]
    assert {r["setting"] for r in saved["results"]} == {"test_entity"}
    assert len(saved["results"]) == 3  # every read-out of the finished split
    assert "test_entity" in (out / "results.md").read_text()
    assert (out / "checkpoint" / "config.json").is_file()
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]

    monkeypatch.setattr(run_module, "evaluate_interventions", real_evaluate)
    again = evaluate_checkpoint(out / "checkpoint", out_dir=out, eval_modes=("teacher_forced",),
                                show_progress=False)  # fmt: skip
    assert {r.setting for r in again.results} == {"test_entity", "test_context"}
    assert json.loads((out / "results.json").read_text())["complete"] is True


def saved_training_checkpoint(out, target, profile, model_name="tiny-llama"):
    from hyperdas_tl.hyperdas.checkpoint import save_checkpoint
    from hyperdas_tl.hyperdas.model import HyperDAS
    from hyperdas_tl.hyperdas.train import build_optimizer

    config = profile.hyperdas.with_fields(target_model=model_name, data=profile.data.to_dict())
    model = HyperDAS(target, config)
    save_checkpoint(
        out / "checkpoint", model, optimizer=build_optimizer(model, model.config.training)
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("rerun", r"already holds a checkpoint .* pass --resume"),
        ("other model", r"trained on model 'smollm2-135m', not 'tiny-llama'; pass --model"),
        ("other layer", r"trained with layer=2, but this run asks for layer=1 \(--layer\)"),
        ("other data", r"trained on other data: train_pairs=8 there, train_pairs=16 in this run"),
        ("no optimiser", r"holds no training state .* cannot be resumed"),
        ("bad attribute", r"attributes \['Favourite Colour'\] are not in the ravel 'city'"),
        ("full disk", r"has only 1 MiB free; a run needs at least 100 MiB"),
    ],
)
def test_preflight_finds_bad_input_before_the_model_loads(
    oracle, tiny_target, tmp_path, monkeypatch, case, message
):
    import hyperdas_tl.run_dir as run_dir
    import hyperdas_tl.run_start as run_start

    monkeypatch.setattr(run_start, "load_model", no_model)
    out, profile, resume = tmp_path / "out", tiny_profile(oracle), True
    if case == "rerun":
        saved_training_checkpoint(out, tiny_target, profile)
        resume = False
    elif case == "other model":
        saved_training_checkpoint(out, tiny_target, profile, model_name="smollm2-135m")
    elif case == "other layer":
        saved_training_checkpoint(out, tiny_target, profile)
        profile = replace(profile, hyperdas=profile.hyperdas.with_fields(layer=1))
    elif case == "other data":
        saved_training_checkpoint(out, tiny_target, profile)
        profile = replace(profile, data=replace(profile.data, train_pairs=16))
    elif case == "no optimiser":
        from hyperdas_tl.hyperdas.checkpoint import save_checkpoint
        from hyperdas_tl.hyperdas.model import HyperDAS

        config = profile.hyperdas.with_fields(
            target_model="tiny-llama", data=profile.data.to_dict()
        )
        save_checkpoint(out / "checkpoint", HyperDAS(tiny_target, config))
    elif case == "bad attribute":
        profile = replace(profile, data=replace(profile.data, attributes=("Favourite Colour",)))
    elif case == "full disk":
        usage = shutil.disk_usage(tmp_path)
        monkeypatch.setattr(run_dir.shutil, "disk_usage", lambda p: usage._replace(free=2**20))
    with pytest.raises(ValueError, match=message):
        train_and_evaluate(profile, model_name="tiny-llama", out_dir=out, resume=resume)


def test_a_checkpoint_loads_on_its_target_in_the_dtype_it_was_trained_against(
    oracle, tiny_target, tmp_path
):
    """``load_checkpoint`` (what ``evaluate`` and analyses/run_faithfulness.py load through): a
    bf16-trained HyperDAS is scored on a bf16 target unless told otherwise."""
    import copy

    import torch

    from hyperdas_tl.hyperdas.run import load_checkpoint
    from hyperdas_tl.precision import model_dtype

    saved_training_checkpoint(tmp_path, copy.deepcopy(tiny_target).to(torch.bfloat16),
                              tiny_profile(oracle))  # fmt: skip
    checkpoint = tmp_path / "checkpoint"
    loaded = load_checkpoint(checkpoint, device="cpu", allow_emulated_bf16=True)
    assert loaded.config.architecture.target_dtype == "bfloat16"
    assert model_dtype(loaded.target) == torch.bfloat16 and loaded.data.batches["train"]
    override = load_checkpoint(checkpoint, device="cpu", precision="float32")
    assert model_dtype(override.target) == torch.float32
