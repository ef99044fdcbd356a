"""One unit of a comparison: a (method, seed) trained (DAS / MDAS per attribute or pooled, the
probes, HyperDAS; the controls need no training) and scored on every evaluation split, as
:class:`~hyperdas_tl.compare.records.ExampleRecord`\ s."""

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperdas_tl.baselines.controls import (
    full_residual_swap_intervention,
    random_subspace_intervention,
)
from hyperdas_tl.baselines.das import (
    DASConfig,
    Objective,
    attribute_subspace_intervention,
    search_lr,
    train_attribute_subspaces,
)
from hyperdas_tl.baselines.probes import ProbeConfig, train_probes
from hyperdas_tl.compare.methods import HYPERDAS_ENTITY_POSITION, METHODS
from hyperdas_tl.compare.records import ExampleRecord
from hyperdas_tl.compare.run_folder import unit_checkpoint_path, unit_name
from hyperdas_tl.compare.settings import CompareSettings
from hyperdas_tl.data.batching import InterventionBatch, collate_examples
from hyperdas_tl.data.examples import InterventionExample
from hyperdas_tl.experiment import ExperimentData
from hyperdas_tl.hyperdas.config import SELECTION_MODES
from hyperdas_tl.hyperdas.intervention import hyperdas_intervention, hyperdas_read_outs
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.hyperdas.train import train_hyperdas
from hyperdas_tl.metrics import Intervention, evaluate_interventions, no_intervention
from hyperdas_tl.models import module_device
from hyperdas_tl.target import TargetModel


@dataclass
class UnitContext:
    """What every unit of one comparison shares: the target, the data (batches on the model's
    device), the chosen layer, k, the attributes, the scored splits and the settings."""

    model: TargetModel
    data: ExperimentData
    batches: dict[str, list[InterventionBatch]]
    layer: int
    k: int
    attributes: tuple[str, ...]
    splits: tuple[str, ...]
    settings: CompareSettings
    trained_hyperdas: Mapping[int, HyperDAS] = field(default_factory=dict)
    """HyperDAS models already trained, by seed: scored instead of training one."""
    out: Path | None = None
    """The run folder, if any: a HyperDAS unit checkpoints its training there, a DAS / MDAS unit
    keeps each finished learning-rate run there
    (:func:`~hyperdas_tl.compare.run_folder.unit_checkpoint_path`), and a stopped unit resumes
    from what it finds."""


UNIT_CHECKPOINT_EVERY = 50
"""Steps between a HyperDAS unit's checkpoints when its config sets no cadence."""


@dataclass
class UnitResult:
    """A trained unit: what to score, and its training curves."""

    interventions: dict[str, Intervention]
    """``{scored method name: intervention}``."""
    curves: dict[str, Any]


def _das_config(ctx: UnitContext, objective: Objective, seed: int) -> DASConfig:
    return DASConfig(
        layer=ctx.layer,
        k=ctx.k,
        objective=objective,
        epochs=ctx.settings.das_max_epochs,
        lr=ctx.settings.das_lrs[0],
        max_label_tokens=ctx.settings.max_label_tokens,
        seed=seed,
        show_progress=ctx.settings.show_progress,
        batch_size=ctx.data.config.batch_size,
        patience=ctx.settings.das_patience,
    )


def _run_das(ctx: UnitContext, method: str, seed: int) -> UnitResult:
    objective: Objective = "mdas" if method.startswith("MDAS") else "das"
    config = _das_config(ctx, objective, seed)
    train, val = ctx.batches["train"], ctx.batches[ctx.settings.val_split]
    store = None if ctx.out is None else unit_checkpoint_path(ctx.out, unit_name(method, seed))
    if "pooled" in method:
        search = search_lr(ctx.model, train, val, config, ctx.settings.das_lrs, store=store)
        intervention = search.best.intervention.intervention(ctx.model)
        return UnitResult({method: intervention}, {"pooled": search.to_dict()})
    subspaces = train_attribute_subspaces(
        ctx.model, train, val, config, ctx.attributes, ctx.settings.das_lrs, store=store
    )
    return UnitResult({method: subspaces.intervention(ctx.model)}, subspaces.to_dict())


def _run_probe(ctx: UnitContext) -> UnitResult:
    batches = ctx.batches["train"] + ctx.batches[ctx.settings.val_split]
    bases, curves = {}, {}
    for attribute in ctx.attributes:
        sweep = train_probes(
            ctx.model,
            batches,
            attribute,
            ProbeConfig(
                layers=(ctx.layer,),
                l2=ctx.settings.probe_l2,
                max_iter=ctx.settings.probe_max_iter,
                train_split="train",
                test_split=ctx.settings.val_split,
                show_progress=ctx.settings.show_progress,
            ),
        )
        probe = sweep.probes[ctx.layer]
        basis = probe.subspace()  # its rank, at most n_classes - 1
        if basis.shape[1] > ctx.k:
            basis = probe.subspace(ctx.k)
        bases[attribute] = basis.to(module_device(ctx.model))
        curves[attribute] = {**sweep.to_dict(), "k": int(basis.shape[1])}
    return UnitResult(
        {"probe": attribute_subspace_intervention(ctx.model, ctx.layer, bases)}, curves
    )


def rebatch(
    examples: Sequence[InterventionExample],
    tokenizer: Any,
    batch_size: int,
    *,
    seed: int = 0,
    max_label_tokens: int = 3,
) -> list[InterventionBatch]:
    """``examples`` shuffled (seeded) and collated into batches of ``batch_size``."""
    if not examples:
        raise ValueError("no examples to batch")
    order = list(examples)
    random.Random(seed).shuffle(order)
    return [
        collate_examples(order[i : i + batch_size], tokenizer, max_label_tokens=max_label_tokens)
        for i in range(0, len(order), batch_size)
    ]


def _read_outs(hyperdas: HyperDAS) -> dict[str, Intervention]:
    return hyperdas_read_outs(hyperdas, SELECTION_MODES)


def _run_hyperdas(ctx: UnitContext, method: str, seed: int) -> UnitResult:
    """``"HyperDAS"`` (scored as its read-outs) or its entity-position ablation (scored once,
    under its own name: with fixed positions the read-outs are one intervention)."""
    settings = ctx.settings
    entity = method == HYPERDAS_ENTITY_POSITION
    if not entity and seed in ctx.trained_hyperdas:
        given = ctx.trained_hyperdas[seed].eval()
        return UnitResult(_read_outs(given), {"config": given.config.to_dict(), "given": True})
    config = settings.hyperdas.with_fields(
        layer=ctx.layer,
        k=ctx.k,
        seed=seed,
        data=ctx.data.config.to_dict(),
        positions="entity" if entity else "selected",
    )
    train = ctx.batches["train"]
    if settings.hyperdas_batch_size is not None:
        device = module_device(ctx.model)
        train = [
            b.to(device)
            for b in rebatch(
                ctx.data.examples["train"],
                ctx.model.tokenizer,
                settings.hyperdas_batch_size,
                seed=seed,
                max_label_tokens=settings.max_label_tokens,
            )
        ]
    checkpoint_dir = None
    if ctx.out is not None:
        checkpoint_dir = unit_checkpoint_path(ctx.out, unit_name(method, seed))
        every = config.training.checkpoint_every or UNIT_CHECKPOINT_EVERY
        config = config.with_fields(checkpoint_every=every)
    else:
        config = config.with_fields(checkpoint_every=None)
    hyperdas = HyperDAS(ctx.model, config)
    trained = train_hyperdas(
        hyperdas,
        train,
        val_batches=ctx.batches[settings.val_split],
        checkpoint_dir=checkpoint_dir,
        resume=checkpoint_dir is not None,
        show_progress=settings.show_progress,
    )
    curves = {
        "config": hyperdas.config.to_dict(),
        "steps": trained.steps,
        "history": [record.to_dict() for record in trained.history],
    }
    if entity:
        return UnitResult({method: hyperdas_intervention(hyperdas.eval(), "soft")}, curves)
    return UnitResult(_read_outs(hyperdas), curves)


def run_unit(ctx: UnitContext, method: str, seed: int | None) -> UnitResult:
    """Train ``method`` with ``seed`` (None for a deterministic method)."""
    if method == "no intervention":
        return UnitResult({method: no_intervention}, {})
    if method == "full residual swap":
        return UnitResult({method: full_residual_swap_intervention(ctx.model, ctx.layer)}, {})
    if method == "random subspace":
        intervention = random_subspace_intervention(ctx.model, ctx.layer, ctx.k, seed=int(seed))  # type: ignore[arg-type]
        return UnitResult({method: intervention}, {"seed": seed, "k": ctx.k})
    if method == "probe":
        return _run_probe(ctx)
    if method in ("DAS", "MDAS", "DAS (pooled)", "MDAS (pooled)"):
        return _run_das(ctx, method, int(seed))  # type: ignore[arg-type]
    if method in ("HyperDAS", HYPERDAS_ENTITY_POSITION):
        return _run_hyperdas(ctx, method, int(seed))  # type: ignore[arg-type]
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def score_unit(ctx: UnitContext, result: UnitResult, seed: int | None) -> list[ExampleRecord]:
    """Every verdict of ``result``'s interventions on every scored split (judged together per
    batch, so HyperDAS's read-outs share their frozen passes), ordered by intervention, then
    split."""
    scored = {
        split: evaluate_interventions(
            ctx.model,
            ctx.batches[split],
            result.interventions,
            setting=split,
            config=ctx.settings.eval_config,
        )
        for split in ctx.splits
    }
    return [
        ExampleRecord(
            method=name,
            seed=seed,
            domain=j.domain,
            split=j.split,
            attribute=j.attribute,
            kind=j.kind,
            mode=j.mode,
            example_id=j.example_id,
            base_entity=j.base_entity,
            correct=j.correct,
        )
        for name in result.interventions
        for split in ctx.splits
        for j in scored[split][name].judgements
    ]
