"""partial_forward: one-pass residual states and a forward that really starts at layer L."""

import warnings

import pytest
import torch
from jaxtyping import TypeCheckError

from hyperdas_tl.data.batching import IGNORE_INDEX, label_positions
from hyperdas_tl.hooks import capture_resid_pre, soft_interchange_hook_for
from hyperdas_tl.interchange import positions_to_selection
from hyperdas_tl.models import load_model
from hyperdas_tl.partial_forward import resid_stream_states, run_from_layer

ATOL = 1e-5


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-llama", device="cpu")


def padded_batch(vocab: int = 1000, batch: int = 3, pos: int = 7, left: bool = False):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, vocab, (batch, pos), generator=g)
    mask = torch.ones(batch, pos, dtype=torch.long)
    for b in range(batch):
        if left:
            mask[b, :b] = 0
        elif b:
            mask[b, pos - 2 * b :] = 0
    return ids, mask


def soft_hook(model, layer, ids, mask):
    """A non-trivial soft interchange at ``layer`` from a shifted copy of the batch."""
    source = capture_resid_pre(model, ids.roll(1, dims=0), [layer], mask.roll(1, dims=0))[layer]
    batch, pos = ids.shape
    selection = positions_to_selection(
        torch.tensor([[1, 0]] * batch), torch.tensor([[0, 1]] * batch), src_pos=pos, base_pos=pos
    )
    d_model = model.cfg.d_model
    basis = torch.linalg.qr(torch.randn(d_model, 8, generator=torch.Generator().manual_seed(1))).Q
    return soft_interchange_hook_for(model, layer, source, selection, basis)


def assert_close_on_real_tokens(actual, expected, mask):
    real = mask.bool()
    assert (actual[real] - expected[real]).abs().max().item() <= ATOL


@pytest.mark.parametrize("left", [False, True])
def test_run_from_layer_matches_full_forward(tiny, left):
    ids, mask = padded_batch(left=left)
    full = tiny(ids, attention_mask=mask)
    states = resid_stream_states(tiny, ids, mask)
    for layer in range(tiny.cfg.n_layers):
        logits = run_from_layer(tiny, states.at(layer), layer, mask)
        assert logits.shape == full.shape
        assert_close_on_real_tokens(logits, full, mask)


def test_run_from_layer_raises_no_deprecation_warning(tiny):
    """No FutureWarning / DeprecationWarning from the transformers calls it makes (5.24 renamed
    create_causal_mask's past_key_values; ``make test-latest`` runs this on the newest release)."""
    ids, mask = padded_batch(left=True)
    states = resid_stream_states(tiny, ids, mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        run_from_layer(tiny, states.at(1), 1, mask)


def test_run_from_layer_matches_full_forward_with_soft_interchange_hook(tiny):
    ids, mask = padded_batch()
    layer = 2
    hook = soft_hook(tiny, layer, ids, mask)
    full = tiny.run_with_hooks(ids, attention_mask=mask, fwd_hooks=[hook])
    plain = tiny(ids, attention_mask=mask)
    assert (full - plain).abs().max() > 1e-3  # the hook does something
    resid = resid_stream_states(tiny, ids, mask, [layer]).at(layer)
    with tiny.hooks(fwd_hooks=[hook]):
        logits = run_from_layer(tiny, resid, layer, mask)
    assert_close_on_real_tokens(logits, full, mask)


def padded_labels(ids, mask, n_label: int = 2):
    """``collate_examples``-style labels: the last ``n_label`` real tokens of each row are
    predicted from the positions before them."""
    labels = torch.full_like(ids, IGNORE_INDEX)
    for b, n in enumerate(mask.sum(dim=1).tolist()):
        labels[b, n - n_label - 1 : n - 1] = ids[b, n - n_label : n]
    return labels


def gather_positions(logits, positions):
    return logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))


@pytest.mark.parametrize("left", [False, True])
def test_run_from_layer_unembeds_only_the_requested_positions(tiny, left):
    """The logits at ``positions`` are those of the full unembedding there, hook or not."""
    ids, mask = padded_batch(left=left)
    layer = 1
    resid = resid_stream_states(tiny, ids, mask, [layer]).at(layer)
    positions = label_positions(padded_labels(ids, mask)).positions
    assert positions.shape == (3, 2)
    for hooks in ([], [soft_hook(tiny, layer, ids, mask)]):
        with tiny.hooks(fwd_hooks=hooks):
            full = run_from_layer(tiny, resid, layer, mask)
            part = run_from_layer(tiny, resid, layer, mask, positions=positions)
        assert part.shape == (3, 2, tiny.cfg.d_vocab)
        expected = gather_positions(full, positions)
        assert torch.allclose(part, expected, rtol=1e-6, atol=1e-6)
    # any positions (repeats, any order) and none at all
    full = run_from_layer(tiny, resid, layer, mask)
    odd = torch.tensor([[6, 0, 6], [1, 1, 2], [3, 5, 4]])
    part = run_from_layer(tiny, resid, layer, mask, positions=odd)
    assert torch.allclose(part, gather_positions(full, odd), rtol=1e-6, atol=1e-6)
    empty = run_from_layer(tiny, resid, layer, mask, positions=odd[:, :0])
    assert empty.shape == (3, 0, tiny.cfg.d_vocab)


def test_run_from_layer_positions_gradient_is_the_full_ones(tiny):
    ids, mask = padded_batch()
    labels = padded_labels(ids, mask)
    scored = label_positions(labels)
    grads = []
    for positions in (None, scored.positions):
        resid = resid_stream_states(tiny, ids, mask, [1]).at(1).clone().requires_grad_(True)
        logits = run_from_layer(tiny, resid, 1, mask, positions=positions)
        target = labels if positions is None else scored.labels
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten()).backward()
        grads.append(resid.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_run_from_layer_refuses_bad_positions(tiny):
    ids, mask = padded_batch()
    resid = resid_stream_states(tiny, ids, mask, [0]).at(0)
    with pytest.raises((ValueError, TypeCheckError)):
        run_from_layer(tiny, resid, 0, mask, positions=torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match="lie in"):
        run_from_layer(tiny, resid, 0, mask, positions=torch.tensor([[0], [1], [7]]))


def test_only_blocks_from_start_layer_run_and_their_hooks_fire(tiny):
    ids, mask = padded_batch()
    calls: list[str] = []

    def record(resid, *, hook):
        calls.append(int(hook.name.split(".")[1]))
        return resid

    names = [f"blocks.{i}.hook_resid_pre" for i in range(tiny.cfg.n_layers)]
    resid = resid_stream_states(tiny, ids, mask, [2]).at(2)
    with tiny.hooks(fwd_hooks=[(name, record) for name in names]):
        run_from_layer(tiny, resid, 2, mask)
    assert calls == list(range(2, tiny.cfg.n_layers))


def test_resid_stream_states_match_hooks_and_final_norm(tiny):
    ids, mask = padded_batch()
    states = resid_stream_states(tiny, ids, mask)
    assert states.resid_pre.shape == (3, tiny.cfg.n_layers, 7, tiny.cfg.d_model)
    captured = capture_resid_pre(tiny, ids, list(range(tiny.cfg.n_layers)), mask)
    for layer, value in captured.items():
        assert torch.equal(states.at(layer), value)
    store = {}

    def keep(x, *, hook):
        store["final"] = x
        return x

    tiny.run_with_hooks(ids, attention_mask=mask, fwd_hooks=[("ln_final.hook_out", keep)])
    assert torch.allclose(states.final, store["final"], atol=ATOL)
    assert states.all_states().shape[1] == tiny.cfg.n_layers + 1
    assert not states.resid_pre.requires_grad


def test_gradient_flows_into_resid(tiny):
    ids, mask = padded_batch()
    resid = resid_stream_states(tiny, ids, mask, [1]).at(1).clone().requires_grad_(True)
    run_from_layer(tiny, resid, 1, mask)[:, -1].sum().backward()
    assert resid.grad is not None and resid.grad.abs().sum() > 0


def test_bad_inputs_raise(tiny):
    ids, mask = padded_batch()
    resid = resid_stream_states(tiny, ids, mask, [0]).at(0)
    with pytest.raises(ValueError, match="out of range"):
        run_from_layer(tiny, resid, tiny.cfg.n_layers, mask)
    with pytest.raises(ValueError, match="d_model"):
        run_from_layer(tiny, resid[..., :10], 0, mask)
    # (jaxtyping's runtime check in the test config may catch the shape mismatch first)
    with pytest.raises((ValueError, TypeCheckError)):
        run_from_layer(tiny, resid, 0, mask[:, :3])
    with pytest.raises(ValueError, match="out of range"):
        resid_stream_states(tiny, ids, mask, [99])


@pytest.mark.smollm2
def test_smollm2_run_from_layer_matches_full_forward_padded():
    model = load_model("smollm2-135m", device="cpu")
    ids, mask = padded_batch(vocab=int(model.cfg.d_vocab), pos=9)
    layer = 15
    full = model(ids, attention_mask=mask)
    resid = resid_stream_states(model, ids, mask, [layer]).at(layer)
    assert_close_on_real_tokens(run_from_layer(model, resid, layer, mask), full, mask)
    hook = soft_hook(model, layer, ids, mask)
    hooked = model.run_with_hooks(ids, attention_mask=mask, fwd_hooks=[hook])
    with model.hooks(fwd_hooks=[hook]):
        logits = run_from_layer(model, resid, layer, mask)
    assert_close_on_real_tokens(logits, hooked, mask)


@pytest.mark.smollm2
def test_smollm2_label_positions_logits_equal_the_full_unembedding():
    model = load_model("smollm2-135m", device="cpu")
    ids, mask = padded_batch(vocab=int(model.cfg.d_vocab), pos=9)
    layer = 6
    resid = resid_stream_states(model, ids, mask, [layer]).at(layer)
    positions = label_positions(padded_labels(ids, mask, n_label=3)).positions
    with torch.no_grad():
        full = run_from_layer(model, resid, layer, mask)
        part = run_from_layer(model, resid, layer, mask, positions=positions)
    assert torch.allclose(part, gather_positions(full, positions), rtol=1e-5, atol=1e-5)
