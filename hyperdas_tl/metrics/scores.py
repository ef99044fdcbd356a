"""Per-example verdicts (:class:`Judgement`) and what they summarise to: Cause / Isolate /
Disentangle per attribute and the macro average per domain."""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from hyperdas_tl.data.examples import InterventionExample
from hyperdas_tl.metrics.judging import JudgeMode

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
    tallies: dict[tuple[str, str, str, JudgeMode], dict[str, list[int]]] = defaultdict(
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
                mode=mode,
                cause=cause,
                isolate=isolate,
                disentangle=(cause + isolate) / 2 if both else None,  # type: ignore[operator]
                n_cause=tally["cause"][1],
                n_isolate=tally["isolate"][1],
            )
        )
    groups: dict[tuple[str, str, JudgeMode], list[AttributeScore]] = defaultdict(list)
    for score in attributes:
        groups[(score.domain, score.split, score.mode)].append(score)
    domains = [
        DomainScore(
            domain=domain,
            split=split,
            mode=mode,
            cause=mean_present(s.cause for s in scores),
            isolate=mean_present(s.isolate for s in scores),
            disentangle=mean_present(s.disentangle for s in scores),
            attributes=tuple(s.attribute for s in scores),
        )
        for (domain, split, mode), scores in sorted(groups.items())
    ]
    return attributes, domains
