import pytest
import torch
from bad_input import raises_bad_input
from das_planted_task import batches_of, planted_rows, principal_cosines, shared_planted_task

from hyperdas_tl.baselines.probes import (
    LinearProbe,
    ProbeConfig,
    fit_probe,
    probe_samples,
    train_probes,
)
from hyperdas_tl.metrics import EvalConfig, entity_subspace_intervention, evaluate

CONFIG = ProbeConfig(test_split="test", show_progress=False)


@pytest.fixture(scope="module")
def planted():
    return shared_planted_task()


@pytest.fixture(scope="module")
def batches(planted):
    train = planted_rows(planted, 256, ("cause", "isolate"), seed=0, split="train")
    test = planted_rows(planted, 128, ("cause", "isolate"), seed=1, split="test")
    return batches_of(train + test, 64)


@pytest.fixture(scope="module")
def sweeps(planted, batches):
    return {a: train_probes(planted.model, batches, a, CONFIG) for a in ("A", "B")}


def test_probe_decodes_the_planted_attribute_at_every_layer(sweeps):
    for sweep in sweeps.values():
        assert [s.layer for s in sweep.scores] == [0, 1]
        for score in sweep.scores:
            assert score.n_classes == 4
            assert score.train_accuracy == 1.0 and score.test_accuracy >= 0.95, score
        assert sweep.best_layer == 0  # ties go to the shallowest layer


def test_probe_subspace_is_orthonormal_and_spans_the_attribute_plane(planted, sweeps):
    for attribute, plane, other in (
        ("A", planted.u_a, planted.u_b),
        ("B", planted.u_b, planted.u_a),
    ):
        basis = sweeps[attribute].probes[1].subspace(k=2)
        assert basis.shape == (planted.model.cfg.d_model, 2)
        assert torch.allclose(basis.T @ basis, torch.eye(2), atol=1e-5)
        assert principal_cosines(plane, basis).min() > 0.9
        assert principal_cosines(other, basis).max() < 0.3


def test_probe_subspace_scores_through_metrics(planted, batches, sweeps):
    basis = sweeps["A"].probes[1].subspace(k=2)
    test = [b for b in batches if b.examples[0].split == "test"]
    intervention = entity_subspace_intervention(planted.model, 1, basis)
    result = evaluate(
        planted.model,
        test,
        intervention,
        method="probe A",
        config=EvalConfig(max_new_tokens=1, show_progress=False),
    )
    for mode in ("teacher_forced", "generation"):
        score = result.attribute("A", mode)
        assert score.cause >= 0.9 and score.isolate >= 0.9, score


def test_samples_take_both_sides_and_deduplicate(batches):
    samples = probe_samples(batches, "A")
    assert len(samples) == len(set(zip(samples.prompts, samples.entity_last, strict=True)))
    assert {len(p) for p in samples.prompts} == {2, 3}  # base and source prompts
    assert set(samples.splits) == {"train", "test"}
    with raises_bad_input("no example queries"):
        probe_samples(batches, "C")


def test_fit_probe_on_separable_blobs_and_subspace_rank():
    centres = torch.eye(6)[:3] * 5
    targets = torch.arange(3).repeat(20)
    features = centres[targets] + 0.1 * torch.randn(60, 6)
    weight, bias, mean, scale = fit_probe(features, targets, 3)
    probe = LinearProbe(0, "x", ("a", "b", "c"), weight, bias, mean, scale)
    assert (probe.predict(features) == targets).all()
    assert probe.subspace().shape == (6, 2)  # 3 classes: rank 2 after centring the rows
    with raises_bad_input("k must be"):
        probe.subspace(k=3)


def test_config_validation():
    with raises_bad_input("both"):
        ProbeConfig(train_split="train", test_split="train")
    with raises_bad_input("at least one layer"):
        ProbeConfig(layers=())
    with raises_bad_input("l2"):
        ProbeConfig(l2=-1.0)
