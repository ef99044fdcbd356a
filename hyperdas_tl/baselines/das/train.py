"""Training one DAS / MDAS subspace (:func:`train_das`): activations captured once, the epoch
loop on blocks L.. only, validation after every epoch, the best epoch's basis kept; and what a
run returns (:class:`DASResult`, its :class:`DASHistory` and per-epoch :class:`DASEpoch`)."""

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn
from tqdm.auto import tqdm

from hyperdas_tl.baselines.das.config import DASConfig
from hyperdas_tl.baselines.das.module import DASIntervention
from hyperdas_tl.baselines.das.rows import config_rows
from hyperdas_tl.config_dict import check_known_fields
from hyperdas_tl.data.batching import (
    InterventionBatch,
    LabelPositions,
    judged_label_positions,
    label_positions,
)
from hyperdas_tl.hooks import capture_resid_pre, resid_pre_name
from hyperdas_tl.metrics import entity_source_vectors, teacher_forced_correct
from hyperdas_tl.models import module_device
from hyperdas_tl.partial_forward import run_from_layer
from hyperdas_tl.target import TargetModel

logger = logging.getLogger(__name__)


@dataclass
class DASEpoch:
    """One point of the training curve: an epoch's train loss and its validation scores."""

    epoch: int
    """1-based epoch number."""
    train_loss: float
    """Mean label cross-entropy of the epoch's steps."""
    val_cause: float | None
    """Teacher-forced accuracy on the validation cause rows (None without any)."""
    val_isolate: float | None
    """Teacher-forced accuracy on the validation isolate rows (None without any)."""
    val_disentangle: float
    """Mean of the defined ones of ``val_cause`` and ``val_isolate``."""
    val_loss: float
    """Label cross-entropy on the validation rows (breaks ties of ``val_disentangle``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DASEpoch":
        check_known_fields(cls, data)
        return cls(**data)


@dataclass
class DASHistory:
    """What happened during training."""

    step_loss: list[float] = field(default_factory=list)
    """Mean label cross-entropy of each optimiser step."""
    epoch_loss: list[float] = field(default_factory=list)
    """Mean of ``step_loss`` over each epoch."""
    n_train_rows: int = 0
    """Training examples used (cause only for DAS)."""
    seconds: float = 0.0
    """Wall time of the training loop (source capture included)."""
    curve: list[DASEpoch] = field(default_factory=list)
    """Per-epoch train loss and validation scores (empty without validation batches)."""
    best_epoch: int | None = None
    """The epoch whose basis was kept (the best validation Disentangle; None without
    validation, when the last epoch's basis is kept)."""
    stopped_early: bool = False
    """Whether ``patience`` ended training before ``epochs``."""
    n_val_rows: int = 0
    """Validation rows scored after each epoch."""

    @property
    def best(self) -> DASEpoch | None:
        """The curve point of :attr:`best_epoch`."""
        return None if self.best_epoch is None else self.curve[self.best_epoch - 1]

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "curve"},
            "curve": [point.to_dict() for point in self.curve],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DASHistory":
        """The inverse of :meth:`to_dict`."""
        check_known_fields(cls, data)
        curve = [DASEpoch.from_dict(point) for point in data.get("curve", [])]
        return cls(**{**data, "curve": curve})


@dataclass
class DASResult:
    """A trained DAS / MDAS subspace, its config and its training history."""

    intervention: DASIntervention
    config: DASConfig
    history: DASHistory

    @property
    def basis(self) -> Float[Tensor, "d_model k"]:
        return self.intervention.basis.detach()


def label_loss(
    logits: Float[Tensor, "batch pos d_vocab"], labels: Tensor, max_label_tokens: int
) -> Tensor:
    """Cross-entropy over the first ``max_label_tokens`` labelled positions of each row."""
    judged = judged_label_positions(labels, max_label_tokens)
    if not bool(judged.any()):
        raise ValueError("no label tokens to train on (labels are all -100)")
    return nn.functional.cross_entropy(logits[judged].float(), labels[judged])


@dataclass
class Captured:
    """A batch on the model's device with its frozen activations at the intervention layer."""

    batch: InterventionBatch
    base_resid: Float[Tensor, "batch pos d_model"]
    """``blocks.{layer}.hook_resid_pre`` of the base run (blocks L.. are all that run again)."""
    sources: Float[Tensor, "batch d_model"]
    """The source residual at ``source_entity_last``."""
    scored: LabelPositions
    """The label positions: the only ones whose logits are computed
    (:func:`_intervened_logits`), with their labels."""


def capture(model: TargetModel, batches: Sequence[InterventionBatch], layer: int) -> list[Captured]:
    """Each batch moved to the model's device, with its frozen base residual entering ``layer``
    and its source vectors (captured once, reused every epoch and learning rate)."""
    device = module_device(model)
    captured = []
    for batch in batches:
        batch = batch.to(device)
        base = capture_resid_pre(model, batch.base_ids, [layer], batch.base_attention_mask)[layer]
        sources = entity_source_vectors(model, batch, layer)
        scored = label_positions(batch.labels)
        captured.append(Captured(batch, base, sources, scored))
    return captured


def _intervened_logits(
    model: TargetModel, module: DASIntervention, item: Captured
) -> Float[Tensor, "batch n d_vocab"]:
    """Logits at ``item.scored.positions`` only (the labels there are ``item.scored.labels``):
    label loss and teacher-forced verdicts equal those of the full logits."""
    batch = item.batch
    hooks = module.hooks(model, batch, batch.base_ids.shape[1], item.sources)
    with model.hooks(fwd_hooks=hooks):
        return run_from_layer(
            model,
            item.base_resid,
            module.layer,
            batch.base_attention_mask,
            positions=item.scored.positions,
        )


@dataclass
class _Validation:
    cause: float | None
    isolate: float | None
    loss: float


@torch.no_grad()
def _validate(
    model: TargetModel, module: DASIntervention, val: list[Captured], max_label_tokens: int
) -> _Validation:
    """Teacher-forced cause / isolate accuracy of ``module`` on the captured validation rows,
    and their label cross-entropy (per judged label token)."""
    hits = {True: 0, False: 0}
    totals = {True: 0, False: 0}
    loss_sum, n_tokens = 0.0, 0
    for item in val:
        logits = _intervened_logits(model, module, item)
        labels = item.scored.labels
        correct = teacher_forced_correct(logits, labels, max_label_tokens)
        for is_cause in (True, False):
            rows = item.batch.is_cause == is_cause
            hits[is_cause] += int((correct & rows).sum())
            totals[is_cause] += int(rows.sum())
        judged = judged_label_positions(labels, max_label_tokens)
        loss_sum += float(
            nn.functional.cross_entropy(logits[judged].float(), labels[judged], reduction="sum")
        )
        n_tokens += int(judged.sum())
    return _Validation(
        cause=hits[True] / totals[True] if totals[True] else None,
        isolate=hits[False] / totals[False] if totals[False] else None,
        loss=loss_sum / max(n_tokens, 1),
    )


def _disentangle(cause: float | None, isolate: float | None) -> float:
    present = [v for v in (cause, isolate) if v is not None]
    return sum(present) / len(present)


def train_captured(
    model: TargetModel,
    train: list[Captured],
    val: list[Captured] | None,
    config: DASConfig,
    start: float,
) -> DASResult:
    """The training loop on captured batches (see :func:`train_das`)."""
    device = train[0].base_resid.device
    d_model = int(model.cfg.d_model)
    module = DASIntervention(d_model, config.layer, config.k, seed=config.seed).to(device)
    optimiser = torch.optim.Adam(module.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    history = DASHistory(
        n_train_rows=sum(len(c.batch) for c in train),
        n_val_rows=sum(len(c.batch) for c in val or []),
    )
    best_state: dict[str, Tensor] | None = None
    best_key = (float("-inf"), float("-inf"))
    total = config.epochs * len(train)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    was_training = model.training
    model.eval()
    label = f"{config.objective} L{config.layer} k{config.k}"
    if config.attribute is not None:
        label += f" {config.attribute}"
    with tqdm(total=total, desc=label, disable=not config.show_progress) as bar:
        for epoch in range(1, config.epochs + 1):
            epoch_losses = []
            for index in torch.randperm(len(train), generator=generator).tolist():
                if len(history.step_loss) >= total:
                    break
                item = train[index]
                logits = _intervened_logits(model, module, item)
                loss = label_loss(logits, item.scored.labels, config.max_label_tokens)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                history.step_loss.append(loss.item())
                epoch_losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if not epoch_losses:
                break
            history.epoch_loss.append(sum(epoch_losses) / len(epoch_losses))
            if val:
                scores = _validate(model, module, val, config.max_label_tokens)
                point = DASEpoch(
                    epoch=epoch,
                    train_loss=history.epoch_loss[-1],
                    val_cause=scores.cause,
                    val_isolate=scores.isolate,
                    val_disentangle=_disentangle(scores.cause, scores.isolate),
                    val_loss=scores.loss,
                )
                history.curve.append(point)
                # better = higher Disentangle, or the same Disentangle with a lower loss (an
                # accuracy saturates long before the subspace stops improving)
                key = (point.val_disentangle, -point.val_loss)
                if key > best_key:
                    best_key, history.best_epoch = key, epoch
                    best_state = copy.deepcopy(module.state_dict())
                bar.set_postfix(loss=f"{point.train_loss:.3f}", val=f"{best_key[0]:.3f}")
                since_best = epoch - (history.best_epoch or 0)
                if config.patience is not None and since_best >= config.patience:
                    history.stopped_early = epoch < config.epochs
                    break
            if len(history.step_loss) >= total:
                break
    model.train(was_training)
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    history.seconds = time.perf_counter() - start
    logger.info(
        "%s: %d steps, final loss %.4f, best epoch %s (val Disentangle %s), %.1fs",
        label,
        len(history.step_loss),
        history.step_loss[-1],
        history.best_epoch,
        f"{best_key[0]:.3f}" if history.best_epoch else "-",
        history.seconds,
    )
    return DASResult(intervention=module, config=config, history=history)


def check_model(model: TargetModel, config: DASConfig) -> None:
    """Refuse a config the model cannot run: an unknown layer, or ``k`` above ``d_model``."""
    resid_pre_name(model, config.layer)
    d_model = int(model.cfg.d_model)
    if config.k > d_model:
        raise ValueError(f"k={config.k} exceeds d_model={d_model}")


def train_das(
    model: TargetModel,
    batches: Sequence[InterventionBatch],
    config: DASConfig,
    *,
    val_batches: Sequence[InterventionBatch] | None = None,
) -> DASResult:
    """Train a DAS (cause rows) or MDAS (cause + isolate rows) subspace on ``batches``.

    The model's parameters stay frozen; only the basis is optimised (Adam). With
    ``config.attribute``, only that attribute's rows train (and validate) it. With
    ``val_batches``, every epoch is scored on them (the curve is in ``history.curve``), the best
    epoch's basis is returned and ``config.patience`` may stop training early.
    """
    check_model(model, config)
    train, val = config_rows(batches, val_batches, config)
    start = time.perf_counter()
    # The target is frozen and positions are fixed, so the base residual entering block L is the
    # same every epoch: capture it once and train on blocks L.. only (run_from_layer). Nothing
    # before L is recomputed or kept for backward.
    captured_val = None if val is None else capture(model, val, config.layer)
    return train_captured(model, capture(model, train, config.layer), captured_val, config, start)
