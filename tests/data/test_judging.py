import pytest

from hyperdas_tl.data.judging import (
    extract_label,
    first_number,
    judge,
    labels_agree,
    normalise,
    rule_for,
)


@pytest.mark.parametrize(
    ("domain", "attribute", "output", "value", "expected"),
    [
        ("city", "Country", " France, known for", "France", True),
        ("city", "Country", " the United States", "United States", True),
        ("city", "Country", " USA", "United States", True),
        ("city", "Country", " U.S.", "United States", True),
        ("city", "Country", " UK", "United Kingdom", True),
        ("city", "Country", " United", "United States", False),  # too short to be sure
        ("city", "Country", " Francesca", "France", False),  # not at a word boundary
        ("city", "Country", " Germany", "France", False),
        ("city", "Country", " Côte d'Ivoire", "Ivory Coast", True),
        ("city", "Continent", " North America", "North America", True),
        ("city", "Continent", " America", "North America", False),
        ("city", "Language", " Spanish", "Aimará,Quechua,Spanish", True),
        ("city", "Timezone", "Europe/Cop", "Europe/Copenhagen", True),
        ("city", "Timezone", " Europe", "Europe/Copenhagen", False),
        ("city", "Timezone", " America/Chicago", "America/Chicago", True),
        ("city", "Latitude", " 57.0° N", "57", True),
        ("city", "Latitude", " 55", "57", True),
        ("city", "Latitude", " 54", "57", False),
        ("city", "Longitude", " 122.4° W", "-122", True),
        ("city", "Longitude", " 122", "-122", False),
        ("city", "Longitude", " east", "10", False),
        ("nobel_prize_winner", "Birth Year", "1943", "1943", True),
        ("nobel_prize_winner", "Birth Year", "1944", "1943", False),
        ("nobel_prize_winner", "Field", " Chemistry", "Peace,Chemistry", True),
        ("physical_object", "Size", "centimeter", "cm", True),
        ("physical_object", "Size", "mm", "m", False),
        ("physical_object", "Category", "non-living", "non-living thing", True),
        ("verb", "Past Tense", " abandoned", "abandoned", True),
        ("verb", "Definition", " leave someone", "to leave someone and not return", True),
        ("occupation", "Duty", " play music", "play music", True),
        ("occupation", "Industry", " healthcare", "health care", True),
    ],
)
def test_rules(domain, attribute, output, value, expected):
    assert judge(extract_label(output), value, rule_for(domain, attribute)) is expected


def test_empty_output_is_wrong():
    assert not judge("", "France", rule_for("city", "Country"))
    assert not judge("   ", "France", rule_for("city", "Country"))


def test_extract_label_keeps_leading_space_and_decimals():
    assert extract_label(" Denmark, known for") == " Denmark"
    assert extract_label('France"}, {"city') == "France"
    assert extract_label(" 37.77° N, next") == " 37.77° N"
    assert extract_label(" U.S. and") == " U.S. and"  # abbreviations are not sentence ends
    assert extract_label(" France. The") == " France"
    assert extract_label('"}, {"') == ""


def test_helpers():
    assert normalise("  The  Côte-d'Ivoire!") == "cote-d ivoire"
    assert first_number("lat: 33.9° S") == pytest.approx(-33.9)
    assert first_number("no digits") is None
    assert labels_agree(" France", "france")
    assert not labels_agree(" France", " Spain")
