import pytest
from jaxtyping import TypeCheckError

from hyperdas_tl.hyperdas.config import HyperDASConfig, default_k


def test_defaults_follow_the_paper():
    config = HyperDASConfig()
    assert (config.cause_weight, config.isolate_weight) == (3.5, 0.5)
    assert config.sparsity_max == 1.5 and config.sparsity_start == 0.5
    assert config.n_hypernet_layers == 8
    assert default_k(4096) == 128 and default_k(576) == 18 and default_k(64) == 2


def test_resolved_for_fills_and_clips():
    resolved = HyperDASConfig(n_hypernet_layers=8).resolved_for(n_layers=4, d_model=64)
    assert (resolved.layer, resolved.k, resolved.n_hypernet_layers) == (2, 2, 4)
    with pytest.raises(ValueError, match="out of range"):
        HyperDASConfig(layer=4).resolved_for(n_layers=4, d_model=64)
    with pytest.raises(ValueError, match="exceeds"):
        HyperDASConfig(k=65).resolved_for(n_layers=4, d_model=64)
    with pytest.raises(ValueError, match="divide"):
        HyperDASConfig(n_selection_heads=7).resolved_for(n_layers=4, d_model=64)


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
        HyperDASConfig(**overrides)


def test_dict_round_trip():
    config = HyperDASConfig(layer=3, k=5, data={"domain": "city", "attributes": ["Country"]})
    assert HyperDASConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        HyperDASConfig.from_dict({**config.to_dict(), "bogus": 1})
