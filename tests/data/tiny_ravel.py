"""Helpers of the data tests: a tiny RAVEL-format dataset and a fake generator with known
answers (imported by conftest.py and the tests)."""

import json
from pathlib import Path

from hyperdas_tl.data.ravel import RavelDomain

TINY_CITIES = {
    # entity: (Country, Continent, split)
    "Paris": ("France", "Europe", "train"),
    "Berlin": ("Germany", "Europe", "train"),
    "Tokyo": ("Japan", "Asia", "train"),
    "Nairobi": ("Kenya", "Africa", "train"),
    "Lima": ("Peru", "South America", "train"),
    "Toronto": ("Canada", "North America", "train"),
    "Madrid": ("Spain", "Europe", "val"),
    "Cairo": ("Egypt", "Africa", "val"),
    "Sydney": ("Australia", "Oceania", "val"),
    "Seoul": ("South Korea", "Asia", "test"),
    "Lagos": ("Nigeria", "Africa", "test"),
    "Denver": ("United States", "North America", "test"),
}
TINY_TEMPLATES = {
    "Country": {
        "%s is a city in the country of": "train",
        "The city of %s is located in the country of": "train",
        '{"city": "%s", "country": "': "train",
        "Q: Which country is %s in? A:": "val",
        "Rome is in Italy. %s is in": "test",
    },
    "Continent": {
        "%s is a city on the continent of": "train",
        "The city of %s lies on the continent of": "train",
        '{"city": "%s", "continent": "': "train",
        "Q: Which continent is %s on? A:": "val",
        "Rome is in Europe. %s is in": "test",
    },
}
TINY_WIKI = {
    "Last year I moved to %s because": {"split": "train", "entity": None},
    "The mayor of %s said that": {"split": "val", "entity": "Madrid"},
    "A museum in %s shows": {"split": "test", "entity": None},
}


def tiny_ravel_files(domain: str = "city") -> dict[str, object]:
    """The five JSON objects of the tiny dataset, keyed by file name."""
    return {
        f"ravel_{domain}_entity_attributes.json": {
            e: {"Country": c, "Continent": k} for e, (c, k, _) in TINY_CITIES.items()
        },
        f"ravel_{domain}_attribute_to_prompts.json": {
            a: list(ts) for a, ts in TINY_TEMPLATES.items()
        },
        f"ravel_{domain}_prompt_to_split.json": {
            t: s for ts in TINY_TEMPLATES.values() for t, s in ts.items()
        },
        f"ravel_{domain}_entity_to_split.json": {e: s for e, (_, _, s) in TINY_CITIES.items()},
        f"wikipedia_{domain}_entity_prompts.json": TINY_WIKI,
    }


def write_tiny_ravel(folder: Path, files: dict[str, object] | None = None) -> Path:
    """Write the tiny dataset as ``folder/data/*.json`` (RAVEL's archive layout)."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, content in (files or tiny_ravel_files()).items():
        (data / name).write_text(json.dumps(content), encoding="utf-8")
    return folder


def fake_generator(
    domain: RavelDomain,
    wrong: dict[str, set[str]] | None = None,
    calls=None,
    entities: list[str] | None = None,
):
    """A ``GenerateFn`` that answers ``" " + value + ","`` (as a model would continue), except
    for the ``{attribute: {entity}}`` listed in ``wrong``, which get a wrong answer."""
    wrong = wrong or {}
    answers = {}
    for attribute in domain.attributes:
        for template in domain.templates_for(attribute):
            for entity in entities if entities is not None else domain.entities():
                if not domain.has_value(entity, attribute):
                    continue
                value = domain.value(entity, attribute)
                text = " Atlantis" if entity in wrong.get(attribute, set()) else f" {value}"
                answers[template.fill(entity)] = text + ", and"

    def generate(prompts: list[str], max_new_tokens: int) -> list[str]:
        if calls is not None:
            calls.append(len(prompts))
        return [answers[p] for p in prompts]

    return generate
