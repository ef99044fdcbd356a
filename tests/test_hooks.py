import pytest
import torch
from bad_input import raises_bad_input

from hyperdas_tl.hooks import (
    capture_resid_pre,
    interchange_hook_for,
    resid_pre_name,
    soft_interchange_hook_for,
)
from hyperdas_tl.interchange import interchange, one_hot_selection

LAYER = 2


def tokens(model, texts):
    enc = model.tokenizer(texts, return_tensors="pt", padding=True)
    return enc.input_ids, enc.attention_mask


def hooked_logits(model, ids, mask, hooks):
    with torch.no_grad():
        return model.run_with_hooks(ids, fwd_hooks=hooks, attention_mask=mask)


def no_hooks_left(model) -> bool:
    return all(not hp.fwd_hooks and not hp.bwd_hooks for hp in model.hook_dict.values())


def test_resid_pre_name_checks_the_layer(tiny_model):
    assert resid_pre_name(tiny_model, 0) == "blocks.0.hook_resid_pre"
    assert resid_pre_name(tiny_model, 3) == "blocks.3.hook_resid_pre"
    for bad in (4, -1):
        with pytest.raises(ValueError, match="out of range.*0..3"):
            resid_pre_name(tiny_model, bad)
    with raises_bad_input("must be an int"):
        resid_pre_name(tiny_model, "2")


def test_capture_resid_pre_equals_the_cache(tiny_model):
    ids, mask = tokens(tiny_model, ["The cat sat", "A dog"])
    captured = capture_resid_pre(tiny_model, ids, [0, LAYER], mask)
    _, cache = tiny_model.run_with_cache(ids, attention_mask=mask)
    for layer in (0, LAYER):
        assert torch.equal(captured[layer], cache[f"blocks.{layer}.hook_resid_pre"])


def test_source_equal_base_is_a_no_op(tiny_model):
    ids, mask = tokens(tiny_model, ["The cat sat on the mat", "A dog ran"])
    clean = hooked_logits(tiny_model, ids, mask, [])
    source = capture_resid_pre(tiny_model, ids, [LAYER], mask)[LAYER]
    basis = torch.linalg.qr(torch.randn(64, 8)).Q
    hooked = hooked_logits(
        tiny_model, ids, mask, [interchange_hook_for(tiny_model, LAYER, source, basis)]
    )
    assert torch.allclose(hooked, clean, atol=1e-5)


def test_empty_subspace_is_a_no_op(tiny_model):
    base_ids, mask = tokens(tiny_model, ["The cat sat on the mat"])
    src_ids, _ = tokens(tiny_model, ["One two three four five six"])
    src_ids = src_ids[:, : base_ids.shape[1]]
    source = capture_resid_pre(tiny_model, src_ids, [LAYER])[LAYER]
    hook = interchange_hook_for(tiny_model, LAYER, source, torch.zeros(64, 0), allow_empty=True)
    assert torch.equal(
        hooked_logits(tiny_model, base_ids, mask, [hook]),
        hooked_logits(tiny_model, base_ids, mask, []),
    )


def test_full_subspace_at_every_position_reproduces_the_source_run(tiny_model):
    base_ids, _ = tokens(tiny_model, ["The cat sat on the mat today"])
    src_ids, _ = tokens(tiny_model, ["Paris is a city in France, yes"])
    n = min(base_ids.shape[1], src_ids.shape[1])
    base_ids, src_ids = base_ids[:, :n], src_ids[:, :n]
    source = capture_resid_pre(tiny_model, src_ids, [LAYER])[LAYER]
    full = torch.linalg.qr(torch.randn(64, 64)).Q
    patched = hooked_logits(
        tiny_model, base_ids, None, [interchange_hook_for(tiny_model, LAYER, source, full)]
    )
    source_run = hooked_logits(tiny_model, src_ids, None, [])
    assert torch.allclose(patched, source_run, atol=1e-4)


def test_hard_one_hot_soft_hook_equals_the_plain_interchange(tiny_model):
    base_ids, base_mask = tokens(tiny_model, ["The cat sat on the mat", "A dog"])
    src_ids, src_mask = tokens(tiny_model, ["Paris is in France", "Tokyo is the capital of Japan"])
    source = capture_resid_pre(tiny_model, src_ids, [LAYER], src_mask)[LAYER]
    basis = torch.linalg.qr(torch.randn(64, 5)).Q
    src_pos, base_pos = torch.tensor([2, 5]), torch.tensor([4, 1])
    selection = one_hot_selection(src_pos, base_pos, src_ids.shape[1], base_ids.shape[1])
    soft = hooked_logits(
        tiny_model,
        base_ids,
        base_mask,
        [soft_interchange_hook_for(tiny_model, LAYER, source, selection, basis)],
    )

    def manual(resid, hook):
        rows = torch.arange(2)
        patched = interchange(
            resid[rows, base_pos][:, None], source[rows, src_pos][:, None], basis
        )[:, 0]
        out = resid.clone()
        out[rows, base_pos] = patched
        return out

    expected = hooked_logits(
        tiny_model, base_ids, base_mask, [(resid_pre_name(tiny_model, LAYER), manual)]
    )
    assert torch.allclose(soft, expected, atol=1e-5)
    # positions before the patched one are untouched (causal model)
    clean = hooked_logits(tiny_model, base_ids, base_mask, [])
    assert torch.equal(soft[0, :4], clean[0, :4])


def test_gradients_flow_through_the_hook(tiny_model):
    ids, mask = tokens(tiny_model, ["The cat sat on the mat"])
    src_ids, src_mask = tokens(tiny_model, ["Paris is a city in France"])
    source = capture_resid_pre(tiny_model, src_ids, [LAYER], src_mask)[LAYER]
    raw = torch.randn(64, 4, requires_grad=True)
    logits = torch.randn(1, src_ids.shape[1] + 1, ids.shape[1], requires_grad=True)
    name, fn = soft_interchange_hook_for(
        tiny_model, LAYER, source, logits.softmax(dim=1), torch.linalg.qr(raw).Q
    )
    out = tiny_model.run_with_hooks(ids, fwd_hooks=[(name, fn)], attention_mask=mask)
    out[0, -1].logsumexp(-1).backward()
    assert raw.grad is not None and raw.grad.abs().sum() > 0
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_model.parameters())


def test_hooks_are_removed_when_the_forward_raises(tiny_model):
    ids, _ = tokens(tiny_model, ["The cat sat"])
    wrong_source = torch.randn(1, ids.shape[1] + 2, 64)  # wrong number of positions
    hook = interchange_hook_for(
        tiny_model, LAYER, wrong_source, torch.linalg.qr(torch.randn(64, 2)).Q
    )
    with raises_bad_input("residual stream has shape"):
        tiny_model.run_with_hooks(ids, fwd_hooks=[hook])
    assert no_hooks_left(tiny_model)
    with raises_bad_input("residual stream has shape"):
        with tiny_model.hooks(fwd_hooks=[hook]):
            tiny_model(ids)
    assert no_hooks_left(tiny_model)


def test_bad_hook_inputs_raise_clear_errors(tiny_model):
    good = torch.randn(1, 3, 64)
    with pytest.raises(ValueError, match="out of range"):
        interchange_hook_for(tiny_model, 9, good, torch.linalg.qr(torch.randn(64, 2)).Q)
    with raises_bad_input("d_model=32"):
        interchange_hook_for(tiny_model, LAYER, good, torch.linalg.qr(torch.randn(32, 2)).Q)
    with raises_bad_input("not orthonormal"):
        interchange_hook_for(tiny_model, LAYER, good, torch.randn(64, 2))
    with raises_bad_input("src_pos \\+ 1"):
        soft_interchange_hook_for(
            tiny_model, LAYER, good, torch.ones(1, 3, 5) / 3, torch.zeros(64, 0)
        )
    with raises_bad_input("sum to 1"):
        soft_interchange_hook_for(tiny_model, LAYER, good, torch.ones(1, 4, 5), torch.zeros(64, 0))


def test_empty_basis_is_refused_by_the_builders_unless_asked_for(tiny_model):
    source = torch.randn(1, 3, 64)
    with raises_bad_input("k=0"):
        interchange_hook_for(tiny_model, LAYER, source, torch.zeros(64, 0))
    with raises_bad_input("k=0"):
        soft_interchange_hook_for(
            tiny_model, LAYER, source, one_hot_selection(*[torch.tensor([0])] * 2, 3, 3),
            torch.zeros(64, 0),
        )  # fmt: skip
    interchange_hook_for(tiny_model, LAYER, source, torch.zeros(64, 0), allow_empty=True)


def test_finite_check_names_the_hook_and_the_bad_source_position(tiny_model):
    from hyperdas_tl.hooks import NonFiniteActivationError, finite_checks, finite_checks_enabled

    ids, mask = tokens(tiny_model, ["The cat sat on the mat"])
    source = torch.randn(1, ids.shape[1], 64)
    source[0, 3] = float("nan")
    basis = torch.linalg.qr(torch.randn(64, 4)).Q
    reads_3 = one_hot_selection(torch.tensor([3]), torch.tensor([3]), ids.shape[1], ids.shape[1])
    reads_2 = one_hot_selection(torch.tensor([2]), torch.tensor([3]), ids.shape[1], ids.shape[1])
    # off by default (speed): NaN flows through silently
    hook = soft_interchange_hook_for(tiny_model, LAYER, source, reads_3, basis)
    assert not bool(torch.isfinite(hooked_logits(tiny_model, ids, mask, [hook])).all())
    # on: a clear error naming the hook and the (example, position) of the NaN
    hook = soft_interchange_hook_for(tiny_model, LAYER, source, reads_3, basis, check_finite=True)
    with pytest.raises(
        NonFiniteActivationError, match=r"blocks\.2\.hook.*source at .*\[\[0, 3\]\]"
    ):
        hooked_logits(tiny_model, ids, mask, [hook])
    assert no_hooks_left(tiny_model)
    # a NaN at a position no base position reads is harmless (0·inf-safe mix): no error
    assert not finite_checks_enabled()
    with finite_checks():
        assert finite_checks_enabled()
        hook = soft_interchange_hook_for(tiny_model, LAYER, source, reads_2, basis)
    assert not finite_checks_enabled()
    assert bool(torch.isfinite(hooked_logits(tiny_model, ids, mask, [hook])).all())
    with finite_checks(), pytest.raises(NonFiniteActivationError, match="not finite"):
        name, fn = interchange_hook_for(tiny_model, LAYER, source, basis)
        hooked_logits(tiny_model, ids, mask, [(name, fn)])
