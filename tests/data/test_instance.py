import pytest
from tiny_ravel import fake_generator

from hyperdas_tl.data.instance import (
    InstanceConfig,
    RavelInstance,
    build_instance,
    stratified_sample,
)
from hyperdas_tl.data.instance_decoding import model_generate_fn


def test_filtering_keeps_what_the_model_gets_right(tiny_domain):
    wrong = {"Country": {"Paris", "Seoul"}, "Continent": {"Lima"}}
    instance = build_instance(
        None,
        tiny_domain,
        InstanceConfig(),
        model_name="fake",
        generate=fake_generator(tiny_domain, wrong),
    )
    country = instance.attribute("Country")
    assert set(country.entities) == set(tiny_domain.entities())
    assert country.accuracy == pytest.approx(10 / 12)
    assert set(country.kept_entities) == set(tiny_domain.entities()) - {"Paris", "Seoul"}
    assert len(country.kept_templates) == 5
    # labels are the model's own outputs, cut to the answer.
    template = tiny_domain.templates_for("Country", "train")[0].text
    assert instance.label("Country", template, "Paris") == " Atlantis"
    assert instance.label("Country", template, "Berlin") == " Germany"
    assert instance.kept_entities("Continent", "train") == [
        "Berlin",
        "Nairobi",
        "Paris",
        "Tokyo",
        "Toronto",
    ]
    assert [t.split for t in instance.kept_templates("Country", "val")] == ["val"]


def test_template_threshold_drops_templates(tiny_domain):
    everyone = {"Country": set(tiny_domain.entities())}
    instance = build_instance(
        None,
        tiny_domain,
        InstanceConfig(min_template_accuracy=0.5),
        model_name="fake",
        generate=fake_generator(tiny_domain, everyone),
    )
    assert instance.attribute("Country").kept_templates == []
    assert instance.attribute("Country").kept_entities == []
    assert len(instance.attribute("Continent").kept_templates) == 5


def test_caps_are_seeded_and_stratified(tiny_domain):
    config = InstanceConfig(max_entities=6, max_templates_per_attribute=3, seed=3)
    a = build_instance(
        None, tiny_domain, config, model_name="f", generate=fake_generator(tiny_domain)
    )
    b = build_instance(
        None, tiny_domain, config, model_name="f", generate=fake_generator(tiny_domain)
    )
    country = a.attribute("Country")
    assert country.entities == b.attribute("Country").entities
    assert len(country.entities) == 6
    assert {tiny_domain.entity_split[e] for e in country.entities} == {"train", "val", "test"}
    assert sorted(t.split for t in country.templates) == ["test", "train", "val"]


def test_stratified_sample_quota():
    import random

    items = [f"e{i}" for i in range(100)]
    split = {f"e{i}": ("train" if i < 50 else "val" if i < 75 else "test") for i in range(100)}
    chosen = stratified_sample(items, split.__getitem__, 20, random.Random(0))
    assert len(chosen) == 20
    assert [split[c] for c in chosen].count("train") == 10
    assert stratified_sample(items, split.__getitem__, None, random.Random(0)) == items


def test_round_trip_rejects_other_data(tiny_domain, tmp_path):
    from hyperdas_tl.data.geonames import GeonamesConfig, build_geonames_city

    instance = build_instance(
        None, tiny_domain, model_name="fake", generate=fake_generator(tiny_domain)
    )
    path = instance.save(tmp_path / "i.json")
    assert RavelInstance.load(path, tiny_domain).to_dict() == instance.to_dict()
    with pytest.raises(ValueError, match="different 'city' data"):
        RavelInstance.load(path, build_geonames_city(GeonamesConfig(max_entities=10)))


def test_config_validation_and_unknown_attribute(tiny_domain):
    with pytest.raises(ValueError, match="max_entities"):
        InstanceConfig(max_entities=0)
    with pytest.raises(ValueError, match="min_entity_accuracy"):
        InstanceConfig(min_entity_accuracy=2.0)
    with pytest.raises((ValueError, TypeError), match="generation"):
        InstanceConfig(generation="beam")
    with pytest.raises(ValueError, match="unknown attribute 'Mayor'"):
        build_instance(
            None,
            tiny_domain,
            InstanceConfig(attributes=("Mayor",)),
            model_name="f",
            generate=fake_generator(tiny_domain),
        )
    assert InstanceConfig.from_dict(InstanceConfig(attributes=("Country",)).to_dict()) == (
        InstanceConfig(attributes=("Country",))
    )


def test_prefix_cached_build_equals_the_uncached_build(tiny_domain, tiny_model):
    configs = {
        backend: InstanceConfig(
            max_entities=6, max_templates_per_attribute=3, batch_size=4, generation=backend
        )
        for backend in ("greedy_generate", "prefix_cached")
    }
    built = {
        backend: build_instance(tiny_model, tiny_domain, config, model_name="tiny-llama")
        for backend, config in configs.items()
    }
    slow, fast = (built[b].to_dict() for b in configs)
    for key in ("config", "build_seconds"):  # the backend and the time may differ, nothing else
        fast[key] = slow[key]
    assert fast == slow


def test_tiny_llama_generation_runs_end_to_end(tiny_domain, tiny_model):
    model = tiny_model
    config = InstanceConfig(max_entities=4, max_templates_per_attribute=3, batch_size=4)
    instance = build_instance(model, tiny_domain, config, model_name="tiny-llama")
    country = instance.attribute("Country")
    assert len(country.entities) == 4 and len(country.templates) == 3
    outputs = [o for row in country.outputs.values() for o in row.values()]
    assert len(outputs) == 12 and all(isinstance(o, str) for o in outputs)
    generate = model_generate_fn(model, batch_size=2)
    prompts = ["Paris is a city in", "Hi"]
    assert generate(prompts, 2) == generate(prompts[::-1], 2)[::-1]  # order-independent


def test_degenerate_labels_are_refused_and_counted(tiny_domain):
    honest = fake_generator(tiny_domain)

    def punctuation_for_paris(prompts: list[str], max_new_tokens: int) -> list[str]:
        answers = honest(prompts, 1)
        return [" --" if "Paris" in p else a for p, a in zip(prompts, answers, strict=True)]

    instance = build_instance(
        None, tiny_domain, InstanceConfig(), model_name="fake", generate=punctuation_for_paris
    )
    country = instance.attribute("Country")
    n_templates = len(country.templates)
    assert country.degenerate_labels == n_templates  # one per template: Paris's answers
    assert not any(country.correct[t.text]["Paris"] for t in country.templates)
    assert "Paris" not in country.kept_entities
    again = RavelInstance.from_dict(instance.to_dict(), tiny_domain)
    assert again.attribute("Country").degenerate_labels == n_templates
