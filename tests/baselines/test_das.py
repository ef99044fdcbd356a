import pytest
import torch
from bad_input import raises_bad_input
from das_planted_task import (
    batches_of,
    mixed_rows,
    planted_rows,
    principal_cosines,
    shared_planted_task,
)
from synthetic_batches import Row, make_batch

from hyperdas_tl.baselines.das import (
    DASConfig,
    DASIntervention,
    SubspaceBasis,
    attribute_subspace_intervention,
    concat_batches,
    regroup,
    search_lr,
    select_rows,
    train_attribute_subspaces,
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


# ------------------------------------------------------------ RAVEL's protocol: per attribute

PER_ATTRIBUTE = dict(layer=1, k=2, epochs=10, patience=3, show_progress=False)
LRS = (0.01, 0.03, 0.1)


@pytest.fixture(scope="module")
def two_attributes(planted):
    train = batches_of(mixed_rows(planted, 128, seed=0, split="train"), 32)
    val = batches_of(mixed_rows(planted, 64, seed=1, split="val"), 64)
    test = batches_of(mixed_rows(planted, 128, seed=2, split="test"), 64)
    return train, val, test


@pytest.fixture(scope="module", params=["das", "mdas"])
def per_attribute(request, planted, two_attributes):
    train, val, _ = two_attributes
    config = DASConfig(objective=request.param, **PER_ATTRIBUTE)
    subspaces = train_attribute_subspaces(planted.model, train, val, config, ["A", "B"], LRS)
    pooled = search_lr(planted.model, train, val, config, LRS)
    return subspaces, pooled


def recovers(planted, basis, attribute):
    """Whether ``basis`` is the planted plane of ``attribute`` and not the other's."""
    own, other = (planted.u_a, planted.u_b) if attribute == "A" else (planted.u_b, planted.u_a)
    return bool(principal_cosines(own, basis).min() > 0.97) and bool(
        principal_cosines(other, basis).max() < 0.2
    )


def test_per_attribute_das_recovers_each_planted_plane_and_the_pooled_one_does_not(
    planted, per_attribute
):
    subspaces, pooled = per_attribute
    for attribute in ("A", "B"):
        basis = subspaces.bases[attribute]
        assert recovers(planted, basis, attribute), (
            attribute,
            principal_cosines(planted.u_a, basis).tolist(),
            principal_cosines(planted.u_b, basis).tolist(),
        )
    # one subspace asked to carry A on A's rows and B on B's rows (and, for MDAS, to leave each
    # alone on the other's isolate rows) cannot be either plane
    assert not recovers(planted, pooled.best.basis, "A")
    assert not recovers(planted, pooled.best.basis, "B")


def test_each_row_gets_its_own_attributes_subspace(planted, two_attributes, per_attribute):
    _, _, test = two_attributes
    subspaces, pooled = per_attribute
    result = evaluate(
        planted.model, test, subspaces.intervention(planted.model), method="x", config=SCORING
    )
    pooled_result = evaluate(
        planted.model, test, pooled.best.intervention.intervention(planted.model), method="p",
        config=SCORING,
    )  # fmt: skip
    for attribute in ("A", "B"):
        score = result.attribute(attribute, "teacher_forced")
        assert score.cause >= 0.95 and score.isolate >= 0.95, score
    per, pool = (
        r.domain("synthetic", "teacher_forced").disentangle for r in (result, pooled_result)
    )
    assert pool < per - 0.2, (pool, per)


def test_validation_curve_best_epoch_and_lr_search(planted, two_attributes, per_attribute):
    _, val, _ = two_attributes
    subspaces, _ = per_attribute
    search = subspaces.searches["A"]
    assert search.lrs == list(LRS)
    best = [(r.history.best.val_disentangle, -r.history.best.val_loss) for r in search.runs]
    assert search.best_index == max(range(3), key=lambda i: (best[i], -i))
    for run in search.runs:
        history = run.history
        assert history.curve and [p.epoch for p in history.curve] == list(
            range(1, len(history.curve) + 1)
        )
        assert history.best.val_disentangle == max(p.val_disentangle for p in history.curve)
        tied = [p for p in history.curve if p.val_disentangle == history.best.val_disentangle]
        assert history.best.val_loss == min(p.val_loss for p in tied)
        assert history.n_val_rows == 64  # A's validation rows only
        if history.stopped_early:
            assert len(history.curve) == history.best_epoch + PER_ATTRIBUTE["patience"]
    # the kept basis is the best epoch's: re-scoring it gives the recorded validation score
    best = search.best
    intervention = attribute_subspace_intervention(planted.model, 1, {"A": best.basis})
    a_rows = [select_rows(b, torch.tensor([e.target_attribute == "A" for e in b.examples]))
              for b in val]  # fmt: skip
    score = evaluate(planted.model, a_rows, intervention, method="A", config=SCORING)
    assert score.attribute("A", "teacher_forced").disentangle == pytest.approx(
        best.history.best.val_disentangle
    )
    curves = subspaces.to_dict()
    assert set(curves["attributes"]) == {"A", "B"}
    assert curves["attributes"]["A"]["runs"][0]["history"]["curve"][0]["epoch"] == 1


def test_attribute_subspace_intervention_groups_rows_by_dimension(planted, two_attributes):
    _, _, test = two_attributes
    exact = attribute_subspace_intervention(planted.model, 1, {"A": planted.u_a, "B": planted.u_b})
    result = evaluate(planted.model, test, exact, method="planted", config=SCORING)
    for attribute in ("A", "B"):
        assert result.attribute(attribute, "teacher_forced").disentangle == 1.0
    # B with one dimension of its plane: two hooks (k = 2 rows, k = 1 rows), A untouched by B's
    mixed = attribute_subspace_intervention(
        planted.model, 1, {"A": planted.u_a, "B": planted.u_b[:, :1]}
    )
    assert len(mixed(test[0], test[0].base_ids.shape[1])) == 2
    result = evaluate(planted.model, test, mixed, method="mixed", config=SCORING)
    assert result.attribute("A", "teacher_forced").disentangle == 1.0
    assert result.attribute("B", "teacher_forced").cause < 0.9
    with raises_bad_input("no subspace for target attributes"):
        attribute_subspace_intervention(planted.model, 1, {"A": planted.u_a})(test[0], 3)


def test_attribute_config_validation_and_missing_rows(planted, two_attributes):
    train, val, _ = two_attributes
    with raises_bad_input("attribute must be"):
        DASConfig(layer=1, attribute="")
    with raises_bad_input("patience"):
        DASConfig(layer=1, patience=0)
    with raises_bad_input("no training rows of attribute 'C'"):
        train_das(planted.model, train, DASConfig(layer=1, attribute="C", show_progress=False))
    with raises_bad_input("at least one learning rate"):
        search_lr(planted.model, train, val, DASConfig(layer=1), [])


def test_regrouped_rows_score_exactly_as_the_original_batches(tiny_model):
    g = torch.Generator().manual_seed(0)

    def row(n_base, n_source, kind):
        base = torch.randint(1000, 3000, (n_base,), generator=g).tolist()
        source = torch.randint(1000, 3000, (n_source,), generator=g).tolist()
        label = torch.randint(1000, 3000, (2,), generator=g).tolist()
        return Row(base, 1, source, n_source - 1, label, kind=kind)

    shapes = [(4, 3), (7, 5), (5, 6), (3, 4), (6, 3), (8, 7), (4, 5)]
    batches = [
        make_batch([row(b, s, ("cause", "isolate")[i % 2]) for i, (b, s) in enumerate(shapes[:3])]),
        make_batch([row(b, s, ("cause", "isolate")[i % 2]) for i, (b, s) in enumerate(shapes[3:])]),
    ]
    merged = concat_batches(batches)
    assert len(merged) == 7 and merged.base_ids.shape[1] == 10  # 8 prompt + 2 label tokens
    assert merged.examples == batches[0].examples + batches[1].examples
    regrouped = regroup(batches, 5)
    assert [len(b) for b in regrouped] == [5, 2]
    assert regrouped[1].base_ids.shape[1] == 10 and regrouped[0].source_ids.shape[1] == 6
    basis = torch.linalg.qr(torch.randn(tiny_model.cfg.d_model, 8)).Q
    intervention = entity_subspace_intervention(tiny_model, 1, basis)
    config = EvalConfig(modes=("teacher_forced",), show_progress=False)
    first = evaluate(tiny_model, batches, intervention, method="x", config=config)
    second = evaluate(tiny_model, regrouped, intervention, method="x", config=config)
    assert first.judgements == second.judgements
    assert DASConfig(layer=1, batch_size=4).batch_size == 4
    with raises_bad_input("batch_size"):
        DASConfig(layer=1, batch_size=0)
