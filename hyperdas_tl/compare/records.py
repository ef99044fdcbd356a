"""One method's verdict on one example (:class:`ExampleRecord`) and the JSON-lines files that
hold them (``records.jsonl.gz``, ``records/<method>.seed<s>.jsonl.gz``).

The files are gzip-compressed JSON lines (a full-size run holds ~10^5 verdicts per unit; gzip
makes them ~15x smaller, small enough to commit beside the summary), written reproducibly
(no timestamp in the gzip header, so the same records give the same bytes) and read by pandas
as ``pd.read_json(path, lines=True)``. Plain ``.jsonl`` files are read too.
"""

import gzip
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


def records_bytes(records: Iterable[ExampleRecord]) -> bytes:
    """``records`` as gzip-compressed JSON lines, with no timestamp (same records, same bytes)."""
    return gzip.compress(records_text(records).encode("utf-8"), mtime=0)


def read_records(path: str | Path) -> list[ExampleRecord]:
    """The records of a JSON-lines file (gzip-compressed when its name ends in ``.gz``)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [ExampleRecord.from_dict(json.loads(line)) for line in handle if line.strip()]
