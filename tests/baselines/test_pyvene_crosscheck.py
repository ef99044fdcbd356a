"""Our resid_pre interchange hook against an implementation we did not write: pyvene 0.1.8's
``LowRankRotatedSpaceIntervention`` on the plain HF model (same weights), at the same layer's
block input (== ``blocks.L.hook_resid_pre``), same positions, same basis: logits must agree.
"""

import warnings

import pytest
import torch

from hyperdas_tl.hooks import resid_pre_name, soft_interchange_hook_for
from hyperdas_tl.interchange import one_hot_selection
from hyperdas_tl.models import (
    boot_bridge,
    build_tiny_llama_hf,
    load_smollm2_hf,
    smollm2_tokenizer,
    tiny_llama_config,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pv = pytest.importorskip(
        "pyvene", reason="pyvene (the 'bench' extra, pyvene==0.1.8) is not installed"
    )

TOLERANCE = 1e-4


def pyvene_logits(hf_model, layer, k, basis, base_ids, source_ids, base_pos, source_pos):
    config = pv.IntervenableConfig(
        model_type=type(hf_model),
        representations=[
            pv.RepresentationConfig(layer, "block_input", "pos", 1, low_rank_dimension=k)
        ],
        intervention_types=pv.LowRankRotatedSpaceIntervention,
    )
    intervenable = pv.IntervenableModel(config, hf_model)
    intervenable.disable_model_gradients()
    (intervention,) = intervenable.interventions.values()
    intervention = intervention[0] if isinstance(intervention, tuple | list) else intervention
    with torch.no_grad():
        intervention.rotate_layer.weight = basis  # through the orthogonal parametrisation
    assert torch.allclose(intervention.rotate_layer.weight, basis, atol=1e-5)
    batch = base_ids.shape[0]
    locations = {
        "sources->base": (
            [[[p] for p in source_pos.tolist()]],
            [[[p] for p in base_pos.tolist()]],
        )
    }
    with torch.no_grad():
        _, counterfactual = intervenable(
            {"input_ids": base_ids}, [{"input_ids": source_ids}], locations
        )
    assert counterfactual.logits.shape[0] == batch
    return counterfactual.logits


def our_logits(bridge, layer, basis, base_ids, source_ids, base_pos, source_pos):
    source = bridge.run_with_cache(source_ids, names_filter=resid_pre_name(bridge, layer))[1][
        resid_pre_name(bridge, layer)
    ]
    selection = one_hot_selection(source_pos, base_pos, source_ids.shape[1], base_ids.shape[1])
    hook = soft_interchange_hook_for(bridge, layer, source, selection, basis)
    with torch.no_grad():
        return bridge.run_with_hooks(base_ids, fwd_hooks=[hook])


def crosscheck(bridge, hf_model, layer, k, vocab, seed=0):
    g = torch.Generator().manual_seed(seed)
    base_ids = torch.randint(100, vocab, (3, 9), generator=g)
    source_ids = torch.randint(100, vocab, (3, 7), generator=g)
    base_pos, source_pos = torch.tensor([2, 5, 8]), torch.tensor([6, 0, 3])
    d_model = bridge.cfg.d_model
    basis = torch.linalg.qr(torch.randn(d_model, k, generator=g)).Q
    ours = our_logits(bridge, layer, basis, base_ids, source_ids, base_pos, source_pos)
    theirs = pyvene_logits(hf_model, layer, k, basis, base_ids, source_ids, base_pos, source_pos)
    clean = bridge(base_ids)
    assert (ours - clean).abs().max() > 1e-2, "the intervention changed nothing: a vacuous check"
    return (ours - theirs).abs().max().item()


def test_pyvene_low_rank_rotated_space_matches_our_hook_on_tiny_llama():
    config = tiny_llama_config()
    vocab = 2048
    bridge = boot_bridge(
        "tiny-llama", build_tiny_llama_hf(config, vocab), smollm2_tokenizer(), device="cpu"
    )
    hf_model = build_tiny_llama_hf(config, vocab)  # same seed: same weights, untouched by TL
    for layer, k in ((0, 4), (2, 16)):
        delta = crosscheck(bridge, hf_model, layer, k, vocab)
        assert delta <= TOLERANCE, f"layer {layer} k {k}: max |Δ logits| = {delta:.3g}"


@pytest.mark.smollm2
def test_pyvene_matches_our_hook_on_smollm2(smollm2):
    hf_model, _ = load_smollm2_hf()
    delta = crosscheck(smollm2, hf_model, layer=6, k=32, vocab=20000)
    assert delta <= TOLERANCE, f"max |Δ logits| = {delta:.3g}"
