"""Cause / Isolate / Disentangle scores of any interchange intervention, in two judging modes.

RAVEL's metrics (Huang et al., 2024), as HyperDAS reports them:

- **Cause**: accuracy on cause examples (the base prompt queries the target attribute A and the
  intervened run must produce the *source* entity's value of A).
- **Isolate**: accuracy on isolate examples (the base prompt queries another attribute B and the
  intervened run must keep the *base* entity's value of B).
- **Disentangle**: the mean of the two. Scores are reported per (domain, target attribute, data
  split) and macro-averaged over the attributes of a domain.

An example is judged in one of two modes, and every score names its mode:

- ``"teacher_forced"`` (the HyperDAS convention): one forward over prompt + label tokens with the
  intervention; correct when the argmax at each of the first ``max_label_tokens`` (<= 3) label
  positions equals the label token — all of them must match.
- ``"generation"`` (the RAVEL convention): greedy continuation of the prompt alone, with the
  intervention on the prompt positions only (KV-cached,
  :func:`hyperdas_tl.generation.kv_cached_greedy_generate`); correct when the
  normalised generated text starts with the normalised label (:func:`prefix_match`).

Every method scores through one path: an :data:`Intervention` is any callable
``(batch, width) -> [(hook_name, hook_fn), ...]`` that builds TransformerLens forward hooks for
a base forward of ``width`` positions. DAS, MDAS, probe subspaces, HyperDAS and controls
(:func:`no_intervention`) are all interventions; :func:`entity_subspace_intervention` is the
fixed-position one (base ``entity_last`` reads source ``entity_last`` through a basis).
"""

import hashlib
import json
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from hyperdas_tl.data.batching import IGNORE_INDEX, InterventionBatch, judged_label_positions
from hyperdas_tl.data.examples import InterventionExample
from hyperdas_tl.data.judging import normalise
from hyperdas_tl.generation import kv_cached_greedy_generate
from hyperdas_tl.hooks import HookFn, capture_resid_pre, resid_pre_name, soft_interchange_hook_for
from hyperdas_tl.interchange import check_basis, one_hot_selection
from hyperdas_tl.precision import autocast_like

JudgeMode = Literal["teacher_forced", "generation"]
JUDGE_MODES: tuple[JudgeMode, ...] = ("teacher_forced", "generation")

Hooks = list[tuple[str, HookFn]]
Intervention = Callable[[InterventionBatch, int], Hooks]
"""Builds the forward hooks of one intervened base forward: ``(batch, width) -> hooks``.

``width`` is the number of positions the hooked forward runs on (``base_ids.shape[1]`` when
teacher forcing; prompt width + ``max_new_tokens`` when generating)."""


# --------------------------------------------------------------------------- interventions


def no_intervention(batch: InterventionBatch, width: int) -> Hooks:
    """The control that changes nothing (scores the model's own behaviour on the base prompt)."""
    return []


def entity_source_vectors(
    model: Any, batch: InterventionBatch, layer: int
) -> Float[Tensor, "batch d_model"]:
    """``blocks.{layer}.hook_resid_pre`` of each source prompt at its ``source_entity_last``."""
    resid = capture_resid_pre(
        model, batch.source_ids, [layer], attention_mask=batch.source_attention_mask
    )[layer]
    rows = torch.arange(len(batch), device=resid.device)
    return resid[rows, batch.source_entity_last.to(resid.device)]


def entity_interchange_hooks(
    model: Any,
    layer: int,
    batch: InterventionBatch,
    width: int,
    basis: Float[Tensor, "*batch d_model k"],
    source_vectors: Float[Tensor, "batch d_model"] | None = None,
) -> Hooks:
    """Hooks for the fixed-position interchange (DAS): at ``blocks.{layer}.hook_resid_pre``, base
    position ``base_entity_last`` takes the span(basis) component of the source residual at
    ``source_entity_last``; every other position is untouched.

    ``source_vectors`` (from :func:`entity_source_vectors`) may be passed to reuse a capture;
    gradients flow to ``basis``.
    """
    if source_vectors is None:
        source_vectors = entity_source_vectors(model, batch, layer)
    if source_vectors.shape[0] != len(batch):
        raise ValueError(
            f"source_vectors has {source_vectors.shape[0]} rows for a batch of {len(batch)}"
        )
    device = source_vectors.device
    selection = one_hot_selection(
        torch.zeros(len(batch), dtype=torch.long, device=device),
        batch.base_entity_last.to(device),
        src_pos=1,
        base_pos=width,
    )
    # allow_empty: a d_model x 0 basis is the "empty subspace" control, a deliberate no-op
    hook = soft_interchange_hook_for(
        model, layer, source_vectors[:, None], selection, basis, allow_empty=True
    )
    return [hook]


def entity_subspace_intervention(
    model: Any, layer: int, basis: Float[Tensor, "d_model k"]
) -> Intervention:
    """An :data:`Intervention` swapping span(``basis``) at the entity's last token (DAS-style)."""
    resid_pre_name(model, layer)
    check_basis(basis, int(model.cfg.d_model))
    basis = basis.detach()

    def build(batch: InterventionBatch, width: int) -> Hooks:
        return entity_interchange_hooks(model, layer, batch, width, basis)

    return build


# --------------------------------------------------------------------------- judging


def teacher_forced_correct(
    logits: Float[Tensor, "batch pos d_vocab"],
    labels: Int[Tensor, "batch pos"],
    max_label_tokens: int = 3,
) -> Bool[Tensor, " batch"]:
    """True where the argmax equals the label at each of the first ``max_label_tokens`` labelled
    positions of the row (positions whose label is ``-100`` are ignored)."""
    if max_label_tokens < 1:
        raise ValueError(f"max_label_tokens must be >= 1, got {max_label_tokens}")
    if logits.shape[:2] != labels.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} disagree on "
            "[batch, pos]"
        )
    labelled = labels != IGNORE_INDEX
    if bool((labelled.sum(dim=1) == 0).any()):
        raise ValueError("every row needs at least one label token (labels != -100)")
    judged = judged_label_positions(labels, max_label_tokens)
    hits = logits.argmax(dim=-1) == labels
    return (hits | ~judged).all(dim=1)


def normalise_text(text: str) -> str:
    """The data layer's normalisation (:func:`hyperdas_tl.data.judging.normalise`): lower case,
    no accents, punctuation to spaces, single spaces, leading articles dropped."""
    return normalise(unicodedata.normalize("NFKC", text))


def prefix_match(generated: str, label: str) -> bool:
    """RAVEL's judgement: the normalised generation starts with the normalised label (a plain
    string prefix, so the label must fit in the generated tokens)."""
    target = normalise_text(label)
    if not target:
        raise ValueError(f"label {label!r} is empty after normalisation")
    return normalise_text(generated).startswith(target)


def prompt_lengths(batch: InterventionBatch) -> Int[Tensor, " batch"]:
    """Number of prompt tokens per row: the first labelled position predicts the first label
    token, so it is the prompt's last token."""
    labelled = batch.labels != IGNORE_INDEX
    if bool((labelled.sum(dim=1) == 0).any()):
        raise ValueError("every row needs at least one label token (labels != -100)")
    return labelled.long().argmax(dim=1) + 1


def label_texts(batch: InterventionBatch, tokenizer: Any) -> list[str]:
    """The full label string of each row (from ``batch.examples``, else decoded label tokens)."""
    if batch.examples:
        return [example.label for example in batch.examples]
    return [
        tokenizer.decode(row[row != IGNORE_INDEX].tolist(), skip_special_tokens=True)
        for row in batch.labels
    ]


@torch.no_grad()
def judge_teacher_forced(
    model: Any,
    batch: InterventionBatch,
    intervention: Intervention,
    max_label_tokens: int = 3,
) -> Bool[Tensor, " batch"]:
    """Judge each row of ``batch`` under ``intervention`` by teacher forcing."""
    hooks = intervention(batch, batch.base_ids.shape[1])
    with autocast_like(model):
        logits = model.run_with_hooks(
            batch.base_ids, fwd_hooks=hooks, attention_mask=batch.base_attention_mask
        )
    return teacher_forced_correct(logits, batch.labels.to(logits.device), max_label_tokens)


@torch.no_grad()
def generate_under(
    model: Any,
    batch: InterventionBatch,
    intervention: Intervention,
    max_new_tokens: int,
) -> Int[Tensor, "batch max_new_tokens"]:
    """Greedy continuation of each base prompt (label tokens dropped) with the intervention's
    hooks built for the generation width; they only touch prompt positions."""
    lengths = prompt_lengths(batch)
    width = int(lengths.max())
    positions = torch.arange(width, device=batch.base_ids.device)
    mask = (positions[None, :] < lengths[:, None]).to(batch.base_attention_mask.dtype)
    hooks = intervention(batch, width + max_new_tokens)
    return kv_cached_greedy_generate(
        model, batch.base_ids[:, :width], mask, max_new_tokens, fwd_hooks=hooks
    )


@torch.no_grad()
def judge_generation(
    model: Any,
    batch: InterventionBatch,
    intervention: Intervention,
    max_new_tokens: int = 8,
) -> Bool[Tensor, " batch"]:
    """Judge each row of ``batch`` under ``intervention`` by greedy generation + prefix match."""
    generated = generate_under(model, batch, intervention, max_new_tokens)
    tokenizer = model.tokenizer
    texts = tokenizer.batch_decode(generated.tolist(), skip_special_tokens=True)
    verdicts = [
        prefix_match(text, label)
        for text, label in zip(texts, label_texts(batch, tokenizer), strict=True)
    ]
    return torch.tensor(verdicts, dtype=torch.bool)


# --------------------------------------------------------------------------- results


EXAMPLE_ID_FIELDS = (
    "base_prompt",
    "base_entity",
    "source_prompt",
    "source_entity",
    "target_attribute",
    "kind",
    "split",
)
"""What identifies an example across methods (see :func:`example_id`)."""


def example_id(example: InterventionExample) -> str:
    """A stable id of ``example`` (16 hex digits of a SHA-1 over :data:`EXAMPLE_ID_FIELDS`), so
    the verdicts of two methods on the same example can be paired."""
    key = json.dumps([getattr(example, name) for name in EXAMPLE_ID_FIELDS], ensure_ascii=False)
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Judgement:
    """The verdict on one example in one mode, with what it is grouped by."""

    domain: str
    attribute: str
    """Target attribute A (the concept intervened on)."""
    split: str
    kind: Literal["cause", "isolate"]
    mode: JudgeMode
    correct: bool
    example_id: str = ""
    """:func:`example_id` of the example ("" when unknown); pairs verdicts across methods."""
    base_entity: str = ""
    """The base prompt's entity (the cluster a bootstrap resamples)."""


@dataclass(frozen=True)
class AttributeScore:
    """Cause / Isolate / Disentangle of one target attribute in one split and judging mode.

    A score is ``None`` where the attribute has no example of that kind; Disentangle is
    ``None`` unless both are defined."""

    domain: str
    attribute: str
    split: str
    mode: JudgeMode
    cause: float | None
    isolate: float | None
    disentangle: float | None
    n_cause: int
    n_isolate: int


@dataclass(frozen=True)
class DomainScore:
    """Macro average over the attributes of a domain (each attribute weighs the same)."""

    domain: str
    split: str
    mode: JudgeMode
    cause: float | None
    isolate: float | None
    disentangle: float | None
    attributes: tuple[str, ...]


def mean_present(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not None (None when none is)."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def summarise(judgements: Sequence[Judgement]) -> tuple[list[AttributeScore], list[DomainScore]]:
    """Per-attribute scores and per-domain macro averages of a list of verdicts (sorted)."""
    tallies: dict[tuple[str, str, str, str], dict[str, list[int]]] = defaultdict(
        lambda: {"cause": [0, 0], "isolate": [0, 0]}
    )
    for j in judgements:
        tally = tallies[(j.domain, j.attribute, j.split, j.mode)][j.kind]
        tally[0] += int(j.correct)
        tally[1] += 1
    attributes = []
    for (domain, attribute, split, mode), tally in sorted(tallies.items()):
        cause = tally["cause"][0] / tally["cause"][1] if tally["cause"][1] else None
        isolate = tally["isolate"][0] / tally["isolate"][1] if tally["isolate"][1] else None
        both = cause is not None and isolate is not None
        attributes.append(
            AttributeScore(
                domain=domain,
                attribute=attribute,
                split=split,
                mode=mode,  # type: ignore[arg-type]
                cause=cause,
                isolate=isolate,
                disentangle=(cause + isolate) / 2 if both else None,  # type: ignore[operator]
                n_cause=tally["cause"][1],
                n_isolate=tally["isolate"][1],
            )
        )
    groups: dict[tuple[str, str, str], list[AttributeScore]] = defaultdict(list)
    for score in attributes:
        groups[(score.domain, score.split, score.mode)].append(score)
    domains = [
        DomainScore(
            domain=domain,
            split=split,
            mode=mode,  # type: ignore[arg-type]
            cause=mean_present(s.cause for s in scores),
            isolate=mean_present(s.isolate for s in scores),
            disentangle=mean_present(s.disentangle for s in scores),
            attributes=tuple(s.attribute for s in scores),
        )
        for (domain, split, mode), scores in sorted(groups.items())
    ]
    return attributes, domains


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


@dataclass
class EvalResult:
    """Scores of one method (an intervention) on one split setting, in every judging mode run."""

    method: str
    """Name of the intervention, e.g. "DAS L6 k16"."""
    setting: str
    """Split setting the examples come from, e.g. "entity" or "context"."""
    modes: tuple[JudgeMode, ...]
    attributes: list[AttributeScore]
    domains: list[DomainScore]
    metadata: dict[str, Any] = field(default_factory=dict)
    """Free-form facts about the run (layer, k, run time, ...), JSON-serialisable."""
    judgements: list[Judgement] = field(default_factory=list)
    """The per-example verdicts the scores summarise (kept by :func:`evaluate`)."""

    def attribute(
        self, attribute: str, mode: JudgeMode, split: str | None = None
    ) -> AttributeScore:
        """The one score of ``attribute`` in ``mode`` (and ``split`` if several were scored)."""
        found = [
            s
            for s in self.attributes
            if s.attribute == attribute and s.mode == mode and split in (None, s.split)
        ]
        if len(found) != 1:
            raise ValueError(
                f"expected one score for attribute={attribute!r} mode={mode!r} split={split!r}, "
                f"found {len(found)}"
            )
        return found[0]

    def domain(self, domain: str, mode: JudgeMode, split: str | None = None) -> DomainScore:
        """The one domain average of ``domain`` in ``mode`` (and ``split``)."""
        found = [
            s
            for s in self.domains
            if s.domain == domain and s.mode == mode and split in (None, s.split)
        ]
        if len(found) != 1:
            raise ValueError(
                f"expected one score for domain={domain!r} mode={mode!r} split={split!r}, "
                f"found {len(found)}"
            )
        return found[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "setting": self.setting,
            "modes": list(self.modes),
            "attributes": [asdict(s) for s in self.attributes],
            "domains": [{**asdict(s), "attributes": list(s.attributes)} for s in self.domains],
            "metadata": dict(self.metadata),
            "judgements": [asdict(j) for j in self.judgements],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalResult":
        return cls(
            method=data["method"],
            setting=data["setting"],
            modes=tuple(data["modes"]),
            attributes=[AttributeScore(**s) for s in data["attributes"]],
            domains=[
                DomainScore(**{**s, "attributes": tuple(s["attributes"])}) for s in data["domains"]
            ],
            metadata=dict(data.get("metadata", {})),
            judgements=[Judgement(**j) for j in data.get("judgements", [])],
        )

    def to_markdown(self) -> str:
        """A markdown table of this result (see :func:`results_to_markdown`)."""
        return results_to_markdown([self])


def results_to_markdown(results: Sequence[EvalResult]) -> str:
    """One markdown table: a row per (method, setting, split, mode, domain, attribute), then the
    domain's macro average ("*average*")."""
    header = (
        "| method | setting | split | mode | domain | attribute | Cause | Isolate | Disentangle "
        "| n cause | n isolate |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [header]
    for result in results:
        for domain in result.domains:
            scores = [
                s
                for s in result.attributes
                if (s.domain, s.split, s.mode) == (domain.domain, domain.split, domain.mode)
            ]
            prefix = f"| {result.method} | {result.setting} | {domain.split} | {domain.mode} "
            for s in scores:
                rows.append(
                    f"{prefix}| {s.domain} | {s.attribute} | {_fmt(s.cause)} | {_fmt(s.isolate)} "
                    f"| {_fmt(s.disentangle)} | {s.n_cause} | {s.n_isolate} |"
                )
            rows.append(
                f"{prefix}| {domain.domain} | *average* | {_fmt(domain.cause)} "
                f"| {_fmt(domain.isolate)} | {_fmt(domain.disentangle)} "
                f"| {sum(s.n_cause for s in scores)} | {sum(s.n_isolate for s in scores)} |"
            )
    return "\n".join(rows) + "\n"


# --------------------------------------------------------------------------- scoring


@dataclass
class EvalConfig:
    """How :func:`evaluate` judges."""

    modes: tuple[JudgeMode, ...] = JUDGE_MODES
    """Judging modes to run (each scored separately)."""
    max_label_tokens: int = 3
    """Teacher forcing: how many leading label tokens must all match (HyperDAS uses 3)."""
    max_new_tokens: int = 8
    """Generation: tokens generated per prompt (the label must fit in them to match)."""
    show_progress: bool = True
    """Show a tqdm bar over batches."""

    def __post_init__(self) -> None:
        self.modes = tuple(self.modes)
        if not self.modes:
            raise ValueError("modes must name at least one judging mode")
        unknown = [m for m in self.modes if m not in JUDGE_MODES]
        if unknown:
            raise ValueError(f"unknown judging modes {unknown}; choose from {JUDGE_MODES}")
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes repeat: {self.modes}")
        if not 1 <= self.max_label_tokens:
            raise ValueError(f"max_label_tokens must be >= 1, got {self.max_label_tokens}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "modes": list(self.modes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalConfig":
        return cls(**{**data, "modes": tuple(data["modes"])})


def judge_batch(
    model: Any,
    batch: InterventionBatch,
    intervention: Intervention,
    mode: JudgeMode,
    config: EvalConfig,
) -> Bool[Tensor, " batch"]:
    """Per-row verdicts of ``batch`` in one judging mode."""
    if mode == "teacher_forced":
        return judge_teacher_forced(model, batch, intervention, config.max_label_tokens)
    if mode == "generation":
        return judge_generation(model, batch, intervention, config.max_new_tokens)
    raise ValueError(f"unknown judging mode {mode!r}; choose from {JUDGE_MODES}")


def batch_judgements(
    batch: InterventionBatch, mode: JudgeMode, correct: Bool[Tensor, " batch"]
) -> list[Judgement]:
    """Attach each row's grouping (from ``batch.examples``) to its verdict."""
    if len(batch.examples) != len(batch):
        raise ValueError(
            f"the batch carries {len(batch.examples)} examples for {len(batch)} rows; scoring "
            "groups rows by their InterventionExample (domain, target attribute, split)"
        )
    judgements = []
    for example, is_cause, verdict in zip(
        batch.examples, batch.is_cause.tolist(), correct.tolist(), strict=True
    ):
        if example.is_cause != bool(is_cause):
            raise ValueError(f"batch.is_cause disagrees with example kind {example.kind!r}")
        judgements.append(
            Judgement(
                domain=example.domain,
                attribute=example.target_attribute,
                split=example.split,
                kind=example.kind,
                mode=mode,
                correct=bool(verdict),
                example_id=example_id(example),
                base_entity=example.base_entity,
            )
        )
    return judgements


@torch.no_grad()
def evaluate(
    model: Any,
    batches: Iterable[InterventionBatch],
    intervention: Intervention,
    *,
    method: str,
    setting: str = "default",
    config: EvalConfig | None = None,
    metadata: dict[str, Any] | None = None,
) -> EvalResult:
    """Score ``intervention`` on every batch in every judging mode of ``config``.

    Batches are moved to the model's device; the model is left in eval mode and nothing random
    runs, so the result is deterministic.
    """
    config = config or EvalConfig()
    device = next(iter(model.parameters())).device
    judgements: list[Judgement] = []
    n_batches = len(batches) if isinstance(batches, Sequence) else None
    for batch in tqdm(
        batches, desc=f"scoring {method}", total=n_batches, disable=not config.show_progress
    ):
        batch = batch.to(device)
        for mode in config.modes:
            correct = judge_batch(model, batch, intervention, mode, config)
            judgements.extend(batch_judgements(batch, mode, correct))
    if not judgements:
        raise ValueError("no examples to score")
    attributes, domains = summarise(judgements)
    return EvalResult(
        method=method,
        setting=setting,
        modes=config.modes,
        attributes=attributes,
        domains=domains,
        metadata=dict(metadata or {}),
        judgements=judgements,
    )
