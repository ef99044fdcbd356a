import pytest
import torch

from hyperdas_tl.generation import greedy_generate, padded_width
from hyperdas_tl.models import load_smollm2_hf

PROMPTS = ["Paris is a city in the country of", "The capital of Japan is", "Berlin is in"]


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
