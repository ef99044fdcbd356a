import pytest
from jaxtyping import TypeCheckError

from hyperdas_tl.hyperdas.config import (
    ARCHITECTURE_FIELD_NAMES,
    TRAINING_FIELD_NAMES,
    HyperDASArchitecture,
    HyperDASConfig,
    HyperDASTraining,
    default_k,
)


def test_defaults_follow_the_paper():
    config = HyperDASConfig()
    training = config.training
    assert (training.cause_weight, training.isolate_weight) == (3.5, 0.5)
    assert training.sparsity_max == 1.5 and training.sparsity_start == 0.5
    assert config.architecture.n_hypernet_layers == 8
    assert default_k(4096) == 128 and default_k(576) == 18 and default_k(64) == 2


def test_resolved_for_fills_and_clips():
    config = HyperDASConfig.build(n_hypernet_layers=8, lr=3e-4)
    resolved = config.resolved_for(n_layers=4, d_model=64)
    arch = resolved.architecture
    assert (arch.layer, arch.k, arch.n_hypernet_layers) == (2, 2, 4)
    assert config.training.head_lr is None and resolved.training.head_lr == 3e-4
    with pytest.raises(ValueError, match="out of range"):
        HyperDASConfig.build(layer=4).resolved_for(n_layers=4, d_model=64)
    with pytest.raises(ValueError, match="exceeds"):
        HyperDASConfig.build(k=65).resolved_for(n_layers=4, d_model=64)
    with pytest.raises(ValueError, match="divide"):
        HyperDASConfig.build(n_selection_heads=7).resolved_for(n_layers=4, d_model=64)


def test_each_field_belongs_to_one_part_and_build_routes_it():
    assert not set(ARCHITECTURE_FIELD_NAMES) & set(TRAINING_FIELD_NAMES)
    config = HyperDASConfig.build(layer=3, n_steps=7, data={"domain": "city"})
    assert config.architecture == HyperDASArchitecture(layer=3)
    assert config.training == HyperDASTraining(n_steps=7)
    assert config.with_fields(lr=1e-3).training.lr == 1e-3
    with pytest.raises(ValueError, match="unknown HyperDASConfig fields: bogus"):
        config.with_fields(bogus=1)


@pytest.mark.parametrize(
    "overrides",
    [
        {"k": 0},
        {"layer": -1},
        {"n_hypernet_layers": 0},
        {"lr": 0.0},
        {"sparsity_start": 1.5},
        {"state_routing": "diagonal"},
        {"grad_clip": 0.0},
        {"cause_weight": -1.0},
        {"head_lr": 0.0},
        {"selection_score": "euclid"},
        {"selection_temperature": 0.0},
        {"null_init_weight": 1.0},
        {"null_init_weight": 0.0},
    ],
)
def test_invalid_values_raise(overrides):
    # ValueError from __post_init__; the test config's runtime type checker may see a bad
    # Literal first.
    with pytest.raises((ValueError, TypeCheckError)):
        HyperDASConfig.build(**overrides)


def test_dict_round_trip():
    config = HyperDASConfig.build(layer=3, k=5, data={"domain": "city", "attributes": ["Country"]})
    assert set(config.to_dict()) == {"architecture", "training", "data"}
    assert HyperDASConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        HyperDASConfig.from_dict({**config.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="unknown HyperDASTraining fields: bogus"):
        HyperDASConfig.from_dict({**config.to_dict(), "training": {"bogus": 1}})


def test_from_dict_reads_the_flat_layout_of_older_checkpoints():
    """Checkpoints written before the split hold every field at the top level."""
    flat = {
        "target_model": "smollm2-135m", "layer": 6, "k": 18, "n_hypernet_layers": 2,
        "state_routing": "grouped", "n_selection_heads": 8, "train_embedding": False,
        "selection_score": "dot", "selection_temperature": 10.0, "skip_attention_sink": True,
        "null_init_weight": 0.5, "one_to_one_floor": 0.1, "cause_weight": 3.5,
        "isolate_weight": 0.5, "sparsity_max": 1.5, "sparsity_start": 0.5, "n_steps": 100,
        "lr": 3e-4, "r0_lr": 1e-3, "head_lr": 1e-3, "weight_decay": 0.01, "warmup_steps": 0,
        "grad_clip": 1.0, "seed": 0, "eval_every": 50, "val_batches": 4,
        "checkpoint_every": None, "cache_target_states": True, "state_cache_max_gb": 4.0,
        "target_dtype": "bfloat16", "data": {"domain": "city"},
    }  # fmt: skip
    config = HyperDASConfig.from_dict(flat)
    assert config.architecture.layer == 6 and config.architecture.target_dtype == "bfloat16"
    assert config.training.n_steps == 100 and config.training.head_lr == 1e-3
    assert config.data == {"domain": "city"}
    # a field added since then takes its default (every older checkpoint selected positions)
    assert {**config.architecture.to_dict(), **config.training.to_dict(), "data": config.data} == (
        {**flat, "positions": "selected"}
    )
    with pytest.raises(ValueError, match="unknown HyperDASConfig fields: bogus"):
        HyperDASConfig.from_dict({**flat, "bogus": 1})
