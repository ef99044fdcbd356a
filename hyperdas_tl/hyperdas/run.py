"""Train and evaluate HyperDAS end to end: data -> training -> Cause/Isolate/Disentangle for the
three selection read-outs -> results + checkpoint on disk. The CLI's ``train``/``evaluate`` and
``analyses/run_hyperdas.py`` are thin wrappers around :func:`train_and_evaluate` and
:func:`evaluate_checkpoint`.

Nothing lost, nothing silent: :func:`preflight` checks everything that can be checked before
the model loads (output folder writable and free, an existing checkpoint compatible with the
run, the data readable and its attributes present), and the results files are replaced
atomically after *each* split, so a failure late in the evaluation keeps what was scored
(``"complete": false`` in ``results.json`` until the last split is in).
"""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperdas_tl.atomic_write import write_text_atomically
from hyperdas_tl.experiment import (
    TEST_SPLITS,
    DataConfig,
    ExperimentData,
    build_experiment_data,
    load_domain,
)
from hyperdas_tl.hyperdas.checkpoint import (
    check_checkpoint_consistent,
    check_training_files,
    has_checkpoint,
    load_hyperdas,
    read_checkpoint_config,
)
from hyperdas_tl.hyperdas.config import SELECTION_MODES, HyperDASConfig, SelectionMode
from hyperdas_tl.hyperdas.intervention import hyperdas_read_outs
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.hyperdas.profiles import PROFILES as PROFILES
from hyperdas_tl.hyperdas.profiles import Profile
from hyperdas_tl.hyperdas.train import TrainResult, train_hyperdas
from hyperdas_tl.metrics import (
    JUDGE_MODES,
    EvalConfig,
    EvalResult,
    JudgeMode,
    evaluate_interventions,
    results_to_markdown,
)
from hyperdas_tl.models import default_device, load_model
from hyperdas_tl.precision import Precision, model_dtype, precision_name, resolve_precision
from hyperdas_tl.provenance import run_provenance
from hyperdas_tl.run_start import start_run
from hyperdas_tl.target import TargetModel

logger = logging.getLogger(__name__)

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
CHECKPOINT_DIR = "checkpoint"


@dataclass
class RunResult:
    """What :func:`train_and_evaluate` produced."""

    model: HyperDAS
    data: ExperimentData
    train: TrainResult | None
    results: list[EvalResult] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    out_dir: Path | None = None


def evaluate_hyperdas(
    model: HyperDAS,
    data: ExperimentData,
    *,
    splits: tuple[str, ...] = TEST_SPLITS,
    selection_modes: tuple[SelectionMode, ...] = SELECTION_MODES,
    eval_config: EvalConfig | None = None,
    name: str = "HyperDAS",
    on_split: Callable[[list[EvalResult]], None] | None = None,
) -> list[EvalResult]:
    """Score every read-out on every split (each split is a RAVEL test setting); methods are
    named ``"{name} ({read-out})"``. ``on_split(results so far)`` runs after each split (see
    :func:`split_results_writer`)."""
    results: list[EvalResult] = []
    for split in splits:
        batches = data.batches.get(split)
        if not batches:
            logger.warning("split %s has no examples; skipped", split)
            continue
        scored = evaluate_interventions(
            model.target,
            batches,
            hyperdas_read_outs(model, selection_modes, name=name),
            setting=split,
            config=eval_config,
            metadata={"layer": model.layer, "k": model.k},
        )
        results.extend(scored.values())
        if on_split is not None:
            on_split(list(results))
    return results


def write_results(
    out_dir: Path, results: list[EvalResult], extra: dict[str, Any], *, complete: bool = True
) -> None:
    """``results.json`` (every score + run metadata) and ``results.md`` (the tables), each
    replaced in one atomic rename. ``complete=False`` marks a file written before every split
    was scored; ``finished_splits`` lists the splits it holds."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        **extra,
        "complete": complete,
        "finished_splits": list(dict.fromkeys(r.setting for r in results)),
        "results": [r.to_dict() for r in results],
    }
    write_text_atomically(out_dir / RESULTS_JSON, json.dumps(payload, indent=2) + "\n")
    write_text_atomically(out_dir / RESULTS_MD, results_to_markdown(results) + "\n")
    logger.info("results (%s) written to %s", ", ".join(payload["finished_splits"]), out_dir)


def split_results_writer(
    out_dir: str | Path | None, extra: dict[str, Any]
) -> Callable[[list[EvalResult]], None] | None:
    """An ``on_split`` for :func:`evaluate_hyperdas` that writes the results so far (marked
    incomplete) after every split; None without an ``out_dir``."""
    if out_dir is None:
        return None

    def write(results: list[EvalResult]) -> None:
        write_results(Path(out_dir), results, extra, complete=False)

    return write


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def check_resumable(checkpoint: Path, profile: Profile, model_name: str) -> None:
    """Raise ``ValueError`` unless the training checkpoint can continue this run: readable and
    consistent, trained on ``model_name``, with the architecture and data the profile asks for."""
    config = check_checkpoint_consistent(checkpoint)
    check_training_files(checkpoint)
    _, target = read_checkpoint_config(checkpoint)
    trained_on = config.architecture.target_model
    if trained_on != model_name:
        raise ValueError(
            f"{checkpoint} was trained on model {trained_on!r}, not {model_name!r}; "
            f"pass --model {trained_on} to resume it, or choose another --out"
        )
    wanted = profile.hyperdas.with_fields(target_model=model_name)
    asked = wanted.resolved_for(int(target["n_layers"]), int(target["d_model"])).weight_fields()
    for name, value in config.weight_fields().items():
        if value != asked[name]:
            raise ValueError(
                f"{checkpoint} was trained with {name}={value!r}, but this run asks for "
                f"{name}={asked[name]!r} (--{name.replace('_', '-')}); resume with the "
                "checkpoint's settings, or choose another --out"
            )
    recorded, asked_data = _as_json(config.data), _as_json(profile.data.to_dict())
    if recorded and recorded != asked_data:
        keys = sorted(
            k for k in set(recorded) | set(asked_data) if recorded.get(k) != asked_data.get(k)
        )
        first = keys[0]
        raise ValueError(
            f"{checkpoint} was trained on other data: {first}={recorded.get(first)!r} there, "
            f"{first}={asked_data.get(first)!r} in this run (differing: {', '.join(keys)}); "
            "resume with the same data options, or choose another --out"
        )


def check_data(config: DataConfig) -> None:
    """Raise ``ValueError`` unless the data loads (archive readable, checksum verified when
    known) and has every target attribute."""
    domain = load_domain(config)
    missing = [a for a in config.attributes if a not in domain.attributes]
    if missing:
        raise ValueError(
            f"attributes {missing} are not in the {config.source} {config.domain!r} domain; "
            f"known: {sorted(domain.attributes)}"
        )


def preflight(
    profile: Profile,
    *,
    model_name: str,
    out_dir: str | Path | None = None,
    resume: bool = False,
) -> None:
    """Everything :func:`train_and_evaluate` can check before it loads the model: the output
    folder (writable, not full), an existing checkpoint there (refused without ``resume``;
    with it, compatible), the data (readable, attributes present). Raises ``ValueError``."""
    from hyperdas_tl.run_dir import check_out_dir

    if out_dir is None:
        if resume:
            raise ValueError("resume needs an output folder (--out) that holds the checkpoint")
    else:
        out = check_out_dir(out_dir)
        checkpoint = out / CHECKPOINT_DIR
        if has_checkpoint(checkpoint):
            if not resume:
                raise ValueError(
                    f"{out} already holds a checkpoint ({checkpoint}); pass --resume "
                    "(resume=True) to continue it, or choose another --out"
                )
            check_resumable(checkpoint, profile, model_name)
    check_data(profile.data)


def preflight_evaluation(checkpoint_dir: str | Path, out_dir: str | Path | None = None) -> None:
    """What :func:`evaluate_checkpoint` can check before it loads the model: the checkpoint
    (readable, consistent), its recorded data, the output folder."""
    from hyperdas_tl.run_dir import check_out_dir

    config = check_checkpoint_consistent(checkpoint_dir)
    check_data(DataConfig.from_dict(config.data))
    if out_dir is not None:
        check_out_dir(out_dir)


def train_and_evaluate(
    profile: Profile,
    *,
    model_name: str = "smollm2-135m",
    out_dir: str | Path | None = None,
    device: str | None = None,
    resume: bool = False,
    show_progress: bool = True,
    target: TargetModel = None,
    threads: int | None = None,
    allow_emulated_bf16: bool = False,
) -> RunResult:
    """Build the data, train HyperDAS, score all read-outs on the test splits, save everything.

    ``target`` may pass an already-loaded model (it must be ``model_name``'s). Seeds, the thread
    count (``threads``; None keeps torch's) and deterministic algorithms are fixed first
    (:func:`hyperdas_tl.run_start.start_run`) and recorded in ``results.json``.
    """
    preflight(profile, model_name=model_name, out_dir=out_dir, resume=resume)
    started = start_run(
        model_name,
        profile.data,
        seed=profile.hyperdas.training.seed,
        threads=threads,
        device=device,
        precision=profile.precision,
        allow_emulated_bf16=allow_emulated_bf16,
        target=target,
    )
    target, data = started.model, started.data
    seconds: dict[str, float] = {"data": started.seconds}
    logger.info("examples per split: %s", data.counts())

    config = profile.hyperdas.with_fields(target_model=model_name, data=profile.data.to_dict())
    model = HyperDAS(target, config)
    out = Path(out_dir) if out_dir is not None else None
    start = time.perf_counter()
    train = train_hyperdas(
        model,
        data.batches["train"],
        val_batches=data.batches.get("val_entity"),
        checkpoint_dir=out / "checkpoint" if out else None,
        resume=resume,
        show_progress=show_progress,
    )
    seconds["train"] = time.perf_counter() - start
    start = time.perf_counter()
    partial = {"model": model_name, "hyperdas": model.config.to_dict(), "examples": data.counts()}
    results = evaluate_hyperdas(
        model,
        data,
        eval_config=profile.eval_config(show_progress),
        on_split=split_results_writer(out, partial),
    )
    seconds["evaluate"] = time.perf_counter() - start
    if out is not None:
        write_results(
            out,
            results,
            {
                "model": model_name,
                "hyperdas": model.config.to_dict(),
                "examples": data.counts(),
                "seconds": seconds,
                "final_validation": None if train.validation is None else vars(train.validation),
                "provenance": started.provenance,
            },
        )
    return RunResult(model, data, train, results, seconds, out)


@dataclass
class LoadedCheckpoint:
    """A HyperDAS checkpoint with its target (in the dtype it was trained against) and its
    data rebuilt from the settings it records."""

    config: HyperDASConfig
    target: TargetModel
    model: HyperDAS
    data: ExperimentData


def load_checkpoint(
    checkpoint_dir: str | Path,
    *,
    device: str | None = None,
    precision: Precision | None = None,
    allow_emulated_bf16: bool = False,
) -> LoadedCheckpoint:
    """Load ``checkpoint_dir``'s HyperDAS on its target, the target in the dtype the checkpoint
    was trained against (``precision`` overrides it; a bf16 checkpoint on hardware without native
    bf16 needs ``allow_emulated_bf16`` or another ``precision``), and rebuild its data (the
    instance cache is keyed by that dtype, so a bf16 checkpoint finds its bf16 instance)."""
    config, _ = read_checkpoint_config(checkpoint_dir)
    if precision is None:
        precision = config.architecture.target_dtype or "auto"  # type: ignore[assignment]
    dtype = resolve_precision(
        precision, device or default_device(), allow_emulated=allow_emulated_bf16
    )
    model_name = config.architecture.target_model
    target = load_model(model_name, device=device, dtype=dtype)
    model = load_hyperdas(checkpoint_dir, target)
    data = build_experiment_data(target, DataConfig.from_dict(config.data), model_name=model_name)
    return LoadedCheckpoint(config, target, model, data)


def evaluate_checkpoint(
    checkpoint_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    device: str | None = None,
    eval_modes: tuple[JudgeMode, ...] = JUDGE_MODES,
    show_progress: bool = True,
    precision: Precision | None = None,
    allow_emulated_bf16: bool = False,
) -> RunResult:
    """Re-build the checkpoint's data (recorded in its config) and score it again, with the
    target in the dtype it was trained against (``precision`` overrides it; a bf16 checkpoint
    on hardware without native bf16 needs ``allow_emulated_bf16`` or another ``precision``)."""
    preflight_evaluation(checkpoint_dir, out_dir)
    loaded = load_checkpoint(
        checkpoint_dir, device=device, precision=precision, allow_emulated_bf16=allow_emulated_bf16
    )
    config, model, data = loaded.config, loaded.model, loaded.data
    model_name = config.architecture.target_model
    dtype = model_dtype(loaded.target)
    eval_config = EvalConfig(modes=eval_modes, show_progress=show_progress)
    start = time.perf_counter()
    partial = {"model": model_name, "hyperdas": config.to_dict()}
    results = evaluate_hyperdas(
        model, data, eval_config=eval_config, on_split=split_results_writer(out_dir, partial)
    )
    seconds = {"evaluate": time.perf_counter() - start}
    if out_dir is not None:
        write_results(
            Path(out_dir),
            results,
            {
                "model": model_name,
                "hyperdas": config.to_dict(),
                "seconds": seconds,
                "provenance": run_provenance(
                    seed=config.training.seed, dtype=precision_name(dtype)
                ),
            },
        )
    return RunResult(model, data, None, results, seconds, Path(out_dir) if out_dir else None)
