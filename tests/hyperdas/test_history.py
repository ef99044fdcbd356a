import pytest

from hyperdas_tl.hyperdas.history import TrainingStep


def test_training_step_round_trips_and_leaves_out_unmeasured_validation():
    step = TrainingStep(step=3, loss=1.5, ce=1.25, sparsity=0.5, sparsity_weight=0.5,
                        grad_norm=2.0, running_loss=1.75)  # fmt: skip
    assert set(step.to_dict()) == {
        "step", "loss", "ce", "sparsity", "sparsity_weight", "grad_norm", "running_loss"
    }  # fmt: skip
    assert TrainingStep.from_dict(step.to_dict()) == step
    evaluated = TrainingStep(**{**step.to_dict(), "val_cause": 0.25, "val_isolate": 1.0})
    assert evaluated.to_dict()["val_cause"] == 0.25
    assert TrainingStep.from_dict(evaluated.to_dict()) == evaluated
    with pytest.raises(ValueError, match="unknown TrainingStep fields: lr"):
        TrainingStep.from_dict({**step.to_dict(), "lr": 1e-3})
