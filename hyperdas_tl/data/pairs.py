"""Cause and isolate interchange examples from a model-specific instance, in RAVEL's splits.

For a target attribute A (the concept):

- **Cause**: the base prompt asks about A for entity e; the source prompt (a template of any
  attribute, or a generic source context) mentions another entity e'. Label = the model's own
  output for the base template filled with e' (counterfactual label).
- **Isolate**: the base prompt asks about B != A; label = the model's output for the base prompt
  (base label): swapping A's subspace must not change B.

Pairs whose base and counterfactual labels agree are dropped (they cannot tell an intervention
from none). Every example carries the concept text of A, never an entity name.

Splits (names used as ``InterventionExample.split``):

=================  ===================  ================  ========================================
split              base/source entities  base templates    source prompts
=================  ===================  ================  ========================================
``train``          train                train             train templates + train contexts
``val_entity``     val                  train             train templates + train contexts
``test_entity``    test                 train             train templates + train contexts
``val_context``    train                val               val templates + val contexts
``test_context``   train                test              test templates + test contexts
=================  ===================  ================  ========================================

So the entity setting never shows a training entity at evaluation, and the context setting
never shows a training template or context (:func:`check_no_leakage` verifies both).
"""

import random
from dataclasses import asdict, dataclass, field

from hyperdas_tl.data.concepts import concept_text
from hyperdas_tl.data.examples import InterventionExample
from hyperdas_tl.data.instance import RavelInstance
from hyperdas_tl.data.judging import is_degenerate_label, labels_agree
from hyperdas_tl.data.ravel import PLACEHOLDER, RavelDomain, Split

PAIR_SPLITS: dict[str, tuple[Split, Split]] = {
    "train": ("train", "train"),
    "val_entity": ("val", "train"),
    "test_entity": ("test", "train"),
    "val_context": ("train", "val"),
    "test_context": ("train", "test"),
}
"""``{split name: (entity split, template/context split)}``."""


@dataclass
class PairConfig:
    """How many cause/isolate examples to draw, and from what."""

    max_pairs_per_split: int = 1000
    """Examples per split (cause + isolate) for one target attribute."""
    cause_fraction: float = 0.5
    """Share of cause examples; the rest are isolate examples."""
    context_source_fraction: float = 0.25
    """Probability that a source prompt is a generic context sentence (when the split has any)
    rather than an attribute template."""
    splits: tuple[str, ...] = tuple(PAIR_SPLITS)
    """Which splits to build."""
    attempts_per_pair: int = 50
    """Sampling attempts per requested example before giving up on a small pool."""
    seed: int = 0
    """Seed of the sampling."""

    def __post_init__(self) -> None:
        self.splits = tuple(self.splits)
        if self.max_pairs_per_split < 1:
            raise ValueError(f"max_pairs_per_split must be >= 1, got {self.max_pairs_per_split}")
        for name in ("cause_fraction", "context_source_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        unknown = [s for s in self.splits if s not in PAIR_SPLITS]
        if unknown:
            raise ValueError(f"unknown pair splits {unknown}; known: {', '.join(PAIR_SPLITS)}")
        if self.attempts_per_pair < 1:
            raise ValueError("attempts_per_pair must be >= 1")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["splits"] = list(self.splits)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "PairConfig":
        return cls(**{**data, "splits": tuple(data.get("splits", PAIR_SPLITS))})


@dataclass
class RavelPairs:
    """Cause/isolate examples of one target attribute, per split."""

    domain: str
    target_attribute: str
    concept: str
    splits: dict[str, list[InterventionExample]] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {"cause": n, "isolate": n}}``."""
        return {
            name: {
                "cause": sum(e.kind == "cause" for e in examples),
                "isolate": sum(e.kind == "isolate" for e in examples),
            }
            for name, examples in self.splits.items()
        }


def sample_examples(
    instance: RavelInstance,
    target: str,
    split_name: str,
    config: PairConfig,
    rng: random.Random,
) -> list[InterventionExample]:
    """Draw the examples of one split (see the module docstring)."""
    domain = instance.domain
    entity_split, template_split = PAIR_SPLITS[split_name]
    concept = concept_text(domain.name, target)
    source_templates = [
        t for a in domain.attributes for t in domain.templates_for(a, template_split)
    ]
    # RAVEL's nobel_prize_winner lists a few texts both as a Wikipedia context of one split and
    # as a template of another: such texts are used in no role at all.
    splits_of = text_splits(domain)

    def unambiguous(text: str) -> bool:
        return splits_of[text] == {template_split}

    source_templates = [t for t in source_templates if unambiguous(t.text)]
    contexts = [c for c in domain.contexts if c.split == template_split and unambiguous(c.text)]

    def pools(attribute: str):
        templates = [
            t for t in instance.kept_templates(attribute, template_split) if unambiguous(t.text)
        ]
        entities = instance.kept_entities(attribute, entity_split)
        if not templates or len(entities) < 2:
            return None
        return templates, entities

    cause_pool = pools(target)
    isolate_pools = {
        b: p for b in instance.attributes if b != target and (p := pools(b)) is not None
    }
    n_cause = round(config.max_pairs_per_split * config.cause_fraction)
    wanted = {"cause": n_cause if cause_pool else 0}
    wanted["isolate"] = config.max_pairs_per_split - n_cause if isolate_pools else 0

    def source_prompt(entity: str) -> str:
        if contexts and (not source_templates or rng.random() < config.context_source_fraction):
            return rng.choice(contexts).fill(entity)
        return rng.choice(source_templates).fill(entity)

    examples: list[InterventionExample] = []
    seen: set[tuple[str, str, str]] = set()
    for kind, count in wanted.items():
        made = 0
        attempts = count * config.attempts_per_pair
        while made < count and attempts > 0 and (source_templates or contexts):
            attempts -= 1
            if kind == "cause":
                queried = target
                templates, entities = cause_pool
            else:
                queried = rng.choice(sorted(isolate_pools))
                templates, entities = isolate_pools[queried]
            template = rng.choice(templates)
            base_entity, source_entity = rng.sample(entities, 2)
            base_label = instance.label(queried, template.text, base_entity)
            counterfactual = instance.label(queried, template.text, source_entity)
            if is_degenerate_label(base_label) or is_degenerate_label(counterfactual):
                continue
            if labels_agree(base_label, counterfactual):
                continue
            source = source_prompt(source_entity)
            key = (kind, template.fill(base_entity), source)
            if key in seen:
                continue
            seen.add(key)
            examples.append(
                InterventionExample(
                    base_prompt=template.fill(base_entity),
                    base_entity=base_entity,
                    source_prompt=source,
                    source_entity=source_entity,
                    target_attribute=target,
                    queried_attribute=queried,
                    concept=concept,
                    label=counterfactual if kind == "cause" else base_label,
                    base_label=base_label,
                    counterfactual_label=counterfactual,
                    kind=kind,
                    split=split_name,
                    domain=domain.name,
                )
            )
            made += 1
    rng.shuffle(examples)
    return examples


def make_pairs(
    instance: RavelInstance, target_attribute: str, config: PairConfig | None = None
) -> RavelPairs:
    """Cause and isolate examples for ``target_attribute`` in every configured split."""
    config = config or PairConfig()
    instance.attribute(target_attribute)
    result = RavelPairs(
        domain=instance.domain.name,
        target_attribute=target_attribute,
        concept=concept_text(instance.domain.name, target_attribute),
    )
    for split_name in config.splits:
        rng = random.Random(f"{config.seed}-{instance.domain.name}-{target_attribute}-{split_name}")
        result.splits[split_name] = sample_examples(
            instance, target_attribute, split_name, config, rng
        )
    return result


def text_splits(domain: RavelDomain) -> dict[str, set[str]]:
    """``{template or context text: splits it has in any role}`` over the whole domain."""
    splits: dict[str, set[str]] = {}
    for attribute in domain.attributes:
        for template in domain.templates[attribute]:
            splits.setdefault(template.text, set()).add(template.split)
    for context in domain.contexts:
        splits.setdefault(context.text, set()).add(context.split)
    return splits


def prompt_splits(splits: dict[str, set[str]], prompt: str, entity: str) -> set[str]:
    """Splits of the templates/contexts ``prompt`` could have been filled from with ``entity``
    (empty when none matches)."""
    found: set[str] = set()
    start = prompt.find(entity)
    while start != -1:
        text = prompt[:start] + PLACEHOLDER + prompt[start + len(entity) :]
        found |= splits.get(text, set())
        start = prompt.find(entity, start + 1)
    return found


def check_no_leakage(instance: RavelInstance, pairs: RavelPairs) -> None:
    """Raise ``ValueError`` if an example uses an entity, template or context from a split its
    setting forbids (see the table in the module docstring)."""
    entity_split = instance.domain.entity_split
    splits = text_splits(instance.domain)
    for split_name, examples in pairs.splits.items():
        want_entities, want_templates = PAIR_SPLITS[split_name]
        for example in examples:
            for entity in (example.base_entity, example.source_entity):
                if entity_split[entity] != want_entities:
                    raise ValueError(
                        f"{split_name}: entity {entity!r} is from the "
                        f"{entity_split[entity]!r} entity split"
                    )
            for prompt, entity in (
                (example.base_prompt, example.base_entity),
                (example.source_prompt, example.source_entity),
            ):
                found = prompt_splits(splits, prompt, entity)
                if found != {want_templates}:
                    raise ValueError(
                        f"{split_name}: prompt {prompt!r} comes from template/context split(s) "
                        f"{sorted(found)}, not {want_templates!r}"
                    )
