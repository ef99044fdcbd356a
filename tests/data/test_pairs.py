import dataclasses

import pytest
from tiny_ravel import TINY_CITIES, fake_generator

from hyperdas_tl.data.concepts import concept_text
from hyperdas_tl.data.instance import InstanceConfig, build_instance
from hyperdas_tl.data.judging import labels_agree
from hyperdas_tl.data.pairs import PAIR_SPLITS, PairConfig, check_no_leakage, make_pairs


@pytest.fixture
def instance(tiny_domain):
    return build_instance(
        None,
        tiny_domain,
        InstanceConfig(),
        model_name="fake",
        generate=fake_generator(tiny_domain, {"Country": {"Paris"}}),
    )


def test_all_splits_cause_and_isolate(instance):
    pairs = make_pairs(instance, "Country", PairConfig(max_pairs_per_split=40))
    assert set(pairs.splits) == set(PAIR_SPLITS)
    counts = pairs.counts()
    for split in PAIR_SPLITS:
        assert counts[split]["cause"] > 0 and counts[split]["isolate"] > 0, split
        assert sum(counts[split].values()) <= 40
    check_no_leakage(instance, pairs)


def test_labels_concepts_and_disagreement(instance):
    pairs = make_pairs(instance, "Country", PairConfig(max_pairs_per_split=40))
    entity_names = set(TINY_CITIES)
    for examples in pairs.splits.values():
        for ex in examples:
            assert not labels_agree(ex.base_label, ex.counterfactual_label)
            assert ex.base_entity != ex.source_entity
            assert ex.concept == concept_text("city", "Country") == "the country of a city"
            assert not any(name in ex.concept for name in entity_names)
            assert ex.target_attribute == "Country"
            if ex.is_cause:
                assert ex.queried_attribute == "Country" and ex.label == ex.counterfactual_label
            else:
                assert ex.queried_attribute == "Continent" and ex.label == ex.base_label
            # "Paris" is not known for Country, so it never appears in a Country prompt.
            if ex.queried_attribute == "Country":
                assert "Paris" not in (ex.base_entity, ex.source_entity)


def test_no_leakage_per_setting(instance, tiny_domain):
    pairs = make_pairs(instance, "Continent", PairConfig(max_pairs_per_split=60))
    train_entities = set(tiny_domain.entities("train"))
    train_templates = {
        t.text for a in tiny_domain.attributes for t in tiny_domain.templates_for(a, "train")
    }
    train_filled = {t.replace("%s", e) for t in train_templates for e in TINY_CITIES}
    train_filled |= {
        c.fill(e) for c in tiny_domain.contexts if c.split == "train" for e in TINY_CITIES
    }
    for split in ("val_entity", "test_entity"):
        for ex in pairs.splits[split]:
            assert ex.base_entity not in train_entities and ex.source_entity not in train_entities
            assert ex.base_prompt in train_filled  # entity setting: train templates
    for split in ("val_context", "test_context"):
        for ex in pairs.splits[split]:
            assert ex.base_entity in train_entities and ex.source_entity in train_entities
            assert ex.base_prompt not in train_filled and ex.source_prompt not in train_filled
    for ex in pairs.splits["train"]:
        assert ex.base_prompt in train_filled and ex.source_prompt in train_filled


def test_check_no_leakage_catches_a_leak(instance):
    pairs = make_pairs(instance, "Country", PairConfig(max_pairs_per_split=20))
    leaked = dataclasses.replace(pairs.splits["test_entity"][0], base_entity="Berlin")
    leaked = dataclasses.replace(
        leaked,
        base_prompt=leaked.base_prompt.replace(
            pairs.splits["test_entity"][0].base_entity, "Berlin"
        ),
    )
    pairs.splits["test_entity"].append(leaked)
    with pytest.raises(ValueError, match="'Berlin' is from the 'train' entity split"):
        check_no_leakage(instance, pairs)


def test_seeded_and_configurable(instance):
    a = make_pairs(instance, "Country", PairConfig(max_pairs_per_split=30, seed=1))
    b = make_pairs(instance, "Country", PairConfig(max_pairs_per_split=30, seed=1))
    assert a.splits == b.splits
    only_cause = make_pairs(
        instance,
        "Country",
        PairConfig(max_pairs_per_split=30, cause_fraction=1.0, splits=("train",)),
    )
    assert set(only_cause.splits) == {"train"}
    assert all(ex.is_cause for ex in only_cause.splits["train"])
    with pytest.raises(ValueError, match="unknown pair splits"):
        PairConfig(splits=("dev",))
    with pytest.raises(ValueError, match="not in this 'city' instance"):
        make_pairs(instance, "Mayor")


def test_generic_concept_fallback():
    assert concept_text("city", "Mayor") == "the mayor of a city"
    assert concept_text("spaceship", "Crew") == "the crew of a spaceship"


def test_config_round_trip():
    config = PairConfig(max_pairs_per_split=7, splits=("train", "test_context"))
    assert PairConfig.from_dict(config.to_dict()) == config


def test_text_that_is_a_train_context_and_a_test_template_is_not_used(tmp_path):
    """RAVEL's nobel_prize_winner has such texts; using one in train would leak a test
    template into training."""
    from tiny_ravel import tiny_ravel_files, write_tiny_ravel

    from hyperdas_tl.data.ravel import load_ravel

    files = tiny_ravel_files()
    clash = "Rome is in Italy. %s is in"  # a test Country template
    files["wikipedia_city_entity_prompts.json"] = {clash: {"split": "train", "entity": None}}
    domain = load_ravel("city", write_tiny_ravel(tmp_path, files))
    instance = build_instance(None, domain, model_name="fake", generate=fake_generator(domain))
    config = PairConfig(max_pairs_per_split=80, context_source_fraction=1.0, splits=("train",))
    pairs = make_pairs(instance, "Country", config)
    assert pairs.splits["train"]
    assert not any(ex.source_prompt.startswith("Rome is in Italy.") for ex in pairs.splits["train"])
    check_no_leakage(instance, pairs)
    leaked = dataclasses.replace(
        pairs.splits["train"][0],
        source_prompt=clash.replace("%s", pairs.splits["train"][0].source_entity),
    )
    pairs.splits["train"].append(leaked)
    with pytest.raises(ValueError, match=r"split\(s\) \['test', 'train'\]"):
        check_no_leakage(instance, pairs)


@pytest.mark.ravel
def test_real_nobel_pairs_do_not_leak(ravel_archive):
    """Real RAVEL data has texts that are a context in one split and a template in another."""
    from hyperdas_tl.data.ravel import load_ravel

    domain = load_ravel("nobel_prize_winner", ravel_archive)
    config = InstanceConfig(max_entities=24, max_templates_per_attribute=12)
    probe = build_instance(
        None, domain, config, model_name="fake", generate=lambda p, n: [" x"] * len(p)
    )
    entities = probe.attribute("Field").entities
    instance = build_instance(
        None, domain, config, model_name="fake", generate=fake_generator(domain, entities=entities)
    )
    for attribute in instance.attributes:
        pairs = make_pairs(instance, attribute, PairConfig(max_pairs_per_split=100))
        check_no_leakage(instance, pairs)
        assert sum(len(v) for v in pairs.splits.values()) > 0
