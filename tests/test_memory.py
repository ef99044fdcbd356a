"""The training-memory estimate: exact parameter counts, sane Llama-3-8B numbers."""

import pytest
import torch

from hyperdas_tl.hyperdas import HyperDAS, HyperDASConfig
from hyperdas_tl.memory import MemoryEstimate, estimate_training_memory, parameter_counts
from hyperdas_tl.models import llama3_8b_hf_config, load_smollm2_hf

GB = 1e9


def trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def check_counts_match(target, hf_model, **config) -> None:
    """The estimate's parameter counts equal the real modules' (built the same way)."""
    hyperdas = HyperDAS(target, HyperDASConfig.build(**config))
    counts = parameter_counts(hf_model.config, hyperdas.config)
    assert counts.target == sum(p.numel() for p in hf_model.parameters())
    assert counts.trainable == trainable(hyperdas)
    assert counts.hypernetwork == sum(p.numel() for p in hyperdas.hypernetwork.parameters())
    assert counts.selection == sum(p.numel() for p in hyperdas.selection.parameters())
    assert counts.subspace == sum(p.numel() for p in hyperdas.subspace.parameters())


@pytest.mark.parametrize(
    "config",
    [
        dict(layer=2, k=4, n_hypernet_layers=2, n_selection_heads=4),
        dict(layer=1, k=8, n_hypernet_layers=4, n_selection_heads=4, state_routing="all"),
        dict(layer=3, k=1, n_hypernet_layers=1, n_selection_heads=4, train_embedding=True),
    ],
)
def test_parameter_counts_match_the_real_modules_on_tiny_llama(tiny_model, config):
    check_counts_match(tiny_model, tiny_model.original_model, **config)


@pytest.mark.smollm2
def test_parameter_counts_match_the_real_modules_on_smollm2(smollm2):
    hf_model, _ = load_smollm2_hf()
    check_counts_match(smollm2, hf_model)  # default config: N = 8, k = 18, layer 15
    estimate = estimate_training_memory(hf_model.config, target_dtype=torch.float32)
    hyperdas = HyperDAS(smollm2, HyperDASConfig())
    assert estimate.params.trainable == trainable(hyperdas)
    assert estimate.hypernetwork_params_bytes == 4 * trainable(hyperdas)


def test_llama3_8b_numbers_are_sane():
    estimate = estimate_training_memory(llama3_8b_hf_config(), batch=8, seq=64)
    assert isinstance(estimate, MemoryEstimate)
    assert estimate.params.target == 8_030_261_248  # Meta-Llama-3-8B's published count
    assert 15.5 * GB < estimate.target_params_bytes < 16.5 * GB  # bf16
    assert estimate.settings["k"] == 128 and estimate.settings["layer"] == 16
    # N = 8 blocks, each with one self- and two cross-attentions and an MLP: ~0.3 B each.
    assert 2.0e9 < estimate.params.hypernetwork < 3.0e9
    trainable_bytes = 4 * estimate.params.trainable
    assert estimate.hypernetwork_params_bytes == trainable_bytes
    assert estimate.grads_bytes == trainable_bytes
    assert estimate.adamw_bytes == 2 * trainable_bytes
    assert 0 < estimate.activations_bytes < 20 * GB
    assert estimate.total_bytes == sum(
        v for k, v in estimate.parts().items() if k not in ("activations (subtotal)", "total")
    )
    assert 40 * GB < estimate.total_bytes < 100 * GB


def test_activations_grow_with_batch_and_parameters_do_not():
    small = estimate_training_memory(llama3_8b_hf_config(), batch=8, seq=64)
    large = estimate_training_memory(llama3_8b_hf_config(), batch=32, seq=64)
    assert large.params == small.params
    assert large.prefix_states_bytes == 4 * small.prefix_states_bytes
    assert large.activations_bytes > 3.5 * small.activations_bytes
    assert large.total_bytes > small.total_bytes


def test_dtypes_and_routing_change_what_they_should():
    config = llama3_8b_hf_config()
    bf16 = estimate_training_memory(config, train_dtype=torch.bfloat16)
    fp32 = estimate_training_memory(config)
    assert 2 * bf16.adamw_bytes == fp32.adamw_bytes
    assert bf16.target_params_bytes == fp32.target_params_bytes
    every = estimate_training_memory(config, state_routing="all")
    assert every.hypernetwork_activations_bytes > 4 * fp32.hypernetwork_activations_bytes


def test_markdown_and_dict_name_every_part():
    estimate = estimate_training_memory(llama3_8b_hf_config(), batch=8, seq=64)
    table = estimate.to_markdown()
    for name in estimate.parts():
        assert name in table
    data = estimate.to_dict()
    assert data["bytes"]["total"] == estimate.total_bytes
    assert data["params"]["target"] == estimate.params.target


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="batch"):
        estimate_training_memory(llama3_8b_hf_config(), batch=0)
    with pytest.raises(ValueError, match="out of range"):
        estimate_training_memory(llama3_8b_hf_config(), layer=32)
