import pytest
import torch

import hyperdas_tl.data.instance_decoding as decoding_module
from hyperdas_tl.data.instance import InstanceConfig, build_instance
from hyperdas_tl.data.instance_decoding import DecodingMismatchError, model_generate_fn


@pytest.mark.smollm2
def test_kv_cached_matches_greedy_generate_on_smollm2(smollm2):
    model = smollm2
    prompts = [
        "Paris is a city in the country of",
        '{"city": "Aalborg", "country": "',
        "The past tense of abandon is",
        "Q: What is the latitude of Lima in degrees? A:",
    ]
    slow = model_generate_fn(model, batch_size=4, backend="greedy_generate")(prompts, 4)
    fast = model_generate_fn(model, batch_size=4, backend="kv_cached")(prompts, 4)
    assert fast == slow
    assert slow[0].strip().startswith("France")


def test_a_broken_cached_decoder_stops_the_build(tiny_model, tiny_domain, monkeypatch):
    """A KV cache that corrupts every token after the first (transformers 5.24 on the bridge):
    the build stops on the first batch with a message instead of storing corrupted labels."""
    real = decoding_module.kv_cached_greedy_generate
    dash = tiny_model.tokenizer.convert_tokens_to_ids("-")

    def broken(*args, **kwargs):
        tokens = real(*args, **kwargs).clone()
        tokens[:, 1:] = dash
        return tokens

    monkeypatch.setattr(decoding_module, "kv_cached_greedy_generate", broken)
    config = InstanceConfig(max_entities=4, max_templates_per_attribute=2, generation="kv_cached")
    with pytest.raises(DecodingMismatchError, match="disagrees with uncached greedy decoding"):
        build_instance(tiny_model, tiny_domain, config, model_name="tiny-llama")
    monkeypatch.setattr(decoding_module, "kv_cached_greedy_generate", real)
    built = build_instance(tiny_model, tiny_domain, config, model_name="tiny-llama")
    assert built.attribute("Country").entities


def test_a_rounding_tie_is_not_a_broken_decoder(tiny_model):
    """Where the two paths part at a near tie of the uncached logits (float rounding, common in
    bf16), the build goes on; a token the uncached logits rank far below is an error."""
    tok = tiny_model.tokenizer
    batch = tok(["Paris is a city in", "Hi there"], return_tensors="pt", padding=True)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    uncached = decoding_module.greedy_generate(tiny_model, ids, mask, 2)
    logits = tiny_model(ids, attention_mask=mask)
    last = mask.sum(dim=1) - 1
    first_step = logits[torch.arange(2), last]
    runner_up = first_step.topk(2).indices[:, 1]
    worst = first_step.argmin(dim=-1)
    cached = uncached.clone()
    cached[0, 0] = worst[0]
    assert decoding_module.near_tie_rows(tiny_model, ids, mask, cached, uncached) == []
    gap = float(first_step[0, uncached[0, 0]] - first_step[0, runner_up[0]])
    cached[0, 0] = runner_up[0]
    ties = decoding_module.near_tie_rows(tiny_model, ids, mask, cached, uncached)
    assert ties == ([0] if gap <= decoding_module.TIE_TOLERANCE[torch.float32] else [])
    with pytest.raises(DecodingMismatchError):
        decoding_module.check_cached_decoding(cached, uncached, ["a", "b"], tok, ties=[])
    decoding_module.check_cached_decoding(cached, uncached, ["a", "b"], tok, ties=[0])
