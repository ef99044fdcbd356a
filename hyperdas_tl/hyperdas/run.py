"""Train and evaluate HyperDAS end to end: data -> training -> Cause/Isolate/Disentangle for the
three selection read-outs -> results + checkpoint on disk. The CLI's ``train``/``evaluate`` and
``analyses/run_hyperdas.py`` are thin wrappers around :func:`train_and_evaluate` and
:func:`evaluate_checkpoint`.
"""

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hyperdas_tl.experiment import TEST_SPLITS, DataConfig, ExperimentData, build_experiment_data
from hyperdas_tl.hyperdas.checkpoint import load_hyperdas, read_checkpoint_config
from hyperdas_tl.hyperdas.config import SELECTION_MODES, HyperDASConfig, SelectionMode
from hyperdas_tl.hyperdas.intervention import hyperdas_intervention
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.hyperdas.train import TrainResult, train_hyperdas
from hyperdas_tl.metrics import EvalConfig, EvalResult, evaluate, results_to_markdown
from hyperdas_tl.models import default_device, load_model
from hyperdas_tl.precision import Precision, model_dtype, precision_name, resolve_precision
from hyperdas_tl.provenance import make_reproducible, run_provenance

logger = logging.getLogger(__name__)

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


@dataclass
class Profile:
    """A named size of run."""

    data: DataConfig
    hyperdas: HyperDASConfig
    eval_modes: tuple[str, ...] = ("teacher_forced", "generation")
    max_new_tokens: int = 6
    """Generation judging: tokens generated per prompt (the label must fit)."""
    precision: Precision = "auto"
    """Dtype of the frozen target (:mod:`hyperdas_tl.precision`): ``"auto"`` = bfloat16 where
    the hardware has native bf16 (AMX / AVX512-BF16 CPUs, bf16 GPUs), else float32; what is
    trained keeps float32 master weights either way."""

    def eval_config(self, progress: bool = True) -> EvalConfig:
        return EvalConfig(
            modes=self.eval_modes,  # type: ignore[arg-type]
            max_new_tokens=self.max_new_tokens,
            show_progress=progress,
        )


PROFILES: dict[str, Profile] = {
    # a few minutes on 2 CPU cores: the demo and the notebooks' CI profile
    "quick": Profile(
        DataConfig(max_entities=60, max_templates=4, train_pairs=96, eval_pairs=16, batch_size=8,
                   instance_attributes=("Country", "Continent", "Language")),
        HyperDASConfig(layer=10, n_hypernet_layers=4, n_steps=40, lr=3e-4, eval_every=20),
    ),
    # tens of minutes on 2 CPU cores
    "small": Profile(
        DataConfig(train_pairs=512, eval_pairs=128, batch_size=16),
        HyperDASConfig(layer=10, n_hypernet_layers=8, n_steps=400, lr=2e-4, eval_every=50),
    ),
    # RAVEL-sized caps; wants a GPU
    "full": Profile(
        DataConfig(max_entities=400, max_templates=12, train_pairs=4000, eval_pairs=500,
                   batch_size=32),
        HyperDASConfig(layer=10, n_hypernet_layers=8, n_steps=3000, lr=1e-4, eval_every=200),
    ),
}  # fmt: skip


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
) -> list[EvalResult]:
    """Score every read-out on every split (each split is a RAVEL test setting); methods are
    named ``"{name} ({read-out})"``."""
    results = []
    for split in splits:
        batches = data.batches.get(split)
        if not batches:
            logger.warning("split %s has no examples; skipped", split)
            continue
        for mode in selection_modes:
            results.append(
                evaluate(
                    model.target,
                    batches,
                    hyperdas_intervention(model, mode),
                    method=f"{name} ({mode})",
                    setting=split,
                    config=eval_config,
                    metadata={"layer": model.layer, "k": model.config.k},
                )
            )
    return results


def write_results(out_dir: Path, results: list[EvalResult], extra: dict[str, Any]) -> None:
    """``results.json`` (every score + run metadata) and ``results.md`` (the tables)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {**extra, "results": [r.to_dict() for r in results]}
    (out_dir / RESULTS_JSON).write_text(json.dumps(payload, indent=2) + "\n")
    (out_dir / RESULTS_MD).write_text(results_to_markdown(results) + "\n")


def train_and_evaluate(
    profile: Profile,
    *,
    model_name: str = "smollm2-135m",
    out_dir: str | Path | None = None,
    device: str | None = None,
    resume: bool = False,
    progress: bool = True,
    target: Any = None,
    threads: int | None = None,
) -> RunResult:
    """Build the data, train HyperDAS, score all read-outs on the test splits, save everything.

    ``target`` may pass an already-loaded model (it must be ``model_name``'s). Seeds, the thread
    count (``threads``; None keeps torch's) and deterministic algorithms are fixed first
    (:func:`hyperdas_tl.provenance.make_reproducible`) and recorded in ``results.json``.
    """
    threads = make_reproducible(profile.hyperdas.seed, threads)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    if target is None:
        dtype = resolve_precision(profile.precision, device or default_device())
        target = load_model(model_name, device=device, dtype=dtype)
    data = build_experiment_data(target, profile.data, model_name=model_name)
    seconds["data"] = time.perf_counter() - start
    logger.info("examples per split: %s", data.counts())

    config = replace(profile.hyperdas, target_model=model_name, data=profile.data.to_dict())
    model = HyperDAS(target, config)
    out = Path(out_dir) if out_dir is not None else None
    start = time.perf_counter()
    train = train_hyperdas(
        model,
        data.batches["train"],
        model.config,
        val_batches=data.batches.get("val_entity"),
        checkpoint_dir=out / "checkpoint" if out else None,
        resume=resume,
        progress=progress,
    )
    seconds["train"] = time.perf_counter() - start
    start = time.perf_counter()
    results = evaluate_hyperdas(model, data, eval_config=profile.eval_config(progress))
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
                "provenance": run_provenance(
                    seed=model.config.seed,
                    threads=threads,
                    dtype=precision_name(model_dtype(target)),
                ),
            },
        )
    return RunResult(model, data, train, results, seconds, out)


def evaluate_checkpoint(
    checkpoint_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    device: str | None = None,
    eval_modes: tuple[str, ...] = ("teacher_forced", "generation"),
    progress: bool = True,
    precision: Precision = "auto",
) -> RunResult:
    """Re-build the checkpoint's data (recorded in its config) and score it again."""
    config, _ = read_checkpoint_config(checkpoint_dir)
    dtype = resolve_precision(precision, device or default_device())
    target = load_model(config.target_model, device=device, dtype=dtype)
    model = load_hyperdas(checkpoint_dir, target)
    data = build_experiment_data(
        target, DataConfig.from_dict(config.data), model_name=config.target_model
    )
    eval_config = EvalConfig(modes=eval_modes, show_progress=progress)  # type: ignore[arg-type]
    start = time.perf_counter()
    results = evaluate_hyperdas(model, data, eval_config=eval_config)
    seconds = {"evaluate": time.perf_counter() - start}
    if out_dir is not None:
        write_results(
            Path(out_dir),
            results,
            {
                "model": config.target_model,
                "hyperdas": config.to_dict(),
                "seconds": seconds,
                "provenance": run_provenance(seed=config.seed, dtype=precision_name(dtype)),
            },
        )
    return RunResult(model, data, None, results, seconds, Path(out_dir) if out_dir else None)
