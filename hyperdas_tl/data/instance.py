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

A built instance is cached on disk, keyed by model name + the domain's data checksum + the
config + :data:`DECODER_VERSION`, and reused (:func:`load_or_build_instance`).

Decoding is never trusted blindly. With the KV-cached backend (``generation="kv_cached"``:
:func:`~hyperdas_tl.generation.kv_cached_greedy_generate`, our own greedy loop over the plain HF
modules under the bridge; HF's ``generate`` on the bridge-wrapped model corrupts every token
after the first under transformers 5.24, and is 7x slower than this loop in bf16 on CPU) the
first batch is decoded a second time by the uncached
:func:`~hyperdas_tl.generation.greedy_generate` and any difference stops the build with
:class:`DecodingMismatchError`. Degenerate labels (empty
after normalisation, punctuation only, e.g. ``" --"``) are judged wrong, never used as labels,
and counted per attribute (:attr:`AttributeInstance.degenerate_labels`).
"""

import hashlib
import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from jaxtyping import Int
from torch import Tensor
from tqdm.auto import tqdm

from hyperdas_tl.cache import cache_dir
from hyperdas_tl.data.judging import extract_label, is_degenerate_label, judge, rule_for
from hyperdas_tl.data.ravel import PLACEHOLDER, SPLITS, RavelDomain, Split, Template
from hyperdas_tl.generation import greedy_generate, kv_cached_greedy_generate
from hyperdas_tl.precision import autocast_like, model_dtype, precision_name

logger = logging.getLogger(__name__)

INSTANCE_FORMAT_VERSION = 2
DECODER_VERSION = 2
"""Version of the decoding implementation, part of the instance cache key. 2: the KV-cached
backend is checked against uncached greedy decoding and degenerate labels are refused;
instances cached by version 1 (labels possibly corrupted by transformers 5.24's cache) are
rebuilt."""
GenerationBackend = Literal["greedy_generate", "kv_cached"]
GenerateFn = Callable[[list[str], int], list[str]]
"""``(prompts, max_new_tokens) -> raw generated continuations`` (one string per prompt)."""

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
    KV cache) or ``"kv_cached"`` (:func:`hyperdas_tl.generation.kv_cached_greedy_generate`:
    one prompt pass + one token per step on the plain HF modules under the bridge, 2-3x
    faster on CPU, the same tokens; its first batch is checked against greedy_generate on
    every build)."""
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
        if self.generation not in ("greedy_generate", "kv_cached"):
            raise ValueError(
                f"generation must be 'greedy_generate' or 'kv_cached', got {self.generation!r}"
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


class DecodingMismatchError(ValueError):
    """KV-cached decoding disagreed with uncached greedy decoding on the check batch."""


def _decode_rows(tokenizer, rows: list[list[int]]) -> list[str]:
    eos = tokenizer.eos_token_id
    texts = []
    for row in rows:
        if eos is not None and eos in row:
            row = row[: row.index(eos)]
        texts.append(tokenizer.decode(row))
    return texts


TIE_TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 0.5}
"""Largest logit gap (uncached argmax minus the cached path's token, at the first step where
they differ) still read as a rounding tie between the two paths, by the target's dtype. A
broken cache misses by whole logits (transformers 5.24: every token after the first is "-")."""


def near_tie_rows(
    model: torch.nn.Module,
    input_ids: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"],
    cached: Int[Tensor, "batch new"],
    uncached: Int[Tensor, "batch new"],
) -> list[int]:
    """Rows whose cached decoding departs from the uncached one where the uncached logits are a
    near tie (gap <= :data:`TIE_TOLERANCE`) between the two tokens, i.e. float rounding."""
    differ = (cached != uncached).any(dim=1)
    if not bool(differ.any()):
        return []
    lengths = attention_mask.long().sum(dim=1)
    width = input_ids.shape[1] + uncached.shape[1]
    ids = torch.zeros(input_ids.shape[0], width, dtype=input_ids.dtype, device=input_ids.device)
    ids[:, : input_ids.shape[1]] = input_ids * attention_mask
    mask = torch.zeros_like(ids)
    rows = torch.arange(ids.shape[0], device=ids.device)
    for step in range(uncached.shape[1]):
        ids[rows, lengths + step] = uncached[:, step]
        mask[rows, lengths + step] = 1
    mask[:, : input_ids.shape[1]] = attention_mask
    with torch.no_grad(), autocast_like(model):
        logits = model(ids, attention_mask=mask).float()
    tolerance = TIE_TOLERANCE.get(model_dtype(model), 1e-3)
    ties = []
    for row in torch.nonzero(differ).flatten().tolist():
        step = int((cached[row] != uncached[row]).nonzero()[0])
        position = int(lengths[row]) + step - 1
        scores = logits[row, position]
        gap = float(scores[uncached[row, step]] - scores[cached[row, step]])
        if gap <= tolerance:
            ties.append(row)
    return ties


def check_cached_decoding(
    cached: Int[Tensor, "batch new"],
    uncached: Int[Tensor, "batch new"],
    prompts: list[str],
    tokenizer,
    ties: Sequence[int] = (),
) -> None:
    """Raise :class:`DecodingMismatchError` unless the two decodings agree token for token on
    every row outside ``ties`` (rows where they part at a rounding tie, :func:`near_tie_rows`)."""
    import transformers

    cached_texts = _decode_rows(tokenizer, cached.tolist())
    uncached_texts = _decode_rows(tokenizer, uncached.tolist())
    if cached.shape != uncached.shape:
        differing = list(range(len(prompts)))
    else:
        differing = [
            i
            for i in range(len(prompts))
            if not torch.equal(cached[i].cpu(), uncached[i].cpu()) and i not in set(ties)
        ]
    if not differing:
        if ties:
            logger.info("cached decoding parts from uncached at %d rounding ties", len(ties))
        return
    first = differing[0]
    raise DecodingMismatchError(
        f"KV-cached decoding (generation='kv_cached', transformers {transformers.__version__}) "
        f"disagrees with uncached greedy decoding on {len(differing)} of {len(prompts)} prompts "
        f"of the first batch, e.g. {prompts[first]!r} -> {cached_texts[first]!r} (cached) vs "
        f"{uncached_texts[first]!r} (uncached), not at a rounding tie. Labels would be "
        "corrupted; nothing was built. Install the tested versions (pip install -c "
        "constraints.txt ...) or build with generation='greedy_generate'."
    )


def model_generate_fn(
    model: torch.nn.Module, batch_size: int, backend: GenerationBackend = "greedy_generate"
) -> GenerateFn:
    """A :data:`GenerateFn` running ``model`` in length-sorted batches with a progress bar
    (``backend``: see :attr:`InstanceConfig.generation`). With ``"kv_cached"``, the first batch
    it decodes is decoded again without a cache and compared (:func:`check_cached_decoding`)."""
    tokenizer = model.tokenizer
    device = next(model.parameters()).device
    verified = backend != "kv_cached"

    def encode(texts: list[str]) -> tuple[Tensor, Tensor]:
        batch = tokenizer(texts, return_tensors="pt", padding=True)
        return batch["input_ids"].to(device), batch["attention_mask"].to(device)

    def decode(texts: list[str], max_new_tokens: int, cached: bool) -> Tensor:
        fn = kv_cached_greedy_generate if cached else greedy_generate
        return fn(model, *encode(texts), max_new_tokens)

    def verify(texts: list[str], max_new_tokens: int, new: Tensor) -> None:
        reference = decode(texts, max_new_tokens, cached=False)
        ties = near_tie_rows(model, *encode(texts), new, reference)
        check_cached_decoding(new, reference, texts, tokenizer, ties)

    def generate(prompts: list[str], max_new_tokens: int) -> list[str]:
        nonlocal verified
        lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])
        results: list[str] = [""] * len(prompts)
        for start in tqdm(
            range(0, len(order), batch_size), desc="generating", unit="batch", leave=False
        ):
            index = order[start : start + batch_size]
            texts = [prompts[i] for i in index]
            new = decode(texts, max_new_tokens, cached=backend == "kv_cached")
            if not verified:
                verify(texts, max_new_tokens, new)
                verified = True
            for text, i in zip(_decode_rows(tokenizer, new.tolist()), index, strict=True):
                results[i] = text
        return results

    return generate


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
) -> RavelInstance:
    """Build a model-specific instance (no caching; see :func:`load_or_build_instance`).

    Args:
        model: the TransformerLens model to query (may be None when ``generate`` is given).
        domain: the RAVEL domain (real or offline).
        config: caps and thresholds (default :class:`InstanceConfig`).
        model_name: name recorded in the instance and its cache key.
        generate: replaces the model's greedy generation (tests use known outputs).
    """
    config = config or InstanceConfig()
    if generate is None:
        if model is None:
            raise ValueError("build_instance needs a model or a generate function")
        generate = model_generate_fn(model, config.batch_size, config.generation)
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


def instance_cache_key(
    model_name: str, domain: RavelDomain, config: InstanceConfig, dtype: str = "float32"
) -> str:
    """sha256 of model name + its weights' dtype + data checksum + config (+ the instance
    format and decoder versions)."""
    payload = {
        "model": model_name,
        "dtype": dtype,
        "data": domain.checksum,
        "config": config.to_dict(),
        "format": INSTANCE_FORMAT_VERSION,
        "decoder": DECODER_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def instance_cache_path(
    model_name: str, domain: RavelDomain, config: InstanceConfig, dtype: str = "float32"
) -> Path:
    safe_model = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model_name)
    key = instance_cache_key(model_name, domain, config, dtype)[:16]
    return cache_dir("instances") / f"{safe_model}-{domain.source}-{domain.name}-{key}.json"


def load_or_build_instance(
    model: torch.nn.Module | None,
    domain: RavelDomain,
    config: InstanceConfig | None = None,
    *,
    model_name: str,
    generate: GenerateFn | None = None,
    use_cache: bool = True,
) -> RavelInstance:
    """:func:`build_instance`, reusing the on-disk copy keyed by model, data and config."""
    config = config or InstanceConfig()
    dtype = "float32" if model is None else precision_name(model_dtype(model))
    path = instance_cache_path(model_name, domain, config, dtype)
    if use_cache and path.is_file():
        logger.info("Reusing cached instance %s", path)
        return RavelInstance.load(path, domain)
    instance = build_instance(model, domain, config, model_name=model_name, generate=generate)
    if use_cache:
        instance.save(path)
    return instance
