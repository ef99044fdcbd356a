import pytest
import torch
from bad_input import raises_bad_input
from hyperdas_helpers import build_batch, build_config

from hyperdas_tl.hyperdas.intervention import hyperdas_intervention, hyperdas_read_outs
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.interchange import fit_selection_width


@pytest.fixture(scope="module")
def hyperdas(tiny_target):
    model = HyperDAS(tiny_target, build_config())
    with torch.no_grad():  # move away from the near-identity init so selections are non-trivial
        for p in model.selection.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("mode", ["soft", "one_to_many", "one_to_one"])
def test_the_scoring_hooks_reproduce_the_training_forward(hyperdas, tiny_target, mode):
    """Full forward + hooks from the Intervention == HyperDAS.forward (suffix from layer L)."""
    batch = build_batch()
    with torch.no_grad():
        expected = hyperdas(batch, mode).logits
        hooks = hyperdas_intervention(hyperdas, mode)(batch, batch.base_ids.shape[1])
        logits = tiny_target.run_with_hooks(
            batch.base_ids, fwd_hooks=hooks, attention_mask=batch.base_attention_mask
        )
    real = batch.base_attention_mask.bool()
    assert torch.allclose(logits[real], expected[real], atol=1e-4)


def test_the_scoring_hooks_do_not_run_the_intervened_pass(hyperdas, monkeypatch):
    """Building the hooks computes the weights only: the judge's forward is the intervened
    run, so HyperDAS's own (intervene + unembed every position) would be thrown away."""
    batch = build_batch()
    with torch.no_grad():
        before = hyperdas_intervention(hyperdas, "soft")(batch, batch.base_ids.shape[1])

    def no_intervened_pass(*args, **kwargs):
        raise AssertionError("the hooks ran HyperDAS's intervened pass")

    monkeypatch.setattr(HyperDAS, "intervene", no_intervened_pass)
    monkeypatch.setattr(HyperDAS, "forward", no_intervened_pass)
    after = hyperdas_intervention(hyperdas, "soft")(batch, batch.base_ids.shape[1])
    for name in ("selection", "basis", "source"):
        assert torch.equal(after[0][1].keywords[name], before[0][1].keywords[name]), name


def test_read_outs_share_one_pair_of_frozen_passes_per_batch(hyperdas, monkeypatch):
    batches = [build_batch(), build_batch(seed=1)]
    with torch.no_grad():
        alone = {
            mode: [hyperdas_intervention(hyperdas, mode)(b, b.base_ids.shape[1]) for b in batches]
            for mode in ("soft", "one_to_many", "one_to_one")
        }
    passes = []
    frozen = HyperDAS.target_states
    monkeypatch.setattr(
        HyperDAS, "target_states", lambda self, b: passes.append(id(b)) or frozen(self, b)
    )
    read_outs = hyperdas_read_outs(hyperdas)
    assert list(read_outs) == ["HyperDAS (soft)", "HyperDAS (one_to_many)", "HyperDAS (one_to_one)"]
    for i, batch in enumerate(batches):  # the order evaluate_interventions judges in
        for mode in alone:
            hooks = read_outs[f"HyperDAS ({mode})"](batch, batch.base_ids.shape[1])
            for name in ("selection", "basis", "source"):
                expected = alone[mode][i][0][1].keywords[name]
                assert torch.equal(hooks[0][1].keywords[name], expected), (mode, name)
    assert passes == [id(b) for b in batches]  # once per batch, not once per read-out
    with raises_bad_input("selection"):
        hyperdas_read_outs(hyperdas, ("soft", "fuzzy"))  # type: ignore[arg-type]


def test_wider_generation_forward_keeps_the_extra_positions(hyperdas):
    batch = build_batch()
    hooks = hyperdas_intervention(hyperdas, "soft")(batch, batch.base_ids.shape[1] + 4)
    selection = hooks[0][1].keywords["selection"]
    assert selection.shape[-1] == batch.base_ids.shape[1] + 4
    assert torch.all(selection[:, -1, -4:] == 1)


def test_controls_change_the_intervention(hyperdas, tiny_target):
    batch = build_batch()
    width = batch.base_ids.shape[1]
    run = lambda hooks: tiny_target.run_with_hooks(  # noqa: E731
        batch.base_ids, fwd_hooks=hooks, attention_mask=batch.base_attention_mask
    )
    with torch.no_grad():
        plain = run(hyperdas_intervention(hyperdas)(batch, width))
        zeroed = run(hyperdas_intervention(hyperdas, zero_source=True)(batch, width))
        empty = run(
            hyperdas_intervention(hyperdas, basis_override=lambda b: b[..., :0])(batch, width)
        )
        clean = run([])
    real = batch.base_attention_mask.bool()
    assert torch.isfinite(zeroed).all()
    assert not torch.allclose(plain[real], zeroed[real])
    assert torch.allclose(empty[real], clean[real], atol=1e-5)  # k = 0 is a no-op


def test_unknown_read_out_is_a_clear_error(hyperdas):
    with raises_bad_input("selection_mode"):
        hyperdas_intervention(hyperdas, "fuzzy")  # type: ignore[arg-type]


def test_fit_selection_width():
    selection = torch.zeros(1, 3, 4)
    selection[0, 2] = 1.0
    selection[0, 0, 1], selection[0, 2, 1] = 1.0, 0.0
    wide = fit_selection_width(selection, 6)
    assert wide.shape == (1, 3, 6) and torch.allclose(wide.sum(1), torch.ones(1, 6))
    assert torch.equal(fit_selection_width(selection, 2), selection[..., :2])
    with pytest.raises(ValueError, match="reads from the source"):
        fit_selection_width(selection, 1)
