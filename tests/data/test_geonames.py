import time

import pytest

from hyperdas_tl.data.geonames import CITY_TEMPLATES, GeonamesConfig, build_geonames_city
from hyperdas_tl.data.ravel import SPLITS


@pytest.fixture(scope="module")
def city():
    return build_geonames_city()


def test_fast_and_deterministic():
    start = time.perf_counter()
    first = build_geonames_city()
    assert time.perf_counter() - start < 10
    assert build_geonames_city().checksum == first.checksum
    assert build_geonames_city(GeonamesConfig(seed=1)).checksum != first.checksum


def test_real_values(city):
    assert city.source == "geonames" and city.name == "city"
    assert len(city.entity_split) > 1000
    assert city.value("Tokyo", "Country") == "Japan"
    assert city.value("Tokyo", "Continent") == "Asia"
    assert city.value("Tokyo", "Timezone") == "Asia/Tokyo"
    assert city.value("Tokyo", "Language") == "Japanese"
    assert abs(int(city.value("Tokyo", "Latitude")) - 36) <= 1
    assert abs(int(city.value("Tokyo", "Longitude")) - 140) <= 1
    assert int(city.value("Lima", "Latitude")) < 0 and int(city.value("Lima", "Longitude")) < 0
    for attribute in ("Country", "Continent", "Latitude", "Longitude", "Timezone"):
        assert all(city.has_value(e, attribute) for e in city.entities())


def test_template_styles_and_splits(city):
    for attribute, texts in CITY_TEMPLATES.items():
        templates = city.templates_for(attribute)
        assert [t.text for t in templates] == texts
        assert {t.split for t in templates} == set(SPLITS)
        assert any(t.text.startswith(("{", "[")) for t in templates)  # JSON-like
        assert any(t.text.count(".") >= 2 or "->" in t.text for t in templates)  # few-shot
        assert any(t.text.endswith((" of", " is")) for t in templates)  # plain cloze


def test_entity_split_fractions(city):
    counts = {s: len(city.entities(s)) for s in SPLITS}
    total = sum(counts.values())
    assert abs(counts["train"] / total - 0.5) < 0.01
    assert abs(counts["test"] / total - 0.25) < 0.01
    assert {c.split for c in city.contexts} == set(SPLITS)


def test_config_validation():
    with pytest.raises(ValueError, match="summing to 1"):
        GeonamesConfig(split_fractions=(0.5, 0.5, 0.5))
    small = build_geonames_city(GeonamesConfig(max_entities=30))
    assert len(small.entity_split) == 30


def test_config_round_trip():
    config = GeonamesConfig(min_population=500_000, seed=2)
    assert GeonamesConfig.from_dict(config.to_dict()) == config
