"""One method's scores on one split setting (:class:`EvalResult`), its JSON form and the
markdown table."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hyperdas_tl.metrics.judging import JudgeMode
from hyperdas_tl.metrics.scores import AttributeScore, DomainScore, Judgement


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
