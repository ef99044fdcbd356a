"""What a comparison's ``out_dir`` holds: its file names, one records and one curves file per
(method, seed), atomic writes, and ``run.json`` (the fingerprint that a resumed run must match,
and every invocation)."""

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from hyperdas_tl.atomic_write import write_bytes_atomically
from hyperdas_tl.compare.settings import CompareSettings
from hyperdas_tl.data_config import DataConfig
from hyperdas_tl.experiment import ExperimentData
from hyperdas_tl.hyperdas.config import HyperDASConfig
from hyperdas_tl.metrics import example_id
from hyperdas_tl.precision import model_dtype, precision_name
from hyperdas_tl.target import TargetModel

RUN_JSON = "run.json"
LAYER_JSON = "layer_choice.json"
SUMMARY_JSON = "summary.json"
DETAILS_JSON = "details.json"
RECORDS_JSONL = "records.jsonl.gz"
SUMMARY_MD = "summary.md"


def write_file(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating its folder."""
    write_binary_file(path, text.encode("utf-8"))


def write_binary_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, data)


def unit_records_path(out: Path, name: str) -> Path:
    """Where a finished unit's records are: ``records/<name>.jsonl.gz``, or a plain
    ``records/<name>.jsonl`` written by an earlier version (read when it is the one there)."""
    plain = out / "records" / f"{name}.jsonl"
    return plain if plain.exists() else out / "records" / f"{name}.jsonl.gz"


def unit_curves_path(out: Path, name: str) -> Path:
    """Where a finished unit's training curves are: ``curves/<name>.json``."""
    return out / "curves" / f"{name}.json"


def unit_checkpoint_path(out: Path, name: str) -> Path:
    """Where a unit keeps its unfinished work: ``checkpoints/<name>/`` (git-ignored). A HyperDAS
    unit saves its training checkpoint there as it trains; a DAS / MDAS unit saves each
    (attribute, learning rate) run as it finishes
    (:mod:`~hyperdas_tl.baselines.das.run_store`). A stopped unit resumes from what is there."""
    return out / "checkpoints" / name


def json_text(data: Any) -> str:
    """``data`` as the indented JSON every file of the folder is written in."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def unit_name(method: str, seed: int | None) -> str:
    """The file stem of a (method, seed) unit's records and curves (``das.seed0``)."""
    return f"{_slug(method)}.seed{'none' if seed is None else seed}"


def run_fingerprint(
    model: TargetModel, data: ExperimentData, layer: Any, k: int, settings: CompareSettings
) -> dict[str, Any]:
    """What ``run.json`` records of a run: the model, the data config and a digest of every
    example id, the layer (or candidates), k, and the settings that change records."""
    digest = hashlib.sha1()
    for split in sorted(data.examples):
        digest.update(split.encode())
        for example in data.examples[split]:
            digest.update(example_id(example).encode())
    cfg = model.cfg
    return {
        "model": {
            "name": str(getattr(cfg, "model_name", "")),
            "n_layers": int(cfg.n_layers),
            "d_model": int(cfg.d_model),
            "dtype": precision_name(model_dtype(model)),
        },
        "data": _data_fingerprint(data.config),
        "examples_sha1": digest.hexdigest(),
        "layer": layer,
        "k": k,
        "training": settings.training_dict(),
    }


def _data_fingerprint(config: DataConfig) -> dict[str, Any]:
    """What ``run.json`` records of the data config: the RAVEL archive by its absolute path, so
    that a run resumed with another spelling of the same file (``../shared/ravel/data.tgz`` from
    another checkout) is the same comparison."""
    recorded = config.to_dict()
    if recorded["ravel_path"] is not None:
        recorded["ravel_path"] = str(Path(recorded["ravel_path"]).expanduser().resolve())
    return recorded


def _current_layout(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """``fingerprint`` in today's layout: HyperDAS settings nested (runs started before the
    architecture / training split recorded them flat) and the data config as
    :meth:`DataConfig.from_dict` reads it (``bucket_by_length`` became ``bucketing``), its
    archive path absolute; the values are the same."""
    fingerprint = dict(fingerprint)
    if isinstance(fingerprint.get("data"), dict):
        fingerprint["data"] = _data_fingerprint(DataConfig.from_dict(fingerprint["data"]))
    training = fingerprint.get("training")
    if not isinstance(training, dict) or not isinstance(training.get("hyperdas"), dict):
        return fingerprint
    hyperdas = HyperDASConfig.from_dict(training["hyperdas"]).to_dict()
    return {**fingerprint, "training": {**training, "hyperdas": hyperdas}}


def check_run_folder(out: Path, fingerprint: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Create ``run.json`` or check that it describes this run; record this invocation."""
    path = out / RUN_JSON
    expected = json.loads(json.dumps(fingerprint))
    invocations: list[Any] = []
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        previous = json.loads(json.dumps(_current_layout(saved.get("fingerprint", {}))))
        if previous != expected:
            changed = sorted(
                key
                for key in set(expected) | set(previous)
                if expected.get(key) != previous.get(key)
            )
            raise ValueError(
                f"{out} holds a different comparison (differs in {changed}); choose another "
                "output folder or delete it"
            )
        invocations = list(saved.get("invocations", []))
    invocations.append(json.loads(json.dumps(metadata, default=str)))
    write_file(path, json_text({"fingerprint": expected, "invocations": invocations}))
