import pytest
import torch
from das_planted_task import batches_of, planted_rows, shared_planted_task

from hyperdas_tl.baselines.controls import (
    full_residual_swap_intervention,
    random_subspace_intervention,
)
from hyperdas_tl.metrics import EvalConfig, evaluate, no_intervention

SCORING = EvalConfig(modes=("teacher_forced",), show_progress=False)


@pytest.fixture(scope="module")
def planted():
    return shared_planted_task()


@pytest.fixture(scope="module")
def test_batches(planted):
    rows = planted_rows(planted, 64, ("cause", "isolate"), seed=5, split="test")
    rows += planted_rows(planted, 64, ("cause", "isolate"), seed=6, split="test", attribute="B")
    return batches_of(rows, 32)


def test_full_swap_is_the_single_position_ceiling_and_no_intervention_the_floor(
    planted, test_batches
):
    model = planted.model
    swap = evaluate(model, test_batches, full_residual_swap_intervention(model, 1), method="swap",
                    config=SCORING)  # fmt: skip
    none = evaluate(model, test_batches, no_intervention, method="none", config=SCORING)
    for attribute in ("A", "B"):
        # the whole entity becomes the source's (in this task the entity token also carries the
        # query direction, so the swapped run answers whatever the source entity is asked)
        assert swap.attribute(attribute, "teacher_forced").isolate < 0.5
        # (planted rows keep pairs whose source has the base's value: ~1/4 of them)
        assert none.attribute(attribute, "teacher_forced").cause < 0.35
        assert none.attribute(attribute, "teacher_forced").isolate == 1.0
    # the swapped base position is exactly the source's entity state: same next-token logits
    batch = test_batches[0]
    hooks = full_residual_swap_intervention(model, 1)(batch, batch.base_ids.shape[1])
    swapped = model.run_with_hooks(batch.base_ids, fwd_hooks=hooks)
    source = model(batch.source_ids)
    rows = torch.arange(len(batch))
    assert torch.allclose(
        swapped[rows, batch.base_entity_last], source[rows, batch.source_entity_last], atol=1e-4
    )


def test_random_subspace_is_a_weak_control(planted, test_batches):
    model = planted.model
    result = evaluate(model, test_batches, random_subspace_intervention(model, 1, 2, seed=0),
                      method="random", config=SCORING)  # fmt: skip
    assert result.domain("synthetic", "teacher_forced").disentangle < 0.9
    # seeded: the same seed is the same subspace, another seed another one
    batch = test_batches[0]
    width = batch.base_ids.shape[1]

    def basis_of(seed):
        ((_, hook),) = random_subspace_intervention(model, 1, 2, seed=seed)(batch, width)
        return hook.keywords["basis"]

    assert torch.equal(basis_of(3), basis_of(3)) and not torch.equal(basis_of(3), basis_of(4))
    assert torch.allclose(basis_of(3).T @ basis_of(3), torch.eye(2), atol=1e-5)
