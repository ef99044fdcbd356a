import warnings

import pytest
import torch

from hyperdas_tl.generation import (
    greedy_generate,
    kv_cached_greedy_generate,
    padded_width,
    shared_prefix_length,
)
from hyperdas_tl.hooks import soft_interchange_hook_for
from hyperdas_tl.interchange import one_hot_selection, random_orthonormal_basis
from hyperdas_tl.models import load_smollm2_hf

PROMPTS = ["Paris is a city in the country of", "The capital of Japan is", "Berlin is in"]
TEMPLATE_PROMPTS = [
    "Which country is this city in? The city of Paris",
    "Which country is this city in? The city of Ho Chi Minh City",
    "Which country is this city in? The city of Rome",
]


def naive_greedy(model, text: str, n: int) -> list[int]:
    ids = model.tokenizer(text, return_tensors="pt").input_ids
    out = []
    with torch.no_grad():
        for _ in range(n):
            token = model(ids)[0, -1].argmax()
            out.append(int(token))
            ids = torch.cat([ids, token.view(1, 1)], dim=1)
    return out


def test_batched_right_padded_generation_equals_one_prompt_at_a_time(tiny_model):
    enc = tiny_model.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    out = greedy_generate(tiny_model, enc.input_ids, enc.attention_mask, 4)
    assert out.shape == (3, 4)
    for row, text in zip(out.tolist(), PROMPTS, strict=True):
        assert row == naive_greedy(tiny_model, text, 4)


def test_hooks_see_the_fixed_width(tiny_model):
    enc = tiny_model.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    widths = []

    def record(resid, hook):
        widths.append(resid.shape[1])
        return resid

    greedy_generate(
        tiny_model,
        enc.input_ids,
        enc.attention_mask,
        3,
        fwd_hooks=[("blocks.1.hook_resid_pre", record)],
    )
    assert widths == [padded_width(enc.input_ids, 3)] * 3


def test_bad_generation_input(tiny_model):
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(ValueError, match="right padding"):
        greedy_generate(tiny_model, ids, torch.tensor([[0, 1, 1]]), 2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        greedy_generate(tiny_model, ids, torch.ones_like(ids), 0)


@pytest.mark.smollm2
def test_smollm2_generation_equals_hf_generate(smollm2):
    hf, tokenizer = load_smollm2_hf()
    enc = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    out = greedy_generate(smollm2, enc.input_ids, enc.attention_mask, 4)
    for row, text in zip(out, PROMPTS, strict=True):
        single = tokenizer(text, return_tensors="pt")
        expected = hf.generate(**single, max_new_tokens=4, do_sample=False)[
            0, single.input_ids.shape[1] :
        ]
        assert row.tolist() == expected.tolist()
    assert tokenizer.decode(out[0]).startswith(" France")


def entity_patch_hooks(model, enc, width, layer=2, k=None):
    """A hook swapping a random subspace (or the full residual) at each prompt's second token
    from another prompt's residual: the kind of intervention generation judging runs."""
    d_model = int(model.cfg.d_model)
    source = model(enc.input_ids.flip(0), attention_mask=enc.attention_mask.flip(0))
    resid = {}
    model.run_with_hooks(
        enc.input_ids.flip(0),
        attention_mask=enc.attention_mask.flip(0),
        fwd_hooks=[(f"blocks.{layer}.hook_resid_pre", lambda r, hook: resid.setdefault("s", r))],
    )
    del source
    basis = (
        torch.eye(d_model)
        if k is None
        else random_orthonormal_basis(d_model, k, generator=torch.Generator().manual_seed(0))
    )
    n = enc.input_ids.shape[0]
    selection = one_hot_selection(
        torch.ones(n, dtype=torch.long), torch.ones(n, dtype=torch.long), resid["s"].shape[1], width
    )
    return [soft_interchange_hook_for(model, layer, resid["s"], selection, basis)]


@pytest.mark.parametrize("k", [None, 8])
def test_kv_cached_generation_equals_uncached_under_an_intervention(tiny_model, k):
    enc = tiny_model.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    hooks = entity_patch_hooks(tiny_model, enc, padded_width(enc.input_ids, 5), k=k)
    plain = greedy_generate(tiny_model, enc.input_ids, enc.attention_mask, 5, fwd_hooks=hooks)
    cached = kv_cached_greedy_generate(
        tiny_model, enc.input_ids, enc.attention_mask, 5, fwd_hooks=hooks
    )
    assert torch.equal(plain, cached)
    unhooked = greedy_generate(tiny_model, enc.input_ids, enc.attention_mask, 5)
    assert torch.equal(unhooked, kv_cached_greedy_generate(
        tiny_model, enc.input_ids, enc.attention_mask, 5))  # fmt: skip
    if k is None:
        assert not torch.equal(plain, unhooked)  # the full swap changes the continuation


def test_kv_cached_generation_raises_no_deprecation_warning(tiny_model):
    """The KV-cache argument is passed under the name the installed transformers uses (5.24
    renamed past_key_values to cache and warns on the old name; ``make test-latest`` runs this
    on the newest release)."""
    enc = tiny_model.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        kv_cached_greedy_generate(tiny_model, enc.input_ids, enc.attention_mask, 3)


def test_kv_cached_generation_builds_no_autograd_graph(tiny_model):
    """Decoding runs under no_grad, even when the caller has gradients on."""
    enc = tiny_model.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    seen = []

    def record(hidden, hook=None):
        seen.append(torch.is_grad_enabled())
        return hidden

    with torch.enable_grad():
        kv_cached_greedy_generate(
            tiny_model, enc.input_ids, enc.attention_mask, 3,
            fwd_hooks=[("blocks.1.hook_resid_pre", record)],
        )  # fmt: skip
    assert seen and not any(seen)


def test_shared_prefix_length_is_the_common_prefix_less_a_token_per_row(tiny_model):
    enc = tiny_model.tokenizer(TEMPLATE_PROMPTS, return_tensors="pt", padding=True)
    prefix = tiny_model.tokenizer("Which country is this city in? The city of")["input_ids"]
    assert shared_prefix_length(enc.input_ids, enc.attention_mask) == len(prefix)
    ids = torch.tensor([[5, 6, 7, 0], [5, 6, 7, 8]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    assert shared_prefix_length(ids, mask) == 2  # the shorter row keeps its last token
    assert shared_prefix_length(ids[:, :1], mask[:, :1]) == 0
    differ_at_once = torch.tensor([[5, 6], [4, 6]])
    assert shared_prefix_length(differ_at_once, torch.ones_like(differ_at_once)) == 0


def test_kv_cached_generation_with_a_shared_prefix_equals_uncached(tiny_model):
    """The template prefix run once for one row and repeated gives the same tokens and the
    as every row's full prompt pass, for any shorter shared prefix too."""
    enc = tiny_model.tokenizer(TEMPLATE_PROMPTS, return_tensors="pt", padding=True)
    shared = shared_prefix_length(enc.input_ids, enc.attention_mask)
    assert shared >= 8
    plain = greedy_generate(tiny_model, enc.input_ids, enc.attention_mask, 5)
    for prefix in (1, shared // 2, shared):
        cached = kv_cached_greedy_generate(
            tiny_model, enc.input_ids, enc.attention_mask, 5, shared_prefix=prefix
        )
        assert torch.equal(plain, cached), prefix


def test_shared_prefix_refused_where_rows_differ_or_hooks_are_given(tiny_model):
    enc = tiny_model.tokenizer(TEMPLATE_PROMPTS, return_tensors="pt", padding=True)
    shared = shared_prefix_length(enc.input_ids, enc.attention_mask)
    with pytest.raises(ValueError, match=f"share only {shared} leading tokens"):
        kv_cached_greedy_generate(
            tiny_model, enc.input_ids, enc.attention_mask, 2, shared_prefix=shared + 1
        )
    with pytest.raises(ValueError, match="fwd_hooks"):
        kv_cached_greedy_generate(
            tiny_model, enc.input_ids, enc.attention_mask, 2, shared_prefix=1,
            fwd_hooks=[("blocks.1.hook_resid_pre", lambda resid, hook: resid)],
        )  # fmt: skip


@pytest.mark.smollm2
def test_smollm2_kv_cached_generation_equals_uncached_under_an_intervention(smollm2):
    enc = smollm2.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    hooks = entity_patch_hooks(smollm2, enc, padded_width(enc.input_ids, 5), layer=4)
    plain = greedy_generate(smollm2, enc.input_ids, enc.attention_mask, 5, fwd_hooks=hooks)
    cached = kv_cached_greedy_generate(
        smollm2, enc.input_ids, enc.attention_mask, 5, fwd_hooks=hooks
    )
    assert torch.equal(plain, cached)
