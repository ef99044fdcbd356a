"""Is a model's continuation the stored attribute value? Explicit rules per attribute.

RAVEL keeps only the entities and templates a model gets right, so "right" must be spelled out.
Every attribute gets a :class:`MatchRule`:

- ``"prefix"`` (default): after :func:`normalise` (case, accents, punctuation, leading articles),
  the output starts with the value (or an alias) at a word boundary, or the output is a long
  enough prefix of the value (``min_partial_chars``; a few generated tokens may stop inside
  "Europe/Copenhagen"). Values holding commas ("Peace,Chemistry") accept each part.
- ``"numeric"``: the first number in the output (hemisphere letters S/W make it negative) is
  within ``tolerance`` of the value: latitude/longitude (RAVEL stores whole degrees) and years.

Aliases cover the usual spellings ("United States" / "USA" / "U.S.", "cm" / "centimeter").
:func:`extract_label` cuts a raw generation down to the answer the model gave (" Denmark, known
for" -> " Denmark"), which is what instances store as the model's own label.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

RuleKind = Literal["prefix", "numeric"]

ARTICLES = ("the ", "a ", "an ")

COUNTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "United States": ("USA", "US", "U.S.", "U.S.A.", "United States of America", "America"),
    "United Kingdom": ("UK", "U.K.", "Britain", "Great Britain", "England", "Scotland", "Wales"),
    "Russia": ("Russian Federation",),
    "China": ("People's Republic of China", "PRC", "Mainland China"),
    "South Korea": ("Korea", "Republic of Korea"),
    "North Korea": ("DPRK", "Democratic People's Republic of Korea"),
    "Czech Republic": ("Czechia",),
    "Czechia": ("Czech Republic",),
    "Netherlands": ("Holland", "The Netherlands"),
    "Ivory Coast": ("Cote d'Ivoire", "Côte d'Ivoire"),
    "Myanmar": ("Burma",),
    "Democratic Republic of the Congo": ("DR Congo", "DRC", "Congo"),
    "Republic of the Congo": ("Congo",),
    "Turkey": ("Turkiye", "Türkiye"),
    "Iran": ("Islamic Republic of Iran",),
    "Vietnam": ("Viet Nam",),
    "Taiwan": ("Republic of China",),
    "United Arab Emirates": ("UAE", "U.A.E."),
    "Eswatini": ("Swaziland",),
    "North Macedonia": ("Macedonia",),
    "Germany": ("West Germany", "East Germany"),
}

CONTINENT_ALIASES: dict[str, tuple[str, ...]] = {
    "Oceania": ("Australia", "Australasia"),
    "North America": ("Central America",),
}

UNIT_ALIASES: dict[str, tuple[str, ...]] = {
    "mm": ("millimeter", "millimetre", "millimeters", "millimetres"),
    "cm": ("centimeter", "centimetre", "centimeters", "centimetres"),
    "m": ("meter", "metre", "meters", "metres"),
    "km": ("kilometer", "kilometre", "kilometers", "kilometres"),
}

CATEGORY_ALIASES: dict[str, tuple[str, ...]] = {
    "non-living thing": ("non-living", "nonliving", "non living", "inanimate"),
    "non-living things": ("non-living", "nonliving", "non living", "inanimate"),
    "plant": ("plants",),
    "animal": ("animals",),
}

INDUSTRY_ALIASES: dict[str, tuple[str, ...]] = {
    "health care": ("healthcare",),
    "healthcare": ("health care",),
}


@dataclass(frozen=True)
class MatchRule:
    """How an output is compared with a stored value for one attribute."""

    kind: RuleKind = "prefix"
    """``"prefix"`` (normalised prefix match) or ``"numeric"`` (first number within tolerance)."""
    tolerance: float = 0.0
    """Allowed absolute difference for ``"numeric"`` rules."""
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """``{value: other accepted spellings}``."""
    strip_prefixes: tuple[str, ...] = ARTICLES
    """Leading words removed (after normalisation) from both sides before comparing."""
    min_partial_chars: int = 8
    """An output that stops inside the value counts when it has at least this many characters."""
    split_values_on_comma: bool = True
    """Treat "a,b" values as alternatives "a" or "b"."""

    def __post_init__(self) -> None:
        if self.kind not in ("prefix", "numeric"):
            raise ValueError(f"MatchRule.kind must be 'prefix' or 'numeric', got {self.kind!r}")
        if self.tolerance < 0:
            raise ValueError(f"MatchRule.tolerance must be >= 0, got {self.tolerance}")
        if self.min_partial_chars < 1:
            raise ValueError("MatchRule.min_partial_chars must be >= 1")


DEFAULT_RULE = MatchRule()
DEGREES = MatchRule(kind="numeric", tolerance=2.0)
YEAR = MatchRule(kind="numeric", tolerance=0.0)

ATTRIBUTE_RULES: dict[tuple[str, str], MatchRule] = {
    ("city", "Country"): MatchRule(aliases=COUNTRY_ALIASES),
    ("city", "Continent"): MatchRule(aliases=CONTINENT_ALIASES),
    ("city", "Latitude"): DEGREES,
    ("city", "Longitude"): DEGREES,
    ("city", "Timezone"): MatchRule(min_partial_chars=8),
    ("nobel_prize_winner", "Country of Birth"): MatchRule(aliases=COUNTRY_ALIASES),
    ("nobel_prize_winner", "Award Year"): YEAR,
    ("nobel_prize_winner", "Birth Year"): YEAR,
    ("occupation", "Duty"): MatchRule(strip_prefixes=(*ARTICLES, "to "), min_partial_chars=6),
    ("occupation", "Industry"): MatchRule(aliases=INDUSTRY_ALIASES),
    ("physical_object", "Size"): MatchRule(aliases=UNIT_ALIASES),
    ("physical_object", "Category"): MatchRule(aliases=CATEGORY_ALIASES),
    ("verb", "Definition"): MatchRule(strip_prefixes=(*ARTICLES, "to "), min_partial_chars=6),
    # "/ˈækˌsɛs/": IPA is compared without slashes; the comma separates variants.
    ("verb", "Pronunciation"): MatchRule(strip_prefixes=(), min_partial_chars=4),
}


def rule_for(domain: str, attribute: str) -> MatchRule:
    """The rule of one attribute (the default prefix rule when none is listed)."""
    return ATTRIBUTE_RULES.get((domain, attribute), DEFAULT_RULE)


def normalise(text: str, strip_prefixes: tuple[str, ...] = ARTICLES) -> str:
    """Lower case, no accents, punctuation to spaces (keeping ``-`` and ``/`` inside words),
    single spaces, leading ``strip_prefixes`` removed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("_", " ")
    text = re.sub(r"[^\w\s/\-ɐ-ʯˈˌːæðŋθʃʒɔɑɛɪʊəɝɹɫ]", " ", text)
    text = re.sub(r"(?<!\w)[-/]|[-/](?!\w)", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    changed = True
    while changed:
        changed = False
        for prefix in strip_prefixes:
            if text.startswith(prefix) and len(text) > len(prefix):
                text = text[len(prefix) :]
                changed = True
    return text


def value_alternatives(value: str, rule: MatchRule) -> list[str]:
    """The stored value, its comma-separated parts and its aliases (not normalised)."""
    parts = [value]
    if rule.split_values_on_comma and "," in value:
        parts += [p.strip() for p in value.split(",") if p.strip()]
    alternatives = list(parts)
    for part in parts:
        alternatives += list(rule.aliases.get(part, ()))
    return alternatives


NUMBER = re.compile(r"([-+−]?\d+(?:\.\d+)?)\s*°?\s*([NSEWnsew](?![a-zA-Z]))?")


def first_number(text: str) -> float | None:
    """The first number in ``text``; negative for a trailing S or W (``"33.9° S"`` -> -33.9)."""
    match = NUMBER.search(text)
    if match is None:
        return None
    number = float(match.group(1).replace("−", "-"))
    if match.group(2) and match.group(2).upper() in "SW":
        number = -abs(number)
    return number


def prefix_match(output: str, value: str, rule: MatchRule) -> bool:
    out = normalise(output, rule.strip_prefixes)
    if not out:
        return False
    for alternative in value_alternatives(value, rule):
        val = normalise(alternative, rule.strip_prefixes)
        if not val:
            continue
        if out == val or out.startswith(val + " "):
            return True
        if len(out) >= rule.min_partial_chars and val.startswith(out):
            return True
    return False


def judge(output: str, value: str, rule: MatchRule = DEFAULT_RULE) -> bool:
    """Whether the generated ``output`` states ``value`` under ``rule``."""
    if rule.kind == "numeric":
        predicted = first_number(output)
        if predicted is None:
            return False
        for alternative in value_alternatives(value, rule):
            target = first_number(alternative)
            if target is not None and abs(predicted - target) <= rule.tolerance:
                return True
        return False
    return prefix_match(output, value, rule)


LABEL_STOPS = re.compile(r'\n|"|,|;|\(|\)|(?<![A-Z])\.(?!\d)|\||:|\{|\}|\]|\[')


def extract_label(output: str) -> str:
    """The answer part of a raw generation, with its leading space: text up to the first
    newline, quote, comma, semicolon, bracket, colon or sentence-ending period, right-stripped.

    Returns ``""`` when the generation starts with such a stop (no usable answer).
    """
    match = LABEL_STOPS.search(output)
    label = output[: match.start()] if match else output
    return label.rstrip()


def is_degenerate_label(label: str) -> bool:
    """Whether an extracted label carries no answer: empty after normalisation (e.g. ``""``,
    ``" --"``, ``" ..."``). Such labels are refused when instances and pairs are built."""
    return not normalise(label, ())


def labels_agree(first: str, second: str) -> bool:
    """Whether two extracted labels say the same thing (normalised equality)."""
    return normalise(first, ()) == normalise(second, ())
