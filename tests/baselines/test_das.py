import pytest
import torch
from bad_input import raises_bad_input
from das_planted_task import batches_of, planted_rows, principal_cosines, shared_planted_task

from hyperdas_tl.baselines.das import (
    DASConfig,
    DASIntervention,
    SubspaceBasis,
    select_rows,
    train_das,
)
from hyperdas_tl.metrics import EvalConfig, entity_subspace_intervention, evaluate

FAST = dict(layer=1, k=2, epochs=15, lr=0.03, show_progress=False)
SCORING = EvalConfig(max_new_tokens=1, show_progress=False)


@pytest.fixture(scope="module")
def planted():
    return shared_planted_task()


@pytest.fixture(scope="module")
def data(planted):
    train = batches_of(planted_rows(planted, 256, ("cause", "isolate"), seed=0), 32)
    test = batches_of(planted_rows(planted, 128, ("cause", "isolate"), seed=1, split="test"), 64)
    return train, test


@pytest.fixture(scope="module", params=["das", "mdas"])
def trained(request, planted, data):
    train, _ = data
    return train_das(planted.model, train, DASConfig(objective=request.param, **FAST))


def test_recovers_the_planted_subspace(planted, trained):
    basis = trained.basis
    assert torch.allclose(basis.T @ basis, torch.eye(2), atol=1e-5)
    cosines = principal_cosines(planted.u_a, basis)
    assert cosines.min() > 0.97, f"principal angle cosines {cosines.tolist()}"
    # and it is not B's plane
    assert principal_cosines(planted.u_b, basis).max() < 0.2


def test_learned_subspace_scores_cause_and_isolate_in_both_modes(planted, data, trained):
    _, test = data
    intervention = trained.intervention.intervention(planted.model)
    result = evaluate(planted.model, test, intervention, method="das", config=SCORING)
    for mode in ("teacher_forced", "generation"):
        score = result.attribute("A", mode)
        assert score.cause >= 0.95 and score.isolate >= 0.95, score


def test_controls_random_and_wrong_subspaces_do_not_cause(planted, data):
    _, test = data
    d_model = planted.model.cfg.d_model
    random_basis = torch.linalg.qr(torch.randn(d_model, 2)).Q
    for basis, name in ((random_basis, "random"), (planted.u_b, "B plane")):
        intervention = entity_subspace_intervention(planted.model, 1, basis)
        result = evaluate(planted.model, test, intervention, method=name, config=SCORING)
        score = result.attribute("A", "teacher_forced")
        assert score.cause < 0.5, (name, score)
    planted_a = entity_subspace_intervention(planted.model, 1, planted.u_a)
    result = evaluate(planted.model, test, planted_a, method="U_A", config=SCORING)
    assert result.attribute("A", "teacher_forced").disentangle == 1.0


def test_das_trains_on_cause_rows_only_and_mdas_on_all(planted, data, trained):
    train, _ = data
    n_cause = sum(int(b.is_cause.sum()) for b in train)
    n_all = sum(len(b) for b in train)
    expected = n_cause if trained.config.objective == "das" else n_all
    assert trained.history.n_train_rows == expected
    assert len(trained.history.epoch_loss) == 15
    assert trained.history.epoch_loss[-1] < trained.history.epoch_loss[0] / 10


def test_training_is_seeded_and_max_steps_stops_early(planted, data):
    train, _ = data
    config = DASConfig(layer=1, k=2, epochs=2, lr=0.03, show_progress=False, seed=3)
    first = train_das(planted.model, train, config)
    second = train_das(planted.model, train, config)
    assert torch.equal(first.basis, second.basis)
    assert first.history.step_loss == second.history.step_loss
    short = train_das(
        planted.model, train, DASConfig(layer=1, k=2, max_steps=3, show_progress=False)
    )
    assert len(short.history.step_loss) == 3


def test_gradients_reach_the_basis(planted, data):
    train, _ = data
    module = DASIntervention(planted.model.cfg.d_model, layer=1, k=2)
    batch = train[0]
    hooks = module.hooks(planted.model, batch, batch.base_ids.shape[1])
    logits = planted.model.run_with_hooks(batch.base_ids, fwd_hooks=hooks)
    logits[:, 1].logsumexp(-1).sum().backward()
    grads = [p.grad for p in module.parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_subspace_basis_is_orthonormal_by_construction():
    basis = SubspaceBasis(16, 5, seed=1).basis
    assert basis.shape == (16, 5)
    assert torch.allclose(basis.T @ basis, torch.eye(5), atol=1e-5)
    assert torch.equal(basis, SubspaceBasis(16, 5, seed=1).basis)


def test_select_rows_keeps_examples_aligned(data):
    batch = data[0][0]
    kept = select_rows(batch, batch.is_cause)
    assert len(kept) == int(batch.is_cause.sum()) == len(kept.examples)
    assert all(e.kind == "cause" for e in kept.examples)


def test_config_validation_and_round_trip():
    with raises_bad_input("objective"):
        DASConfig(layer=1, objective="adversarial")
    with raises_bad_input("k must be"):
        DASConfig(layer=1, k=0)
    with raises_bad_input("layer"):
        DASConfig(layer=-1)
    with raises_bad_input("unknown DASConfig fields"):
        DASConfig.from_dict({"layer": 1, "rank": 3})
    config = DASConfig(layer=2, k=4, objective="mdas")
    assert DASConfig.from_dict(config.to_dict()) == config


def test_rejects_a_layer_the_model_lacks_and_no_rows(planted, data):
    train, _ = data
    with raises_bad_input("out of range"):
        train_das(planted.model, train, DASConfig(layer=7, show_progress=False))
    isolate_only = [select_rows(b, ~b.is_cause) for b in train]
    with raises_bad_input("no training rows"):
        train_das(planted.model, isolate_only, DASConfig(layer=1, show_progress=False))


def test_layer_and_dimension_sweeps(planted, data):
    from hyperdas_tl.baselines.sweeps import dimension_sweep, layer_sweep

    train, test = data
    base = DASConfig(layer=0, k=2, epochs=4, lr=0.03, show_progress=False)
    layers = layer_sweep(planted.model, train, test, [0, 1], base, SCORING, setting="synthetic")
    assert [p.config.layer for p in layers.points] == [0, 1]
    assert layers.best("teacher_forced").result.domain("synthetic", "teacher_forced").cause > 0.9
    dims = dimension_sweep(planted.model, train, test, [1, 2], base, SCORING)
    assert [p.config.k for p in dims.points] == [1, 2]
    # one dimension cannot carry four values on a circle; two can
    cause = [p.result.attribute("A", "teacher_forced").cause for p in dims.points]
    assert cause[1] > cause[0]
    assert dims.best("teacher_forced", metric="cause").config.k == 2
    assert "DAS L0 k2" in dims.to_markdown()
    assert dims.to_dict()["kind"] == "dimension"
