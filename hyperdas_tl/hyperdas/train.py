"""Training loop of HyperDAS.

:func:`train_hyperdas` runs AdamW (R0 in its own parameter group with its own learning rate,
no weight decay on R0, norms, biases or the state embedding), optional linear warm-up, global
gradient-norm clipping and the sparsity schedule of :mod:`hyperdas_tl.hyperdas.loss`. Batch
order is a function of (seed, step) alone (a fresh seeded permutation per epoch), so a run
resumed from a checkpoint sees exactly the batches the uninterrupted run would have seen and
ends with the same weights. A non-finite loss or gradient norm stops training with
:class:`NonFiniteLossError` before the optimiser step, so the weights (and the last checkpoint)
stay usable.

Progress (tqdm) shows a running loss and Cause / Isolate accuracy on the first
``training.val_batches`` validation batches, judged teacher-forced by a small private helper
(every label token must be the argmax); :mod:`hyperdas_tl.metrics` is the full evaluation.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn
from tqdm.auto import tqdm

from hyperdas_tl.data.batching import InterventionBatch, judged_label_positions
from hyperdas_tl.hyperdas.checkpoint import (
    TrainerState,
    has_checkpoint,
    load_training_state,
    load_weights,
    save_checkpoint,
)
from hyperdas_tl.hyperdas.config import HyperDASTraining, SelectionMode
from hyperdas_tl.hyperdas.history import TrainingStep
from hyperdas_tl.hyperdas.loss import HyperDASLoss, sparsity_weight
from hyperdas_tl.hyperdas.model import HyperDAS, TargetStates
from hyperdas_tl.hyperdas.subspace import r0_parameters

logger = logging.getLogger(__name__)

MAX_JUDGED_LABEL_TOKENS = 3
RUNNING_LOSS_DECAY = 0.9


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/inf loss or gradient norm."""


@dataclass
class Accuracy:
    """Teacher-forced Cause / Isolate accuracy (None where the split has no examples)."""

    cause: float | None
    isolate: float | None


@dataclass
class TrainResult:
    """What :func:`train_hyperdas` returns."""

    steps: int
    """Optimiser steps completed in total (including those before a resume)."""
    history: list[TrainingStep]
    """One record per step: loss parts, sparsity weight, gradient norm, validation accuracy."""
    validation: Accuracy | None
    """Final accuracy on the validation slice (None without validation batches)."""
    state_cache_bytes: int = 0
    """Memory held by the frozen-state cache at the end (0 when it was not used)."""


def build_optimizer(model: HyperDAS, training: HyperDASTraining) -> torch.optim.AdamW:
    """AdamW groups: hypernetwork blocks and heads (selection, Householder MLP), each split into
    decayed matrices and undecayed vectors/norms, plus R0 (no decay, ``r0_lr``). Every group
    records its un-warmed rate as ``base_lr``."""
    r0_ids = {id(p) for p in r0_parameters(model.subspace)}
    head_ids = {id(p) for module in (model.selection, model.subspace) for p in module.parameters()}
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {
        (head, decayed): [] for head in (False, True) for decayed in (True, False)
    }
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad or id(parameter) in r0_ids:
            continue
        is_matrix = parameter.ndim >= 2 and "state_embedding" not in name
        buckets[(id(parameter) in head_ids, is_matrix)].append(parameter)
    groups = [
        {
            "params": params,
            "lr": training.heads_lr if head else training.lr,
            "weight_decay": training.weight_decay if decayed else 0.0,
        }
        for (head, decayed), params in buckets.items()
    ]
    groups.append(
        {"params": r0_parameters(model.subspace), "lr": training.r0_lr, "weight_decay": 0.0}
    )
    groups = [g for g in groups if g["params"]]
    for group in groups:
        group["base_lr"] = group["lr"]
    return torch.optim.AdamW(groups)


def batch_index(step: int, n_batches: int, seed: int) -> int:
    """Index of the batch used at ``step``: a seeded permutation per epoch."""
    epoch, offset = divmod(step, n_batches)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return int(torch.randperm(n_batches, generator=generator)[offset])


def _correct(
    logits: Float[Tensor, "batch pos d_vocab"], labels: Int[Tensor, "batch pos"]
) -> tuple[Bool[Tensor, " batch"], Bool[Tensor, " batch"]]:
    """Per example: whether the first ≤3 label tokens are all the argmax, and whether the
    example has a label at all."""
    judged = judged_label_positions(labels, MAX_JUDGED_LABEL_TOKENS)
    hits = (logits.argmax(dim=-1) == labels) | ~judged
    return hits.all(dim=1) & judged.any(dim=1), judged.any(dim=1)


@torch.no_grad()
def teacher_forced_accuracy(
    model: HyperDAS, batches: Sequence[InterventionBatch], mode: SelectionMode = "soft"
) -> Accuracy:
    """Cause / Isolate accuracy over ``batches`` (a quick check, not the evaluation metric)."""
    was_training = model.training
    model.eval()
    counts = {True: [0, 0], False: [0, 0]}
    try:
        for batch in batches:
            output = model(batch, mode, logits_at="labels")
            labels = batch.labels.gather(1, output.positions)  # the labels at those positions
            correct, has_label = _correct(output.logits, labels)
            for is_cause in (True, False):
                rows = has_label & (batch.is_cause.bool() == is_cause)
                counts[is_cause][0] += int((correct & rows).sum())
                counts[is_cause][1] += int(rows.sum())
    finally:
        model.train(was_training)

    def ratio(pair: list[int]) -> float | None:
        return pair[0] / pair[1] if pair[1] else None

    return Accuracy(cause=ratio(counts[True]), isolate=ratio(counts[False]))


def _check_training(model: HyperDAS, training: HyperDASTraining | None) -> HyperDASTraining:
    if training is None:
        return model.config.training
    if training.seed != model.config.training.seed:
        raise ValueError(
            f"training.seed={training.seed} differs from the seed the model was initialised "
            f"with ({model.config.training.seed}); build the model with this seed"
        )
    return training.resolved()


def _finite_or_raise(value: Tensor, what: str, step: int, loss: HyperDASLoss) -> None:
    if not bool(torch.isfinite(value)):
        raise NonFiniteLossError(
            f"HyperDAS training stopped at step {step}: {what} is {float(value)} "
            f"(ce={float(loss.ce.detach()):.4g}, sparsity={float(loss.sparsity.detach()):.4g}, "
            f"sparsity_weight={loss.sparsity_weight:.3g}). Lower lr / r0_lr, check the batch "
            "for empty label or intervention masks, or resume from the last checkpoint."
        )


def train_hyperdas(
    model: HyperDAS,
    train_batches: Sequence[InterventionBatch],
    training: HyperDASTraining | None = None,
    *,
    val_batches: Sequence[InterventionBatch] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    show_progress: bool = True,
    on_step: Callable[[int, HyperDASLoss], None] | None = None,
) -> TrainResult:
    """Train ``model`` for ``training.n_steps`` steps over ``train_batches`` (cycled, reshuffled
    each epoch).

    Args:
        model: the HyperDAS model (its target stays frozen).
        train_batches: the training batches (already on the model's device).
        training: the run's settings; defaults to ``model.config.training``. Its seed must be
            the one the model was initialised with. It replaces ``model.config.training`` so
            checkpoints record it.
        val_batches: batches for the progress-bar Cause/Isolate (first ``training.val_batches``).
        checkpoint_dir: where to save every ``training.checkpoint_every`` steps and at the end.
        resume: continue from the checkpoint in ``checkpoint_dir`` (fresh start when there is
            none). Without ``resume``, an existing checkpoint there is an error.
        show_progress: show a tqdm bar.
        on_step: called as ``on_step(step, loss)`` after each optimiser step.
    """
    training = _check_training(model, training)
    model.config = replace(model.config, training=training)
    if not train_batches:
        raise ValueError("train_batches is empty")
    if training.checkpoint_every is not None and checkpoint_dir is None:
        raise ValueError("training.checkpoint_every is set but no checkpoint_dir was given")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    val_slice = list(val_batches or [])[: training.val_batches]

    optimizer = build_optimizer(model, training)
    state = TrainerState()
    if checkpoint_dir is not None and has_checkpoint(checkpoint_dir):
        if not resume:
            raise ValueError(
                f"{checkpoint_dir} already holds a checkpoint; pass resume=True to continue it "
                "or choose another checkpoint_dir"
            )
        load_weights(checkpoint_dir, model)
        state = load_training_state(checkpoint_dir, optimizer)
        logger.info("Resuming HyperDAS training from step %d (%s)", state.step, checkpoint_dir)
    elif resume:
        logger.warning("resume: no checkpoint in %s; starting a fresh run", checkpoint_dir)

    base_lrs = [group["base_lr"] for group in optimizer.param_groups]
    running = state.history[-1].running_loss if state.history else None
    postfix: dict[str, str] = {}
    model.train()
    bar = tqdm(
        range(state.step, training.n_steps),
        initial=state.step,
        total=training.n_steps,
        disable=not show_progress,
        desc="HyperDAS",
    )
    state_cache: dict[int, TargetStates] = {}
    cache_bytes, cache_cap = 0, int(training.state_cache_max_gb * 2**30)
    cache_full_logged = False
    # a batch is reused only if the run goes past one epoch; otherwise caching just holds memory
    cache_states = training.cache_target_states and training.n_steps > len(train_batches)
    for step in bar:
        index = batch_index(step, len(train_batches), training.seed)
        batch = train_batches[index]
        states = state_cache.get(index)
        if cache_states and states is None:
            states = model.target_states(batch)
            size = states_nbytes(states)
            if cache_bytes + size <= cache_cap:
                state_cache[index] = states
                cache_bytes += size
                if len(state_cache) == len(train_batches):
                    logger.info(
                        "state cache holds every training batch: %.1f MB", cache_bytes / 2**20
                    )
            elif not cache_full_logged:
                cache_full_logged = True
                logger.info(
                    "state cache full at %.1f MB (%d of %d batches); the rest is recomputed",
                    cache_bytes / 2**20,
                    len(state_cache),
                    len(train_batches),
                )
        warm = min(1.0, (step + 1) / training.warmup_steps) if training.warmup_steps else 1.0
        for group, base_lr in zip(optimizer.param_groups, base_lrs, strict=True):
            group["lr"] = base_lr * warm
        weight = sparsity_weight(
            step, training.n_steps, training.sparsity_max, training.sparsity_start
        )

        try:
            output = model(batch, "soft", sparsity_weight=weight, states=states, logits_at="labels")
        except FloatingPointError as error:
            raise NonFiniteLossError(
                f"HyperDAS training stopped at step {step}: {error}. Lower lr / r0_lr or "
                "resume from the last checkpoint."
            ) from error
        loss = output.loss
        if loss is None:
            raise ValueError(f"training batch at step {step} has no label tokens")
        _finite_or_raise(loss.total, "the loss", step, loss)
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        parameters = [p for p in model.parameters() if p.grad is not None]
        max_norm = training.grad_clip if training.grad_clip is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        _finite_or_raise(grad_norm, "the gradient norm", step, loss)
        optimizer.step()

        value = float(loss.total.detach())
        running = (
            value
            if running is None
            else (RUNNING_LOSS_DECAY * running + (1 - RUNNING_LOSS_DECAY) * value)
        )
        done = step + 1
        accuracy = Accuracy(cause=None, isolate=None)
        if val_slice and (done % training.eval_every == 0 or done == training.n_steps):
            accuracy = teacher_forced_accuracy(model, val_slice)
            for name in ("cause", "isolate"):
                value_ = getattr(accuracy, name)
                if value_ is not None:
                    postfix[name[:3]] = f"{value_:.2f}"
        state.history.append(
            TrainingStep(
                step=done,
                loss=value,
                ce=float(loss.ce.detach()),
                sparsity=float(loss.sparsity.detach()),
                sparsity_weight=weight,
                grad_norm=float(grad_norm),
                running_loss=running,
                val_cause=accuracy.cause,
                val_isolate=accuracy.isolate,
            )
        )
        state.step = done
        bar.set_postfix(loss=f"{running:.3f}", **postfix)
        if on_step is not None:
            on_step(step, loss)
        if checkpoint_dir is not None and (
            done == training.n_steps
            or (training.checkpoint_every is not None and done % training.checkpoint_every == 0)
        ):
            save_checkpoint(checkpoint_dir, model, optimizer=optimizer, trainer_state=state)
    bar.close()
    model.eval()

    validation = None
    if val_slice:
        last = state.history[-1] if state.history else None
        validation = Accuracy(
            cause=last.val_cause if last else None, isolate=last.val_isolate if last else None
        )
    return TrainResult(
        steps=state.step,
        history=state.history,
        validation=validation,
        state_cache_bytes=cache_bytes,
    )


def states_nbytes(states: TargetStates) -> int:
    """Bytes held by one batch's frozen states."""
    return sum(
        t.numel() * t.element_size()
        for part in (states.base, states.source)
        for t in (part.resid_pre, part.final)
    )


__all__ = [
    "Accuracy",
    "TrainingStep",
    "NonFiniteLossError",
    "TrainResult",
    "batch_index",
    "build_optimizer",
    "teacher_forced_accuracy",
    "train_hyperdas",
]
