"""Checkpoints: exact round trip, mismatched targets, resume == uninterrupted."""

import pytest
import torch
from hyperdas_helpers import build_batch, build_config

from hyperdas_tl.hyperdas.checkpoint import load_hyperdas, load_weights, save_checkpoint
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
        build_config(n_steps=2, data=config.data),
        progress=False,
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
        straight, batches, val_batches=batches[:1], checkpoint_dir=tmp_path / "s", progress=False
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
            progress=False,
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
        progress=False,
    )
    assert resumed_result.steps == result.steps == 6
    assert resumed_result.history == result.history
    for (name, a), (_, b) in zip(
        straight.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    final = load_hyperdas(run_dir, tiny_target)
    assert torch.equal(final(batches[0]).logits, straight(batches[0]).logits)
