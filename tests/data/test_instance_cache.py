from tiny_ravel import fake_generator

import hyperdas_tl.data.instance_cache as cache_module
from hyperdas_tl.data.instance import InstanceConfig
from hyperdas_tl.data.instance_cache import instance_cache_path, load_or_build_instance
from hyperdas_tl.data.instance_decoding import DECODER_VERSION


def test_cache_reuses_and_keys_on_config(tiny_domain, tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERDAS_TL_CACHE", str(tmp_path))
    calls: list[int] = []
    generate = fake_generator(tiny_domain, calls=calls)
    first = load_or_build_instance(
        None, tiny_domain, InstanceConfig(), model_name="fake", generate=generate
    )
    n_calls = len(calls)
    again = load_or_build_instance(
        None, tiny_domain, InstanceConfig(), model_name="fake", generate=generate
    )
    assert len(calls) == n_calls
    assert again.to_dict() == first.to_dict()
    assert instance_cache_path("fake", tiny_domain, InstanceConfig()).is_file()
    assert instance_cache_path("fake", tiny_domain, InstanceConfig(seed=1)) != (
        instance_cache_path("fake", tiny_domain, InstanceConfig())
    )
    assert instance_cache_path("other", tiny_domain, InstanceConfig()) != (
        instance_cache_path("fake", tiny_domain, InstanceConfig())
    )
    assert instance_cache_path("fake", tiny_domain, InstanceConfig(generation="prefix_cached")) != (
        instance_cache_path("fake", tiny_domain, InstanceConfig(generation="kv_cached"))
    )


def test_cache_key_includes_the_decoder_version(tiny_domain, monkeypatch):
    before = instance_cache_path("m", tiny_domain, InstanceConfig())
    monkeypatch.setattr(cache_module, "DECODER_VERSION", DECODER_VERSION + 1)
    assert instance_cache_path("m", tiny_domain, InstanceConfig()) != before


def test_a_model_build_keeps_its_outputs_in_a_parts_folder(
    tiny_model, tiny_domain, tmp_path, monkeypatch
):
    """The model's outputs go chunk by chunk to ``<cache file>.parts/`` while it is built; the
    instance is the one an uncached build makes."""
    monkeypatch.setenv("HYPERDAS_TL_CACHE", str(tmp_path))
    config = InstanceConfig(max_entities=4, max_templates_per_attribute=2, batch_size=2)
    built = load_or_build_instance(tiny_model, tiny_domain, config, model_name="tiny-llama")
    path = instance_cache_path("tiny-llama", tiny_domain, config)
    parts = cache_module.instance_parts_dir(path)
    assert path.is_file() and parts.is_dir() and list(parts.glob("*.json"))
    plain = load_or_build_instance(
        tiny_model, tiny_domain, config, model_name="tiny-llama", use_cache=False
    )
    assert plain.to_dict()["attributes"] == built.to_dict()["attributes"]
