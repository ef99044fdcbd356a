"""Model-specific RAVEL instances: what a given model knows, in its own words.

RAVEL is not model-agnostic. For one model and one domain, :func:`build_instance`:

1. caps the data with explicit, seeded limits (:class:`InstanceConfig`): at most
   ``max_entities`` entities (stratified over the entity split) and at most
   ``max_templates_per_attribute`` templates per attribute (stratified over the template split);
2. greedy-generates ``max_new_tokens`` tokens for every capped template x entity prompt
   (batched, sorted by length, with a progress bar);
3. judges each output against the stored value (:mod:`hyperdas_tl.data.judging`) and keeps the
   templates the model answers correctly for at least ``min_template_accuracy`` of the entities,
   then the entities it answers correctly on at least ``min_entity_accuracy`` of the kept
   templates;
4. stores every output's extracted label: pairs use the model's own outputs as labels.

A built instance is cached on disk and reused (:mod:`hyperdas_tl.data.instance_cache`:
:func:`~hyperdas_tl.data.instance_cache.load_or_build_instance`). How the prompts are decoded,
and the check of the KV-cached decoder against uncached decoding, is
:mod:`hyperdas_tl.data.instance_decoding`. Degenerate labels (empty
after normalisation, punctuation only, e.g. ``" --"``) are judged wrong, never used as labels,
and counted per attribute (:attr:`AttributeInstance.degenerate_labels`).
"""

import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from hyperdas_tl.data.instance_decoding import (
    GENERATION_BACKENDS,
    GenerateFn,
    GenerationBackend,
    model_generate_fn,
)
from hyperdas_tl.data.judging import extract_label, is_degenerate_label, judge, rule_for
from hyperdas_tl.data.ravel import PLACEHOLDER, SPLITS, RavelDomain, Split, Template

logger = logging.getLogger(__name__)

INSTANCE_FORMAT_VERSION = 2

DEFAULT_NEW_TOKENS_BY_ATTRIBUTE: dict[str, int] = {
    "Latitude": 5,
    "Longitude": 5,
    "Birth Year": 5,
    "Award Year": 5,
}
"""Attributes whose answers need more tokens (SmolLM2/Llama tokenise digits one by one:
" 1943" is five tokens, " -122" four)."""


@dataclass
class InstanceConfig:
    """Caps and thresholds of a model-specific instance (RAVEL keeps ~400 entities and at most
    12 templates per attribute)."""

    max_entities: int | None = 400
    """Entities kept before filtering, sampled per entity split in proportion; None keeps all."""
    max_templates_per_attribute: int | None = 12
    """Templates per attribute before filtering, sampled per template split in proportion
    (at least one per split that has any); None keeps all."""
    attributes: tuple[str, ...] | None = None
    """Attributes to build (None: every attribute of the domain that has stored values)."""
    max_new_tokens: int = 3
    """Tokens generated per prompt (unless ``max_new_tokens_by_attribute`` says otherwise)."""
    max_new_tokens_by_attribute: dict[str, int] = field(
        default_factory=lambda: dict(DEFAULT_NEW_TOKENS_BY_ATTRIBUTE)
    )
    """Per-attribute overrides of ``max_new_tokens``."""
    batch_size: int = 32
    """Prompts per generation batch."""
    generation: GenerationBackend = "greedy_generate"
    """``"greedy_generate"`` (:func:`hyperdas_tl.generation.greedy_generate`, right padding, no
    KV cache), ``"kv_cached"`` (:func:`hyperdas_tl.generation.kv_cached_greedy_generate`:
    one prompt pass + one token per step on the plain HF modules under the bridge, 2-3x
    faster on CPU, the same tokens; its first batch is checked against greedy_generate on
    every build) or ``"prefix_cached"`` (the same, with the tokens a batch's prompts share,
    a template's text before the entity, run once per batch:
    :mod:`hyperdas_tl.data.instance_decoding`). A different backend is a different cached
    instance: in bf16 the rounding, and so a near-tie label, can differ."""
    min_template_accuracy: float = 0.1
    """A template is kept when the model is right on at least this fraction of entities."""
    min_entity_accuracy: float = 0.5
    """An entity is kept when the model is right on at least this fraction of kept templates."""
    seed: int = 0
    """Seed of the sampling caps."""

    def __post_init__(self) -> None:
        if self.attributes is not None:
            self.attributes = tuple(self.attributes)
        for name in ("max_entities", "max_templates_per_attribute"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        for attribute, n in {"*": self.max_new_tokens, **self.max_new_tokens_by_attribute}.items():
            if n < 1:
                raise ValueError(f"max_new_tokens must be >= 1, got {n} for {attribute!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.generation not in GENERATION_BACKENDS:
            raise ValueError(
                f"generation must be one of {GENERATION_BACKENDS}, got {self.generation!r}"
            )
        for name in ("min_template_accuracy", "min_entity_accuracy"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def new_tokens(self, attribute: str) -> int:
        """Tokens to generate for prompts about ``attribute``."""
        return self.max_new_tokens_by_attribute.get(attribute, self.max_new_tokens)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["attributes"] = list(self.attributes) if self.attributes is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "InstanceConfig":
        data = dict(data)
        if data.get("attributes") is not None:
            data["attributes"] = tuple(data["attributes"])
        return cls(**data)


@dataclass
class AttributeInstance:
    """One attribute of an instance: the capped grid, the model's outputs, what survived."""

    attribute: str
    templates: list[Template]
    """Capped templates (all were run)."""
    entities: list[str]
    """Capped entities with a stored value (all were run)."""
    outputs: dict[str, dict[str, str]]
    """``{template text: {entity: raw generated text}}``."""
    correct: dict[str, dict[str, bool]]
    """``{template text: {entity: judged correct}}``."""
    kept_templates: list[str]
    """Template texts that pass ``min_template_accuracy``."""
    kept_entities: list[str]
    """Entities that pass ``min_entity_accuracy`` on the kept templates."""
    degenerate_labels: int = 0
    """Outputs of the capped grid whose extracted label is degenerate (empty after
    normalisation); they are judged wrong and never become labels."""

    def label(self, template: str, entity: str) -> str:
        """The model's own answer (extracted label, leading space kept) for a prompt."""
        return extract_label(self.outputs[template][entity])

    @property
    def accuracy(self) -> float:
        """Fraction of the capped grid the model gets right (before filtering)."""
        flat = [ok for row in self.correct.values() for ok in row.values()]
        return sum(flat) / len(flat) if flat else 0.0

    def template_accuracy(self, template: str) -> float:
        row = self.correct[template]
        return sum(row.values()) / len(row) if row else 0.0

    def to_dict(self) -> dict:
        return {
            "attribute": self.attribute,
            "templates": [{"text": t.text, "split": t.split} for t in self.templates],
            "entities": self.entities,
            "outputs": self.outputs,
            "correct": self.correct,
            "kept_templates": self.kept_templates,
            "kept_entities": self.kept_entities,
            "degenerate_labels": self.degenerate_labels,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "AttributeInstance":
        attribute = data["attribute"]
        return cls(
            attribute=attribute,
            templates=[Template(t["text"], attribute, t["split"]) for t in data["templates"]],
            entities=list(data["entities"]),
            outputs=data["outputs"],
            correct=data["correct"],
            kept_templates=list(data["kept_templates"]),
            kept_entities=list(data["kept_entities"]),
            degenerate_labels=int(data["degenerate_labels"]),
        )


@dataclass
class RavelInstance:
    """A model-specific RAVEL instance of one domain."""

    model_name: str
    domain: RavelDomain
    config: InstanceConfig
    attributes: dict[str, AttributeInstance]
    skipped_attributes: dict[str, str] = field(default_factory=dict)
    """Attributes not built, with the reason (e.g. no stored values)."""
    build_seconds: float = 0.0
    """Wall time of the generation and filtering."""

    def attribute(self, name: str) -> AttributeInstance:
        if name not in self.attributes:
            reason = self.skipped_attributes.get(name, "not requested or unknown")
            raise ValueError(
                f"attribute {name!r} is not in this {self.domain.name!r} instance ({reason}); "
                f"built: {', '.join(self.attributes) or 'none'}"
            )
        return self.attributes[name]

    def kept_entities(self, attribute: str, split: Split | None = None) -> list[str]:
        entities = self.attribute(attribute).kept_entities
        return [e for e in entities if split is None or self.domain.entity_split[e] == split]

    def kept_templates(self, attribute: str, split: Split | None = None) -> list[Template]:
        item = self.attribute(attribute)
        kept = set(item.kept_templates)
        return [t for t in item.templates if t.text in kept and (split is None or t.split == split)]

    def label(self, attribute: str, template: str, entity: str) -> str:
        return self.attribute(attribute).label(template, entity)

    def to_dict(self) -> dict:
        return {
            "format_version": INSTANCE_FORMAT_VERSION,
            "model_name": self.model_name,
            "domain": self.domain.name,
            "domain_source": self.domain.source,
            "data_checksum": self.domain.checksum,
            "config": self.config.to_dict(),
            "attributes": {a: item.to_dict() for a, item in self.attributes.items()},
            "skipped_attributes": self.skipped_attributes,
            "build_seconds": self.build_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict, domain: RavelDomain) -> "RavelInstance":
        if data.get("format_version") != INSTANCE_FORMAT_VERSION:
            raise ValueError(f"instance format {data.get('format_version')} is not supported")
        if data["data_checksum"] != domain.checksum:
            raise ValueError(
                f"instance was built on different {domain.name!r} data "
                f"(checksum {data['data_checksum'][:12]} != {domain.checksum[:12]})"
            )
        return cls(
            model_name=data["model_name"],
            domain=domain,
            config=InstanceConfig.from_dict(data["config"]),
            attributes={
                a: AttributeInstance.from_dict(item) for a, item in data["attributes"].items()
            },
            skipped_attributes=dict(data.get("skipped_attributes", {})),
            build_seconds=float(data.get("build_seconds", 0.0)),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the instance as JSON (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, ensure_ascii=False)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, domain: RavelDomain) -> "RavelInstance":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls.from_dict(data, domain)


def stratified_sample(
    items: Sequence[str], split_of: Callable[[str], str], cap: int | None, rng: random.Random
) -> list[str]:
    """At most ``cap`` items, each split represented in proportion (at least one per non-empty
    split when ``cap`` allows); input order kept. ``None`` keeps everything."""
    items = list(items)
    if cap is None or cap >= len(items):
        return items
    by_split = {s: [i for i in items if split_of(i) == s] for s in SPLITS}
    present = [s for s in SPLITS if by_split[s]]
    quota = {s: max(1, round(cap * len(by_split[s]) / len(items))) for s in present}
    while sum(quota.values()) > cap:
        largest = max(present, key=lambda s: quota[s])
        if quota[largest] <= 1:
            break
        quota[largest] -= 1
    chosen = set()
    for s in present:
        chosen.update(rng.sample(by_split[s], min(quota[s], len(by_split[s]))))
    return [i for i in items if i in chosen]


def plan_attribute(
    domain: RavelDomain, attribute: str, entities: list[str], config: InstanceConfig
) -> tuple[list[Template], list[str]]:
    """Capped templates and entities (those with a stored value) of one attribute."""
    rng = random.Random(f"{config.seed}-{domain.name}-{attribute}-templates")
    templates = domain.templates_for(attribute)
    by_text = {t.text: t for t in templates}
    chosen = stratified_sample(
        [t.text for t in templates],
        lambda text: by_text[text].split,
        config.max_templates_per_attribute,
        rng,
    )
    with_value = [e for e in entities if domain.has_value(e, attribute)]
    return [by_text[t] for t in chosen], with_value


def filter_attribute(
    item_templates: list[Template],
    entities: list[str],
    correct: dict[str, dict[str, bool]],
    config: InstanceConfig,
) -> tuple[list[str], list[str]]:
    """Kept template texts and kept entities (see the module docstring, step 3)."""
    kept_templates = [
        t.text
        for t in item_templates
        if entities
        and sum(correct[t.text][e] for e in entities) / len(entities)
        >= config.min_template_accuracy
        and any(correct[t.text].values())
    ]
    kept_entities = []
    if kept_templates:
        for entity in entities:
            hits = sum(correct[t][entity] for t in kept_templates)
            if hits > 0 and hits / len(kept_templates) >= config.min_entity_accuracy:
                kept_entities.append(entity)
    return kept_templates, kept_entities


def build_instance(
    model: torch.nn.Module | None,
    domain: RavelDomain,
    config: InstanceConfig | None = None,
    *,
    model_name: str,
    generate: GenerateFn | None = None,
    parts_dir: Path | None = None,
) -> RavelInstance:
    """Build a model-specific instance (no caching; see :func:`load_or_build_instance`).

    Args:
        model: the TransformerLens model to query (may be None when ``generate`` is given).
        domain: the RAVEL domain (real or offline).
        config: caps and thresholds (default :class:`InstanceConfig`).
        model_name: name recorded in the instance and its cache key.
        generate: replaces the model's greedy generation (tests use known outputs).
        parts_dir: where the model's outputs are stored chunk by chunk as they are decoded, and
            shared with other processes building the same instance
            (:func:`~hyperdas_tl.data.instance_decoding.model_generate_fn`).
    """
    config = config or InstanceConfig()
    if generate is None:
        if model is None:
            raise ValueError("build_instance needs a model or a generate function")
        generate = model_generate_fn(
            model, config.batch_size, config.generation, parts_dir=parts_dir
        )
    requested = config.attributes or domain.attributes
    for attribute in requested:
        domain.check_attribute(attribute)
    start = time.perf_counter()
    entity_rng = random.Random(f"{config.seed}-{domain.name}-entities")
    entities = stratified_sample(
        domain.entities(), domain.entity_split.__getitem__, config.max_entities, entity_rng
    )

    plans: dict[str, tuple[list[Template], list[str]]] = {}
    skipped: dict[str, str] = {}
    for attribute in requested:
        templates, with_value = plan_attribute(domain, attribute, entities, config)
        if not with_value:
            skipped[attribute] = "no entity has a stored value"
            logger.warning("%s/%s: no stored values, skipped", domain.name, attribute)
            continue
        plans[attribute] = (templates, with_value)

    by_length: dict[int, list[tuple[str, str, str]]] = {}
    for attribute, (templates, with_value) in plans.items():
        for template in templates:
            for entity in with_value:
                key = (attribute, template.text, entity)
                by_length.setdefault(config.new_tokens(attribute), []).append(key)
    total = sum(len(keys) for keys in by_length.values())
    logger.info("%s: %d prompts for %d attributes", domain.name, total, len(plans))
    outputs: dict[str, dict[str, dict[str, str]]] = {a: {} for a in plans}
    for n_tokens, keys in sorted(by_length.items()):
        prompts = [template.replace(PLACEHOLDER, entity, 1) for _, template, entity in keys]
        raw = generate(prompts, n_tokens)
        if len(raw) != len(prompts):
            raise ValueError(f"generate returned {len(raw)} outputs for {len(prompts)} prompts")
        for (attribute, template, entity), text in zip(keys, raw, strict=True):
            outputs[attribute].setdefault(template, {})[entity] = text

    items = {}
    for attribute, (templates, with_value) in plans.items():
        rule = rule_for(domain.name, attribute)
        labels = {
            t.text: {e: extract_label(outputs[attribute][t.text][e]) for e in with_value}
            for t in templates
        }
        degenerate = sum(is_degenerate_label(x) for row in labels.values() for x in row.values())
        correct = {
            t.text: {
                e: not is_degenerate_label(labels[t.text][e])
                and judge(labels[t.text][e], domain.value(e, attribute), rule)
                for e in with_value
            }
            for t in templates
        }
        if degenerate:
            logger.warning(
                "%s/%s: %d of %d outputs have a degenerate label (refused)",
                domain.name,
                attribute,
                degenerate,
                len(templates) * len(with_value),
            )
        kept_templates, kept_entities = filter_attribute(templates, with_value, correct, config)
        items[attribute] = AttributeInstance(
            attribute=attribute,
            templates=templates,
            entities=with_value,
            outputs=outputs[attribute],
            correct=correct,
            kept_templates=kept_templates,
            kept_entities=kept_entities,
            degenerate_labels=degenerate,
        )
    return RavelInstance(
        model_name=model_name,
        domain=domain,
        config=config,
        attributes=items,
        skipped_attributes=skipped,
        build_seconds=time.perf_counter() - start,
    )
