"""One method's verdict on one example (:class:`ExampleRecord`) and the JSON-lines files that
hold them (``records.jsonl``, ``records/<method>.seed<s>.jsonl``)."""

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ExampleRecord:
    """One method's verdict on one example (one seed, one judging mode)."""

    method: str
    seed: int | None
    """None for deterministic methods (run once)."""
    domain: str
    split: str
    attribute: str
    """Target attribute A."""
    kind: str
    """``"cause"`` or ``"isolate"``."""
    mode: str
    """Judging mode."""
    example_id: str
    """:func:`hyperdas_tl.metrics.example_id`: the same example has the same id in every
    method's records."""
    base_entity: str
    """The cluster the bootstrap resamples."""
    correct: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExampleRecord":
        return cls(**data)


def records_text(records: Iterable[ExampleRecord]) -> str:
    """``records`` as JSON lines (what :func:`read_records` reads)."""
    return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)


def read_records(path: str | Path) -> list[ExampleRecord]:
    """The records of a JSON-lines file."""
    with open(path, encoding="utf-8") as handle:
        return [ExampleRecord.from_dict(json.loads(line)) for line in handle if line.strip()]
