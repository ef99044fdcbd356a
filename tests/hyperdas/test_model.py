"""HyperDAS forward: shapes, masks, selection, subspace, gradients, bad inputs."""

from dataclasses import replace

import pytest
import torch
from bad_input import raises_bad_input
from hyperdas_helpers import build_batch, build_config
from jaxtyping import TypeCheckError

from hyperdas_tl.hooks import soft_interchange_hook
from hyperdas_tl.hyperdas.config import SELECTION_MODES
from hyperdas_tl.hyperdas.hypernetwork import state_groups
from hyperdas_tl.hyperdas.loss import sparsity_penalty, sparsity_weight
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.hyperdas.selection import one_to_one
from hyperdas_tl.hyperdas.subspace import orthonormality_error
from hyperdas_tl.metrics import entity_interchange_hooks


@pytest.fixture(scope="module")
def model(tiny_target):
    return HyperDAS(tiny_target, build_config())


def test_shapes_and_selection_columns(model, tiny_target):
    batch = build_batch()
    for mode in SELECTION_MODES:
        out = model(batch, mode)
        assert out.logits.shape == (3, 7, tiny_target.cfg.d_vocab)
        assert out.selection.shape == (3, 6 + 1, 7)
        assert out.basis.shape == (3, 64, 4)
        assert out.encoding.shape == (3, 64)
        assert torch.allclose(out.selection.sum(dim=1), torch.ones(3, 7), atol=1e-5)
        assert torch.allclose(out.soft_selection.sum(dim=1), torch.ones(3, 7), atol=1e-5)
        assert bool((out.selection >= 0).all())
        assert out.loss is not None and torch.isfinite(out.loss.total)
        if mode != "soft":
            assert set(out.selection.unique().tolist()) <= {0.0, 1.0}


def test_masked_positions(model):
    batch = build_batch()
    out = model(batch)
    soft = out.soft_selection
    masked_base = ~batch.base_intervenable
    # Non-intervenable base columns put all mass on null ...
    assert bool((soft[:, -1][masked_base] == 1.0).all())
    assert bool((soft[:, :-1].transpose(1, 2)[masked_base] == 0.0).all())
    # ... non-intervenable source rows get nothing ...
    masked_source = ~batch.source_intervenable
    assert bool((soft[:, :-1][masked_source] == 0.0).all())
    # ... and the intervention leaves those base positions exactly unchanged.
    states = model.target_states(batch)
    base_l = states.base.at(model.layer)
    patched = soft_interchange_hook(
        base_l, hook=None, source=states.source.at(model.layer), selection=soft, basis=out.basis
    )
    assert torch.equal(patched[masked_base], base_l[masked_base])
    assert not torch.equal(patched[~masked_base], base_l[~masked_base])


def test_basis_and_r0_orthonormal(model):
    out = model(build_batch())
    assert orthonormality_error(out.basis) < 1e-5
    assert orthonormality_error(model.subspace.r0) < 1e-5
    # R(e) really depends on e (one Householder reflection per example).
    assert (out.basis[0] - out.basis[1]).abs().max() > 1e-6


def test_gradients_reach_every_trainable_parameter_and_not_the_target(tiny_target):
    model = HyperDAS(tiny_target, build_config(state_routing="all", train_embedding=True))
    out = model(build_batch(), sparsity_weight=1.0)
    # make the sparsity term live so its path is exercised too
    (out.loss.total + 10 * sparsity_penalty(out.soft_selection * 3)).backward()
    missing = [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)
    ]
    assert missing == []
    assert all(p.grad is None for p in tiny_target.parameters())
    assert not any(p.requires_grad for p in tiny_target.parameters())
    target_ids = {id(p) for p in tiny_target.parameters()}
    assert not target_ids & {id(p) for p in model.parameters()}


def test_forward_is_deterministic_and_seeded(tiny_target):
    a = HyperDAS(tiny_target, build_config(seed=3))
    b = HyperDAS(tiny_target, build_config(seed=3))
    batch = build_batch()
    assert torch.equal(a(batch).logits, b(batch).logits)


def test_forward_is_the_chain_of_its_public_steps(model):
    """target_states -> intervention_weights -> intervene -> loss is forward, bit for bit (the
    seam the benchmark and the faithfulness controls call)."""
    batch = build_batch()
    for mode in SELECTION_MODES:
        out = model(batch, mode, sparsity_weight=0.5)
        states = model.target_states(batch)
        weights = model.intervention_weights(batch, states, mode)
        logits = model.intervene(batch, states, weights)
        loss = model.loss(batch, logits, weights, sparsity_weight=0.5)
        assert torch.equal(logits, out.logits)
        assert torch.equal(weights.selection, out.selection)
        assert torch.equal(weights.basis, out.basis)
        assert torch.equal(loss.total, out.loss.total)


def test_logits_at_labels_are_the_full_logits_there_with_the_same_loss(model):
    """``logits_at="labels"`` unembeds only the label positions: the logits there, the loss and
    its gradients are those of the full forward."""
    batch = build_batch(n_label=3)
    for mode in SELECTION_MODES:
        full = model(batch, mode, sparsity_weight=0.5)
        part = model(batch, mode, sparsity_weight=0.5, logits_at="labels")
        assert full.positions is None and part.positions is not None
        assert part.logits.shape == (3, 3, full.logits.shape[-1])
        index = part.positions[..., None].expand(-1, -1, full.logits.shape[-1])
        assert torch.allclose(part.logits, full.logits.gather(1, index), rtol=1e-6, atol=1e-6)
        assert torch.allclose(part.loss.total, full.loss.total, rtol=1e-6, atol=1e-6)
        assert torch.allclose(part.loss.cause_ce, full.loss.cause_ce, rtol=1e-6, atol=1e-6)
        assert torch.allclose(part.loss.isolate_ce, full.loss.isolate_ce, rtol=1e-6, atol=1e-6)
    grads = []
    for logits_at in ("all", "labels"):
        model.zero_grad(set_to_none=True)
        model(batch, "soft", logits_at=logits_at).loss.total.backward()
        grads.append([p.grad.clone() for p in model.trainable_parameters()])
    model.zero_grad(set_to_none=True)
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    with pytest.raises((ValueError, TypeCheckError)):
        model(batch, logits_at="some")


def test_label_ce_refuses_positions_that_miss_a_label():
    from hyperdas_tl.data.batching import label_positions
    from hyperdas_tl.hyperdas.loss import label_token_ce

    batch = build_batch(n_label=3)
    scored = label_positions(batch.labels)
    logits = torch.randn(3, 3, 1000)
    ce, is_label = label_token_ce(logits, batch.labels, scored.positions)
    assert ce.shape == batch.labels.shape and torch.equal(is_label, batch.labels != -100)
    with pytest.raises(ValueError, match="every labelled position"):
        label_token_ce(logits[:, :2], batch.labels, scored.positions[:, :2])
    with pytest.raises(ValueError, match="every labelled position"):
        label_token_ce(logits, batch.labels, scored.positions.flip(1))


def test_zeroed_source_states(model):
    states = model.target_states(build_batch())
    zeroed = states.with_zeroed_source()
    assert not bool(zeroed.source.resid_pre.any()) and not bool(zeroed.source.final.any())
    assert zeroed.base is states.base and zeroed.source.layers == states.source.layers
    assert bool(states.source.resid_pre.any())  # the original is left alone


def test_state_groups_cover_every_state_once():
    groups = state_groups(31, 8, "grouped")
    assert sorted(i for g in groups for i in g) == list(range(31))
    assert all(groups)
    assert state_groups(5, 2, "all") == [list(range(5))] * 2


def test_one_to_one_rule():
    # 2 source tokens + null, 3 base columns.
    weights = torch.tensor(
        [
            [
                [0.6, 0.5, 0.05],  # source 0: best column 0 (0.6 > null 0.3) -> wins column 0
                [0.1, 0.45, 0.05],  # source 1: best column 1, but 0.45 < null 0.5... loses
                [0.3, 0.05, 0.9],  # null
            ]
        ]
    )
    weights[0, 2, 1] = 0.05  # make column 1's null small so source 1 (0.45) wins it
    base_mask = torch.ones(1, 3, dtype=torch.bool)
    source_mask = torch.ones(1, 2, dtype=torch.bool)
    hard = one_to_one(weights, base_mask, source_mask, floor=0.1)
    assert hard[0].argmax(dim=0).tolist() == [0, 1, 2]
    # a higher floor rejects both bids except source 0's
    hard = one_to_one(weights, base_mask, source_mask, floor=0.5)
    assert hard[0].argmax(dim=0).tolist() == [0, 2, 2]
    # two sources bidding on the same column: the higher bid wins, the other writes nothing
    weights2 = torch.tensor([[[0.7, 0.1], [0.2, 0.1], [0.1, 0.8]]])
    hard = one_to_one(weights2, torch.ones(1, 2, dtype=torch.bool), source_mask, floor=0.1)
    assert hard[0].argmax(dim=0).tolist() == [0, 2]


def test_sparsity_schedule_is_a_smooth_ramp():
    values = [sparsity_weight(step, 100, 1.5) for step in range(100)]
    assert values[:50] == [0.0] * 50
    assert values[-1] == pytest.approx(1.5)
    diffs = [b - a for a, b in zip(values[50:], values[51:], strict=False)]
    assert all(d == pytest.approx(diffs[0]) for d in diffs)


def test_sparsity_penalty_counts_only_excess_mass():
    sel = torch.zeros(1, 3, 4)
    sel[0, 0, :] = 1.0  # source 0 feeds all 4 base columns: excess 3
    assert float(sparsity_penalty(sel)) == pytest.approx(3.0)
    sel = torch.zeros(1, 3, 4)
    sel[0, 0, 0] = sel[0, 1, 1] = 1.0
    assert float(sparsity_penalty(sel)) == 0.0


def test_bad_inputs_raise(model):
    batch = build_batch()
    with pytest.raises((ValueError, TypeCheckError), match="selection_mode"):
        model(batch, "hard")
    empty = replace(batch, base_intervenable=torch.zeros_like(batch.base_intervenable))
    with pytest.raises(ValueError, match="intervenable"):
        model(empty)
    padded = replace(batch, source_intervenable=torch.ones_like(batch.source_intervenable))
    with pytest.raises(ValueError, match="padding"):
        model(padded)
    no_concept = replace(batch, concept_attention_mask=torch.zeros_like(batch.concept_ids))
    with pytest.raises(ValueError, match="concept"):
        model(no_concept)
    big = replace(batch, concept_ids=batch.concept_ids + 10**6)
    with pytest.raises(ValueError, match="token ids"):
        model(big)


@pytest.mark.smollm2
def test_smollm2_forward_backward():
    from hyperdas_tl.hyperdas.config import HyperDASConfig
    from hyperdas_tl.models import load_model

    target = load_model("smollm2-135m", device="cpu")
    model = HyperDAS(target, HyperDASConfig.build(layer=15, n_hypernet_layers=2))
    assert model.k == model.config.architecture.k == 18
    batch = build_batch(batch=2, vocab=int(target.cfg.d_vocab))
    out = model(batch)
    assert out.logits.shape == (2, 7, target.cfg.d_vocab)
    assert orthonormality_error(out.basis) < 1e-5
    out.loss.total.backward()
    assert all(p.grad is None for p in target.parameters())
    assert model.selection.query.weight.grad is not None


def test_attention_sink_is_never_read_or_written(tiny_target):
    batch = build_batch()
    skipping = HyperDAS(tiny_target, build_config())
    soft = skipping(batch).soft_selection
    assert bool((soft[:, -1, 0] == 1.0).all())  # base position 0 keeps its own state
    assert bool((soft[:, 0, :] == 0.0).all())  # source position 0 gives nothing
    reading = HyperDAS(tiny_target, build_config(skip_attention_sink=False))
    soft = reading(batch).soft_selection
    assert bool((soft[:, -1, 0] < 1.0).all()) and bool((soft[:, 0, 1:] > 0.0).any())


def test_a_prompt_with_only_the_sink_intervenable_raises(tiny_target):
    batch = build_batch()
    batch.source_intervenable[0] = False
    batch.source_intervenable[0, 0] = True
    with pytest.raises(ValueError, match="attention sink"):
        HyperDAS(tiny_target, build_config())(batch)


@pytest.mark.parametrize("weight", [0.2, 0.5, 0.9])
def test_null_init_weight_sets_the_starting_null_mass(tiny_target, weight):
    batch = build_batch(batch=4, base_len=12, src_len=10)
    model = HyperDAS(tiny_target, build_config(null_init_weight=weight))
    base_mask, _ = model.position_masks(batch)
    null = model(batch).soft_selection[:, -1][base_mask]
    # source scores start near zero, so null starts near `weight` whatever the prompt length
    assert abs(float(null.mean()) - weight) < 0.05
    without = HyperDAS(tiny_target, build_config()).forward(batch).soft_selection[:, -1]
    assert float(without[base_mask].mean()) < 0.3  # ~1 / (n_sources + 1)


def test_cosine_selection_scores_are_bounded_by_the_learned_temperature(tiny_target):
    model = HyperDAS(
        tiny_target,
        build_config(selection_score="cosine", selection_temperature=4.0, n_selection_heads=4),
    )
    assert torch.isclose(model.selection.log_temperature.exp(), torch.tensor(4.0))
    batch = build_batch()
    soft = model(batch).soft_selection
    base_mask, source_mask = model.position_masks(batch)
    # scores lie in [-T, T], so no weight can fall below e^{-2T} / (n + 1) of a column
    rows = source_mask.sum(dim=1) + 1
    floor = torch.exp(torch.tensor(-8.0)) / rows
    for b in range(len(batch)):
        used = soft[b][torch.cat([source_mask[b], torch.tensor([True])])][:, base_mask[b]]
        assert bool((used >= floor[b] * 0.99).all())
    assert "selection.log_temperature" in dict(model.named_parameters())
    assert "selection.log_temperature" not in dict(
        HyperDAS(tiny_target, build_config()).named_parameters()
    )


def test_entity_positions_interchange_exactly_where_das_does(tiny_target):
    """The ablation ``positions="entity"``: every read-out is the fixed interchange source
    entity token -> base entity token (DAS's hooks with HyperDAS's per-example R(e)), and the
    selection module gets no gradient (it is not used)."""
    model = HyperDAS(tiny_target, build_config(positions="entity"))
    batch = replace(
        build_batch(),
        base_entity_last=torch.tensor([2, 1, 2]),
        source_entity_last=torch.tensor([1, 3, 2]),
    )
    outs = {mode: model(batch, mode) for mode in SELECTION_MODES}
    width = batch.base_ids.shape[1]
    hooks = entity_interchange_hooks(tiny_target, model.layer, batch, width, outs["soft"].basis)
    with tiny_target.hooks(fwd_hooks=hooks):
        expected = tiny_target(batch.base_ids, attention_mask=batch.base_attention_mask)
    for out in outs.values():
        assert torch.equal(out.selection, outs["soft"].selection)
        torch.testing.assert_close(out.logits, expected, atol=1e-5, rtol=1e-5)
    selected = {int(i) for i in outs["soft"].selection[:, :-1].nonzero()[:, 0]}
    assert selected == {0, 1, 2} and outs["soft"].selection[:, :-1].sum().item() == 3
    outs["soft"].loss.total.backward()
    assert all(p.grad is None for p in model.selection.parameters())
    assert all(p.grad is not None for p in model.subspace.parameters())
    with raises_bad_input("positions must be one of"):
        build_config(positions="random")
