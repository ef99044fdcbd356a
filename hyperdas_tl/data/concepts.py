"""Concept text: what the hypernetwork reads to know which attribute to intervene on.

A concept names the attribute and the entity type, never an entity ("the country of a city",
not "the country of Paris"), so the same text serves every example of that attribute.
"""

CONCEPTS: dict[tuple[str, str], str] = {
    ("city", "Country"): "the country of a city",
    ("city", "Continent"): "the continent of a city",
    ("city", "Language"): "the language spoken in a city",
    ("city", "Timezone"): "the time zone of a city",
    ("city", "Latitude"): "the latitude of a city",
    ("city", "Longitude"): "the longitude of a city",
    ("nobel_prize_winner", "Field"): "the field of a Nobel laureate's prize",
    ("nobel_prize_winner", "Award Year"): "the year a Nobel laureate won the prize",
    ("nobel_prize_winner", "Birth Year"): "the birth year of a Nobel laureate",
    ("nobel_prize_winner", "Country of Birth"): "the country of birth of a Nobel laureate",
    ("nobel_prize_winner", "Gender"): "the gender of a Nobel laureate",
    ("occupation", "Duty"): "the duties of an occupation",
    ("occupation", "Gender Bias"): "the gender associated with an occupation",
    ("occupation", "Industry"): "the industry of an occupation",
    ("occupation", "Work Location"): "the work location of an occupation",
    ("physical_object", "Category"): "the category of a physical object",
    ("physical_object", "Color"): "the color of a physical object",
    ("physical_object", "Size"): "the size unit of a physical object",
    ("physical_object", "Texture"): "the texture of a physical object",
    ("verb", "Definition"): "the meaning of a verb",
    ("verb", "Past Tense"): "the past tense of a verb",
    ("verb", "Pronunciation"): "the pronunciation of a verb",
    ("verb", "Singular"): "the third person singular of a verb",
}

ENTITY_TYPE_NAMES = {
    "city": "a city",
    "nobel_prize_winner": "a Nobel laureate",
    "occupation": "an occupation",
    "physical_object": "a physical object",
    "verb": "a verb",
}


def concept_text(domain: str, attribute: str) -> str:
    """The concept for ``attribute`` of ``domain``; a generic "the {attribute} of {entity type}"
    for pairs the table does not list."""
    if (domain, attribute) in CONCEPTS:
        return CONCEPTS[(domain, attribute)]
    entity = ENTITY_TYPE_NAMES.get(domain, f"a {domain.replace('_', ' ')}")
    return f"the {attribute.lower()} of {entity}"
