"""Training: learns a planted concept; stops clearly on NaN."""

import logging

import pytest
import torch
from hyperdas_helpers import build_batch, build_config
from hyperdas_planted import planted_batches, planted_target

from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.hyperdas.train import (
    NonFiniteLossError,
    batch_index,
    build_optimizer,
    teacher_forced_accuracy,
    train_hyperdas,
)


@pytest.mark.parametrize("score", ["dot", "cosine"])
def test_learns_a_planted_concept(score):
    target, r_star = planted_target(k_star=4)
    train = planted_batches(target, r_star, n=1280, batch_size=16, seed=1)
    val = planted_batches(target, r_star, n=64, batch_size=32, seed=2)
    config = build_config(
        k=4, n_steps=80, lr=1e-3, r0_lr=3e-2, eval_every=40, val_batches=2, selection_score=score
    )
    model = HyperDAS(target, config)
    before = teacher_forced_accuracy(model, val)
    result = train_hyperdas(model, train, val_batches=val, show_progress=False)
    # Without the right intervention the model says the base entity: chance is 0 here.
    assert before.cause is not None and before.cause <= 0.2
    assert result.validation is not None and result.validation.cause >= 0.8
    assert teacher_forced_accuracy(model, val, "one_to_one").cause >= 0.8
    first, last = result.history[0].loss, result.history[-1].running_loss
    assert last < first


def test_non_finite_loss_stops_with_a_clear_message(tiny_target):
    model = HyperDAS(tiny_target, build_config())
    with torch.no_grad():
        model.selection.query.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="step 0: .*not finite"):
        train_hyperdas(model, [build_batch()], show_progress=False)


def test_optimizer_groups_put_r0_apart(tiny_target):
    config = build_config(lr=1e-4, r0_lr=1e-2)
    model = HyperDAS(tiny_target, config)
    optimizer = build_optimizer(model, config.training)
    r0_group = optimizer.param_groups[-1]
    assert r0_group["lr"] == 1e-2 and r0_group["weight_decay"] == 0.0
    assert {id(p) for p in r0_group["params"]} == {
        id(p) for p in model.subspace.r0_holder.parameters()
    }
    n_optimised = sum(len(g["params"]) for g in optimizer.param_groups)
    assert n_optimised == len(model.trainable_parameters())


def test_head_lr_applies_to_selection_and_householder_mlp_only(tiny_target):
    config = build_config(lr=1e-4, head_lr=3e-3, r0_lr=1e-2)
    model = HyperDAS(tiny_target, config)
    optimizer = build_optimizer(model, config.training)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    r0 = {id(p) for p in model.subspace.r0_holder.parameters()}
    for module, expected in ((model.selection, 3e-3), (model.hypernetwork, 1e-4)):
        assert {lr_of[id(p)] for p in module.parameters() if p.requires_grad} == {expected}
    assert {lr_of[id(p)] for p in model.subspace.parameters() if id(p) not in r0} == {3e-3}
    assert {lr_of[i] for i in r0} == {1e-2}


def test_cached_target_states_give_the_same_run(tiny_target, monkeypatch, caplog):
    batches = [build_batch(seed=s) for s in range(2)]
    weights, calls = [], []
    original = HyperDAS.target_states

    def counted(self, batch):
        calls[-1] += 1
        return original(self, batch)

    monkeypatch.setattr(HyperDAS, "target_states", counted)
    for cache in (False, True):
        calls.append(0)
        model = HyperDAS(tiny_target, build_config(n_steps=5, cache_target_states=cache))
        train_hyperdas(model, batches, show_progress=False)
        weights.append(model.state_dict())
    assert calls == [5, 2]  # frozen passes: one per step without the cache, one per batch with it
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name
    calls.append(0)  # a single-epoch run does not cache (nothing would be reused)
    model = HyperDAS(tiny_target, build_config(n_steps=2, cache_target_states=True))
    result = train_hyperdas(model, batches, show_progress=False)
    assert calls[-1] == 2 and result.state_cache_bytes == 0
    calls.append(0)  # the cache is on by default and reports what it holds
    model = HyperDAS(tiny_target, build_config(n_steps=6))
    result = train_hyperdas(model, batches, show_progress=False)
    assert calls[-1] == 2 and result.state_cache_bytes > 0
    calls.append(0)  # past its memory cap a batch is recomputed on every visit
    model = HyperDAS(tiny_target, build_config(n_steps=6, state_cache_max_gb=0.0))
    with caplog.at_level(logging.INFO, logger="hyperdas_tl.hyperdas.train"):
        result = train_hyperdas(model, batches, show_progress=False)
    assert calls[-1] == 6 and result.state_cache_bytes == 0
    full = [r for r in caplog.records if "state cache full" in r.getMessage()]
    assert len(full) == 1  # said once, not on every batch it cannot hold


def test_batch_order_is_a_function_of_seed_and_step():
    order = [batch_index(step, 5, seed=0) for step in range(10)]
    assert sorted(order[:5]) == list(range(5)) and sorted(order[5:]) == list(range(5))
    assert order == [batch_index(step, 5, seed=0) for step in range(10)]
    assert order != [batch_index(step, 5, seed=1) for step in range(10)]


def test_bad_training_inputs_raise(tiny_target, tmp_path):
    model = HyperDAS(tiny_target, build_config())
    with pytest.raises(ValueError, match="empty"):
        train_hyperdas(model, [], show_progress=False)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        train_hyperdas(
            model, [build_batch()], build_config(checkpoint_every=2).training, show_progress=False
        )
    # a training run cannot change the architecture (train_hyperdas takes only the training
    # settings); what it can get wrong is the seed the model was initialised with
    with pytest.raises(ValueError, match="differs"):
        train_hyperdas(model, [build_batch()], build_config(seed=3).training, show_progress=False)
