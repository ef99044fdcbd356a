import pytest
import torch
from bad_input import raises_bad_input

from hyperdas_tl import models
from hyperdas_tl.hooks import capture_resid_pre, resid_pre_name
from hyperdas_tl.models import (
    boot_bridge,
    build_tiny_llama_hf,
    llama3_8b_hf_config,
    load_hf_from_gguf,
    load_model,
    smollm2_gguf_path,
    tiny_llama_config,
)

PROMPTS = [
    "Paris is a city in the country of",
    "The Eiffel Tower is located in",
    "Tokyo is the capital of",
    "Berlin, the largest city of Germany, lies on the river",
    "Q: What language do people speak in Madrid?\nA:",
]


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown model name 'gpt-7'.*smollm2-135m"):
        load_model("gpt-7")
    with raises_bad_input("processing must be"):
        load_model("tiny-llama", processing="fold")
    with pytest.raises(ValueError, match="tiny_config only applies"):
        load_model("smollm2-135m", tiny_config=tiny_llama_config())


def test_tiny_config_validates():
    with pytest.raises(ValueError, match="not divisible by n_heads"):
        tiny_llama_config(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="n_key_value_heads"):
        tiny_llama_config(n_heads=4, n_key_value_heads=3)


def test_tiny_llama_is_the_llama_family_and_frozen(tiny_model):
    cfg = tiny_model.cfg
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_key_value_heads) == (4, 64, 4, 2)
    assert cfg.normalization_type == "RMS" and cfg.positional_embedding_type == "rotary"
    assert cfg.gated_mlp
    assert not any(p.requires_grad for p in tiny_model.parameters())
    assert not tiny_model.training


def test_tiny_bridge_matches_its_hf_twin(tiny_model):
    """Same seed, same weights: bridge logits and resid_pre equal an untouched HF model's."""
    hf = build_tiny_llama_hf(tiny_llama_config(), len(tiny_model.tokenizer))
    enc = tiny_model.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = hf(**enc, output_hidden_states=True)
        logits = tiny_model(enc.input_ids, attention_mask=enc.attention_mask)
    real = enc.attention_mask.bool()
    assert torch.equal(logits[real], expected.logits[real])
    resid = capture_resid_pre(tiny_model, enc.input_ids, [0, 1, 3], enc.attention_mask)
    for layer, value in resid.items():
        assert torch.equal(value[real], expected.hidden_states[layer][real])


def test_bridge_tokenises_exactly_like_the_hf_tokenizer(tiny_model):
    tokenizer = tiny_model.tokenizer
    for text in PROMPTS:
        expected = tokenizer(text)["input_ids"]
        assert tiny_model.to_tokens(text)[0].tolist() == expected
        assert expected[0] != tokenizer.bos_token_id  # SmolLM2 adds no BOS
    assert not tiny_model.cfg.default_prepend_bos
    assert tokenizer.padding_side == "right" and tokenizer.pad_token_id is not None


def test_llama3_8b_builds_the_expected_bridge_config(tiny_model):
    """The real target's architecture, booted on the meta device (no download, no memory)."""
    with torch.device("meta"):
        hf = models.LlamaForCausalLM(llama3_8b_hf_config())
    bridge = boot_bridge(models.LLAMA3_NAMES[0], hf, tiny_model.tokenizer, device="meta")
    cfg = bridge.cfg
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_key_value_heads) == (32, 4096, 32, 8)
    assert cfg.d_mlp == 14336 and cfg.d_vocab == 128256
    assert cfg.normalization_type == "RMS" and cfg.positional_embedding_type == "rotary"
    assert resid_pre_name(bridge, 31) == "blocks.31.hook_resid_pre"
    assert "blocks.31.hook_resid_pre" in bridge.hook_dict
    with pytest.raises(ValueError, match="out of range"):
        resid_pre_name(bridge, 32)


def test_llama3_goes_through_the_transformerlens_pretrained_path(monkeypatch, tiny_model):
    calls = {}

    def fake_boot(name, **kwargs):
        calls.update(name=name, **kwargs)
        return tiny_model

    monkeypatch.setattr(models.AutoTokenizer, "from_pretrained", lambda name: tiny_model.tokenizer)
    monkeypatch.setattr(models.TransformerBridge, "boot_transformers", staticmethod(fake_boot))
    load_model("meta-llama/Meta-Llama-3-8B-Instruct", device="cpu", dtype=torch.bfloat16)
    assert calls["name"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert calls["hf_model"] is None and calls["dtype"] == torch.bfloat16
    assert str(calls["device"]) == "cpu"


@pytest.fixture(scope="module")
def hf_reference():
    """A separate HF LlamaForCausalLM dequantised from the same GGUF (not from our cache)."""
    return load_hf_from_gguf(smollm2_gguf_path())


@pytest.mark.smollm2
def test_smollm2_matches_hf_from_the_same_gguf(smollm2, hf_reference):
    hf, tokenizer = hf_reference
    enc = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = hf(**enc, output_hidden_states=True)
        logits = smollm2(enc.input_ids, attention_mask=enc.attention_mask)
    real = enc.attention_mask.bool()
    delta = (logits.log_softmax(-1) - expected.logits.log_softmax(-1))[real].abs().max()
    assert delta < 1e-3
    resid = capture_resid_pre(smollm2, enc.input_ids, [0, 10, 29], enc.attention_mask)
    for layer, value in resid.items():
        assert torch.allclose(value[real], expected.hidden_states[layer][real], atol=1e-4)


@pytest.mark.smollm2
def test_smollm2_knows_paris_is_in_france(smollm2):
    out = smollm2.generate(
        "Paris is a city in the country of", max_new_tokens=2, do_sample=False, verbose=False
    )
    assert out.startswith("Paris is a city in the country of France")


@pytest.mark.smollm2
def test_compat_processing_keeps_resid_pre_and_log_probs(smollm2):
    compat = load_model("smollm2-135m", device="cpu", processing="compat")
    enc = smollm2.tokenizer(PROMPTS[:3], return_tensors="pt", padding=True)
    real = enc.attention_mask.bool()
    with torch.no_grad():
        raw_logits = smollm2(enc.input_ids, attention_mask=enc.attention_mask)
        compat_logits = compat(enc.input_ids, attention_mask=enc.attention_mask)
    delta = (raw_logits.log_softmax(-1) - compat_logits.log_softmax(-1))[real].abs().max()
    assert delta < 1e-3
    a = capture_resid_pre(smollm2, enc.input_ids, [5], enc.attention_mask)[5]
    b = capture_resid_pre(compat, enc.input_ids, [5], enc.attention_mask)[5]
    assert torch.allclose(a[real], b[real], atol=1e-3)


def test_plain_hf_model_shares_weights_and_matches_the_bridge(tiny_model):
    plain = models.plain_hf_model(tiny_model)
    names = {type(m).__module__ for m in plain.modules()}
    assert not any(name.startswith("transformer_lens") for name in names)
    bridge_ptrs = {p.data_ptr() for p in tiny_model.parameters()}
    assert all(p.data_ptr() in bridge_ptrs for p in plain.parameters())  # no copy
    ids = torch.randint(0, 1000, (2, 7))
    with torch.no_grad():
        assert torch.equal(plain(ids).logits, tiny_model(ids))
    # the bridge still works (the view did not rewire it)
    with torch.no_grad():
        assert torch.equal(plain(ids).logits, tiny_model(ids))


@pytest.mark.smollm2
def test_hf_generate_with_its_kv_cache_works_on_the_plain_hf_model(smollm2):
    """HF's own cached ``generate`` on the plain modules under the bridge equals uncached greedy
    decoding (on the bridge-wrapped model it corrupts every token after the first under
    transformers 5.24)."""
    from hyperdas_tl.generation import greedy_generate

    tok = smollm2.tokenizer
    prompts = ["Paris is a city in the country of", "The past tense of abandon is"]
    side, tok.padding_side = tok.padding_side, "left"
    try:
        left = tok(prompts, return_tensors="pt", padding=True)
    finally:
        tok.padding_side = side
    with torch.no_grad():
        out = models.plain_hf_model(smollm2).generate(
            **left, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id
        )
    cached = out[:, left["input_ids"].shape[1] :]
    batch = tok(prompts, return_tensors="pt", padding=True)
    uncached = greedy_generate(smollm2, batch["input_ids"], batch["attention_mask"], 4)
    assert torch.equal(cached, uncached)
    assert tok.decode(cached[0]) == " France, known for"
