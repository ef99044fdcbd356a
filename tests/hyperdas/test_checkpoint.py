"""Checkpoints: exact round trip, mismatched targets, resume == uninterrupted, a save killed at
any point, identity checks, damaged files."""

import json
import os
import shutil

import pytest
import torch
from hyperdas_helpers import build_batch, build_config

from hyperdas_tl.hyperdas.checkpoint import (
    CheckpointError,
    has_checkpoint,
    load_hyperdas,
    load_training_state,
    load_weights,
    save_checkpoint,
)
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.hyperdas.train import train_hyperdas
from hyperdas_tl.models import load_model, tiny_llama_config


def test_round_trip_is_exact(tiny_target, tmp_path):
    config = build_config(data={"domain": "city", "attributes": ["Country"]})
    model = HyperDAS(tiny_target, config)
    # a few steps away from the seeded init so the check means something
    train_hyperdas(
        model,
        [build_batch(seed=s) for s in range(2)],
        build_config(n_steps=2, data=config.data).training,
        show_progress=False,
    )
    save_checkpoint(tmp_path / "ckpt", model)
    loaded = load_hyperdas(tmp_path / "ckpt", tiny_target)
    assert loaded.config == model.config
    assert loaded.config.data == {"domain": "city", "attributes": ["Country"]}
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    batch = build_batch()
    for mode in ("soft", "one_to_one"):
        assert torch.equal(model(batch, mode).logits, loaded(batch, mode).logits)


def test_mismatched_target_fails_clearly(tiny_target, tmp_path):
    save_checkpoint(tmp_path / "ckpt", HyperDAS(tiny_target, build_config()))
    narrow = load_model("tiny-llama", device="cpu", tiny_config=tiny_llama_config(d_model=32))
    with pytest.raises(ValueError, match="d_model=64.*d_model=32"):
        load_hyperdas(tmp_path / "ckpt", narrow)
    other_layer = HyperDAS(tiny_target, build_config(layer=1))
    with pytest.raises(ValueError, match="layer=2"):
        load_weights(tmp_path / "ckpt", other_layer)
    with pytest.raises(FileNotFoundError):
        load_hyperdas(tmp_path / "nothing", tiny_target)


class Killed(Exception):
    pass


def test_resume_continues_a_killed_run_to_the_same_result(tiny_target, tmp_path):
    batches = [build_batch(seed=s) for s in range(3)]
    config = build_config(n_steps=6, checkpoint_every=2, warmup_steps=2, sparsity_start=0.3)

    straight = HyperDAS(tiny_target, config)
    result = train_hyperdas(
        straight,
        batches,
        val_batches=batches[:1],
        checkpoint_dir=tmp_path / "s",
        show_progress=False,
    )

    def kill_at_step_3(step, loss):
        if step == 3:  # dies after step 4 of 6, between the checkpoints at 4 and 6
            raise Killed

    run_dir = tmp_path / "run"
    killed = HyperDAS(tiny_target, config)
    with pytest.raises(Killed):
        train_hyperdas(
            killed,
            batches,
            val_batches=batches[:1],
            checkpoint_dir=run_dir,
            show_progress=False,
            on_step=lambda step, loss: kill_at_step_3(step, loss),
        )
    with pytest.raises(ValueError, match="resume=True"):
        train_hyperdas(HyperDAS(tiny_target, config), batches, checkpoint_dir=run_dir)

    resumed = HyperDAS(tiny_target, config)  # fresh process: rebuilt from the config
    resumed_result = train_hyperdas(
        resumed,
        batches,
        val_batches=batches[:1],
        checkpoint_dir=run_dir,
        resume=True,
        show_progress=False,
    )
    assert resumed_result.steps == result.steps == 6
    assert resumed_result.history == result.history
    for (name, a), (_, b) in zip(
        straight.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    final = load_hyperdas(run_dir, tiny_target)
    assert torch.equal(final(batches[0]).logits, straight(batches[0]).logits)


# --- crash safety ------------------------------------------------------------------------------


class Crash(Exception):
    """Stands for the process dying at that point."""


def trained_pair(tiny_target):
    """Two models (weights differ) and their optimisers, for old-vs-new checkpoint checks."""
    batches = [build_batch(seed=s) for s in range(2)]
    models = []
    for steps in (1, 2):
        model = HyperDAS(tiny_target, build_config(n_steps=steps))
        train_hyperdas(model, batches, show_progress=False)
        models.append(model)
    return models


def weights_of(directory, tiny_target):
    return load_hyperdas(directory, tiny_target).state_dict()


def same_weights(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.parent.iterdir() if p.name != directory.name)


@pytest.mark.parametrize(
    ("crash_before", "survivor"),
    [
        ("replace:0", "old"),  # config.json of the new copy not yet in place: new copy incomplete
        ("replace:1", "new"),  # checkpoint -> .old not done: the complete .tmp is newer
        ("replace:2", "new"),  # between the two renames: only .old and .tmp exist
        ("rmtree", "new"),  # swapped, .old not yet deleted
    ],
)
def test_a_save_killed_anywhere_leaves_a_checkpoint_that_loads(
    tiny_target, tmp_path, monkeypatch, crash_before, survivor
):
    import hyperdas_tl.hyperdas.checkpoint as ckpt

    old_model, new_model = trained_pair(tiny_target)
    directory = tmp_path / "run" / "checkpoint"
    save_checkpoint(directory, old_model)
    real_replace, real_rmtree = os.replace, shutil.rmtree
    calls = {"replace": 0}

    def replace(src, dst):
        if crash_before == f"replace:{calls['replace']}":
            raise Crash
        calls["replace"] += 1
        return real_replace(src, dst)

    def rmtree(path, *args, **kwargs):
        if crash_before == "rmtree" and str(path).endswith(".old"):
            raise Crash
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(ckpt.os, "replace", replace)
    monkeypatch.setattr(ckpt.shutil, "rmtree", rmtree)
    with pytest.raises(Crash):
        save_checkpoint(directory, new_model)
    monkeypatch.undo()
    if crash_before == "replace:2":
        assert not directory.exists()  # the state the old code could not recover from

    assert has_checkpoint(directory)  # recovers
    assert leftovers(directory) == []
    expected = (old_model if survivor == "old" else new_model).state_dict()
    assert same_weights(weights_of(directory, tiny_target), expected)
    save_checkpoint(directory, old_model)  # and the next save works as usual
    assert same_weights(weights_of(directory, tiny_target), old_model.state_dict())
    assert leftovers(directory) == []


def test_leftovers_of_a_kill_are_recovered_on_load_and_on_the_next_save(tiny_target, tmp_path):
    old_model, new_model = trained_pair(tiny_target)
    directory = tmp_path / "checkpoint"
    # killed while writing the new copy (no config.json yet): the old copy stands
    save_checkpoint(directory, old_model)
    partial = directory.with_name("checkpoint.tmp")
    partial.mkdir()
    (partial / "weights.safetensors").write_bytes(b"half a file")
    assert same_weights(weights_of(directory, tiny_target), old_model.state_dict())
    assert leftovers(directory) == []
    # only .old left (killed between the renames by the old two-rename code): the next save
    # must restore it first, never delete it
    directory.rename(directory.with_name("checkpoint.old"))
    save_checkpoint(tmp_path / "checkpoint", new_model)
    assert same_weights(weights_of(directory, tiny_target), new_model.state_dict())
    assert leftovers(directory) == []


def test_resume_without_a_checkpoint_says_so_at_warning(tiny_target, tmp_path, caplog):
    model = HyperDAS(tiny_target, build_config(n_steps=1))
    with caplog.at_level("WARNING"):
        train_hyperdas(
            model, [build_batch()], checkpoint_dir=tmp_path / "c", resume=True, show_progress=False
        )
    assert "no checkpoint" in caplog.text and str(tmp_path / "c") in caplog.text


# --- identity and clear errors -------------------------------------------------------------


def edit_config(directory, **changes) -> None:
    """Change architecture fields of a saved checkpoint's config.json."""
    path = directory / "config.json"
    meta = json.loads(path.read_text())
    meta["config"]["architecture"].update(changes)
    path.write_text(json.dumps(meta))


def test_a_checkpoint_with_the_flat_config_of_before_the_split_loads(tiny_target, tmp_path):
    model = HyperDAS(tiny_target, build_config(data={"domain": "city"}))
    save_checkpoint(tmp_path / "c", model)
    path = tmp_path / "c" / "config.json"
    meta = json.loads(path.read_text())
    nested = meta["config"]
    meta["config"] = {**nested["architecture"], **nested["training"], "data": nested["data"]}
    path.write_text(json.dumps(meta))
    loaded = load_hyperdas(tmp_path / "c", tiny_target)
    assert loaded.config == model.config
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_identity_is_in_the_json_and_in_the_weights(tiny_target, tmp_path):
    from hyperdas_tl.hyperdas.checkpoint import (
        read_weights_identity,
        target_config_hash,
        target_fingerprint,
    )

    save_checkpoint(tmp_path / "c", HyperDAS(tiny_target, build_config()))
    expected = {
        "target_model": "tiny-llama",
        "target_config_sha256": target_config_hash(target_fingerprint(tiny_target)),
        "layer": "2",
        "k": "4",
        "d_model": "64",
    }
    assert json.loads((tmp_path / "c" / "config.json").read_text())["identity"] == expected
    assert read_weights_identity(tmp_path / "c") == expected


def test_a_config_edited_to_another_layer_or_k_is_refused(tiny_target, tmp_path):
    save_checkpoint(tmp_path / "c", HyperDAS(tiny_target, build_config()))  # layer 2, k 4
    edit_config(tmp_path / "c", layer=1)
    with pytest.raises(
        CheckpointError,
        match=r"config.json \(its settings\) says layer=1 but weights.safetensors was saved "
        r"with layer=2",
    ):
        load_hyperdas(tmp_path / "c", tiny_target)
    edit_config(tmp_path / "c", layer=2, k=6)
    with pytest.raises(CheckpointError, match="says k=6 but weights.safetensors .* k=4"):
        load_hyperdas(tmp_path / "c", tiny_target)  # not a torch size mismatch
    edit_config(tmp_path / "c", k=4)
    load_hyperdas(tmp_path / "c", tiny_target)
    with pytest.raises(ValueError, match="k=4 but the model has k=6"):
        load_weights(tmp_path / "c", HyperDAS(tiny_target, build_config(k=6)))


def test_a_checkpoint_of_another_model_names_that_model(tiny_target, tmp_path):
    deep = load_model("tiny-llama", device="cpu", tiny_config=tiny_llama_config(n_layers=12))
    config = build_config(target_model="smollm2-135m", layer=10, n_hypernet_layers=1)
    save_checkpoint(tmp_path / "c", HyperDAS(deep, config))
    with pytest.raises(
        CheckpointError,
        match=r"trained on model 'smollm2-135m' with n_layers=12, but the given target "
        r"\('tiny-llama'\) has n_layers=4",
    ):
        load_hyperdas(tmp_path / "c", tiny_target)  # not "layer 10 is out of range"


def test_damaged_files_are_named(tiny_target, tmp_path):
    from hyperdas_tl.hyperdas.train import build_optimizer

    model = HyperDAS(tiny_target, build_config(n_steps=1))
    optimizer = build_optimizer(model, model.config.training)
    save_checkpoint(tmp_path / "c", model, optimizer=optimizer)
    weights = tmp_path / "c" / "weights.safetensors"
    blob = weights.read_bytes()
    weights.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match=f"{weights} is truncated or corrupt"):
        load_hyperdas(tmp_path / "c", tiny_target)
    weights.write_bytes(blob)
    trainer = tmp_path / "c" / "trainer_state.json"
    trainer.write_text('{"step": 1,')
    with pytest.raises(CheckpointError, match=f"{trainer} is not valid JSON"):
        load_training_state(tmp_path / "c", optimizer)
    config = tmp_path / "c" / "config.json"
    config.write_text("{not json")
    with pytest.raises(CheckpointError, match=f"{config} is not valid JSON"):
        load_hyperdas(tmp_path / "c", tiny_target)


def test_a_version_1_checkpoint_still_loads(tiny_target, tmp_path):
    from safetensors.torch import load_file, save_file

    model = HyperDAS(tiny_target, build_config())
    save_checkpoint(tmp_path / "c", model)
    meta = json.loads((tmp_path / "c" / "config.json").read_text())
    meta["version"] = 1
    del meta["identity"]
    meta["target"] = {k: meta["target"][k] for k in ("n_layers", "d_model", "d_vocab")}
    (tmp_path / "c" / "config.json").write_text(json.dumps(meta))
    weights = tmp_path / "c" / "weights.safetensors"
    save_file(load_file(weights), weights, metadata={"format": "pt"})
    loaded = load_hyperdas(tmp_path / "c", tiny_target)
    assert same_weights(loaded.state_dict(), model.state_dict())
