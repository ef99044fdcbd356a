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


TEMPLATES = ["The city of {} is in the country of", "Q: Which continent is {} on? A:", "{} is in"]
CITIES = ["Paris", "Lyon", "New York City", "Tokyo", "Rio de Janeiro", "Oslo", "Ho Chi Minh City"]


def template_prompts() -> list[str]:
    return [template.format(city) for template in TEMPLATES for city in CITIES]


def test_prefix_cached_decoding_gives_the_uncached_outputs(tiny_model, monkeypatch):
    """The prefix-cached backend decodes every prompt to what uncached greedy decoding gives,
    and does run each batch's shared template prefix once (a prefix longer than BOS)."""
    prompts = template_prompts()
    slow = model_generate_fn(tiny_model, batch_size=4, backend="greedy_generate")(prompts, 3)
    real = decoding_module.kv_cached_greedy_generate
    prefixes: list[int] = []

    def spy(*args, shared_prefix=0, **kwargs):
        prefixes.append(shared_prefix)
        return real(*args, shared_prefix=shared_prefix, **kwargs)

    monkeypatch.setattr(decoding_module, "kv_cached_greedy_generate", spy)
    fast = model_generate_fn(tiny_model, batch_size=4, backend="prefix_cached")(prompts, 3)
    assert fast == slow
    assert len(prefixes) == 6  # 21 prompts in batches of 4
    assert len(tiny_model.tokenizer("Q: Which continent is")["input_ids"]) in prefixes
    with pytest.raises((ValueError, TypeError), match="backend"):
        model_generate_fn(tiny_model, batch_size=4, backend="beam")


@pytest.mark.smollm2
def test_prefix_cached_matches_greedy_generate_on_smollm2(smollm2):
    prompts = template_prompts()
    slow = model_generate_fn(smollm2, batch_size=8, backend="greedy_generate")(prompts, 4)
    fast = model_generate_fn(smollm2, batch_size=8, backend="prefix_cached")(prompts, 4)
    assert fast == slow
    assert slow[CITIES.index("Paris")].strip().startswith("France")


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


def chunked_prompts(tiny_model, n: int) -> list[str]:
    words = ["Paris", "Lyon", "New York City", "Tokyo", "a", "Rio de Janeiro", "Oslo"]
    return [f"{words[i % len(words)]} is a city in {'the ' * (i % 3)}country" for i in range(n)]


def test_chunked_generation_gives_the_unchunked_outputs_and_resumes(
    tiny_model, tmp_path, monkeypatch
):
    """Outputs stored chunk by chunk equal an unchunked build's; a build that stopped keeps
    its finished chunks and the next one decodes only the rest."""
    monkeypatch.setattr(decoding_module, "CHUNK_BATCHES", 2)
    prompts = chunked_prompts(tiny_model, 19)  # batches of 3: 7 batches, 4 chunks
    plain = model_generate_fn(tiny_model, batch_size=3, backend="kv_cached")(prompts, 3)
    parts = tmp_path / "parts"
    real = decoding_module.kv_cached_greedy_generate
    decoded: list[int] = []

    def stops_after_two_chunks(model, ids, mask, n, **kwargs):
        if len(decoded) == 4:
            raise KeyboardInterrupt("stopped")
        decoded.append(ids.shape[0])
        return real(model, ids, mask, n, **kwargs)

    monkeypatch.setattr(decoding_module, "kv_cached_greedy_generate", stops_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        model_generate_fn(tiny_model, 3, "kv_cached", parts_dir=parts)(prompts, 3)
    assert len(list(parts.glob("*.json"))) == 2
    decoded.clear()

    def counted(model, ids, mask, n, **kwargs):
        decoded.append(ids.shape[0])
        return real(model, ids, mask, n, **kwargs)

    monkeypatch.setattr(decoding_module, "kv_cached_greedy_generate", counted)
    chunked = model_generate_fn(tiny_model, 3, "kv_cached", parts_dir=parts)(prompts, 3)
    assert chunked == plain
    assert decoded == [3, 3, 1]  # the two unfinished chunks only (2 batches + the last one)
    again = model_generate_fn(tiny_model, 3, "kv_cached", parts_dir=parts)(prompts, 3)
    assert again == plain and decoded == [3, 3, 1]  # all read from the parts folder


def test_a_chunk_another_process_holds_is_waited_for_and_read(tiny_model, tmp_path, monkeypatch):
    import threading

    from filelock import FileLock

    from hyperdas_tl.claims import lock_path

    monkeypatch.setattr(decoding_module, "CHUNK_BATCHES", 1)
    prompts = chunked_prompts(tiny_model, 6)
    plain = model_generate_fn(tiny_model, batch_size=3)(prompts, 2)
    parts = tmp_path / "parts"
    lock_path(parts, "new2-chunk00001").parent.mkdir(parents=True)
    other = FileLock(str(lock_path(parts, "new2-chunk00001")))
    other.acquire()
    decoded: list[int] = []
    real = decoding_module.greedy_generate

    def counted(*args):
        decoded.append(1)
        return real(*args)

    monkeypatch.setattr(decoding_module, "greedy_generate", counted)
    result: list[list[str]] = []
    worker = threading.Thread(
        target=lambda: result.append(model_generate_fn(tiny_model, 3, parts_dir=parts)(prompts, 2))
    )
    worker.start()
    worker.join(timeout=5)
    assert worker.is_alive() and decoded == [1]  # chunk 0 done, waiting for chunk 1
    other.release()  # the holder left without writing: this process decodes it
    worker.join(timeout=60)
    assert result == [plain] and decoded == [1, 1]


def test_a_parts_folder_of_other_prompts_is_a_clear_error(tiny_model, tmp_path):
    parts = tmp_path / "parts"
    prompts = chunked_prompts(tiny_model, 4)
    model_generate_fn(tiny_model, 2, parts_dir=parts)(prompts, 2)
    with pytest.raises(ValueError, match="holds the outputs of other prompts"):
        model_generate_fn(tiny_model, 2, parts_dir=parts)(prompts[:2] + ["Oslo is"] * 2, 2)
