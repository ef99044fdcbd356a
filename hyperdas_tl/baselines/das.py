"""DAS and MDAS: one learned orthonormal subspace at the entity's last token (one trainer).

Distributed alignment search (Geiger et al., 2024) learns ``R`` (``d_model x k``, orthonormal
columns by the ``torch.nn.utils.parametrizations.orthogonal`` parametrisation) such that the
interchange ``b' = b + R Rᵀ (s - b)`` at ``blocks.{layer}.hook_resid_pre`` — base position
``base_entity_last`` reading source position ``source_entity_last`` — makes the frozen model
produce the label. The loss is cross-entropy on the (first ``max_label_tokens``) label tokens.

- ``objective="das"`` trains on cause examples only (the source's value of A must appear).
- ``objective="mdas"`` trains on cause and isolate examples together (RAVEL's multi-task DAS:
  the other attribute must also survive the intervention).

**RAVEL's protocol is one subspace per target attribute.** ``DASConfig(attribute="Country")``
trains only on the rows whose example targets Country (DAS: Country's cause rows; MDAS: those
plus Country's isolate rows, whose base queries another attribute that must keep its answer
under the Country intervention); :func:`train_attribute_subspaces` trains one per attribute
and :meth:`AttributeSubspaces.intervention` applies attribute A's basis to the rows whose target
attribute is A (batches mix attributes, so the basis is chosen per row). ``attribute=None``
pools every row into one subspace: the ``"DAS (pooled)"`` ablation, which a pooled MDAS cannot
satisfy (it is asked to carry Continent on Continent's cause rows and to leave it alone on
Country's isolate rows).

**Training to convergence.** With validation batches, :func:`train_das` scores the subspace
after every epoch (teacher-forced Cause / Isolate / Disentangle on the validation rows of the
same attribute), keeps the best epoch's basis, stops after ``patience`` epochs without a better
Disentangle, and returns the curve; :func:`search_lr` repeats that for several learning rates
and keeps the best on validation.

Source activations and the base residual entering block L never change (the model is frozen),
so they are captured once per batch before training; each step runs blocks L.. only.
"""

import copy
import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn
from torch.nn.utils.parametrizations import orthogonal
from tqdm.auto import tqdm

from hyperdas_tl.data.batching import IGNORE_INDEX, InterventionBatch, judged_label_positions
from hyperdas_tl.hooks import capture_resid_pre, resid_pre_name, soft_interchange_hook_for
from hyperdas_tl.interchange import check_basis, positions_to_selection
from hyperdas_tl.metrics import (
    Hooks,
    Intervention,
    entity_interchange_hooks,
    entity_source_vectors,
    teacher_forced_correct,
)
from hyperdas_tl.partial_forward import run_from_layer

logger = logging.getLogger(__name__)

Objective = Literal["das", "mdas"]
OBJECTIVES: tuple[Objective, ...] = ("das", "mdas")


@dataclass
class DASConfig:
    """One DAS / MDAS run."""

    layer: int
    """Intervene at ``blocks.{layer}.hook_resid_pre``."""
    k: int = 16
    """Subspace dimension (columns of the basis)."""
    objective: Objective = "das"
    """``"das"``: cause examples only; ``"mdas"``: cause and isolate examples."""
    epochs: int = 3
    """Passes over the training batches (the most, when ``patience`` stops earlier)."""
    max_steps: int | None = None
    """Stop after this many optimiser steps (None: run every epoch)."""
    lr: float = 1e-3
    """Adam learning rate."""
    max_label_tokens: int = 3
    """Cross-entropy on the first this-many label tokens of each row."""
    seed: int = 0
    """Seeds the basis initialisation and the batch order."""
    show_progress: bool = True
    """Show a tqdm bar over steps."""
    attribute: str | None = None
    """Train only on rows whose example targets this attribute (RAVEL's protocol: one subspace
    per attribute). None pools the rows of every attribute (the "pooled" ablation)."""
    batch_size: int | None = None
    """Rows per step once the objective's (and attribute's) rows are selected: the selected rows
    are regrouped into batches of this size (a per-attribute DAS keeps ~1/4 of each mixed
    batch otherwise). None: the given batches, filtered."""
    patience: int | None = None
    """With validation batches: stop after this many epochs without a better validation
    Disentangle (or, at equal Disentangle, a lower validation loss); the best epoch's basis is
    kept either way. None: run every epoch."""

    def __post_init__(self) -> None:
        if isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < 0:
            raise ValueError(f"layer must be a non-negative int, got {self.layer!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.max_label_tokens < 1:
            raise ValueError(f"max_label_tokens must be >= 1, got {self.max_label_tokens}")
        if self.attribute is not None and (
            not isinstance(self.attribute, str) or not self.attribute
        ):
            raise ValueError(
                f"attribute must be a non-empty string or None, got {self.attribute!r}"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")
        if self.patience is not None and (isinstance(self.patience, bool) or self.patience < 1):
            raise ValueError(f"patience must be >= 1 or None, got {self.patience!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DASConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown DASConfig fields: {sorted(unknown)}")
        return cls(**data)


class SubspaceBasis(nn.Module):
    """A ``d_model x k`` basis with orthonormal columns by parametrisation (``RᵀR = I``)."""

    def __init__(self, d_model: int, k: int, *, seed: int = 0) -> None:
        super().__init__()
        if not 1 <= k <= d_model:
            raise ValueError(f"k must be in [1, d_model={d_model}], got {k}")
        linear = nn.Linear(k, d_model, bias=False)  # weight: [d_model, k]
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            linear.weight.copy_(torch.linalg.qr(torch.randn(d_model, k, generator=generator)).Q)
        # The parametrisation draws random numbers when it completes the basis; seed them too.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.linear = orthogonal(linear)
        self.d_model, self.k = d_model, k

    @property
    def basis(self) -> Float[Tensor, "d_model k"]:
        return self.linear.weight


class DASIntervention(nn.Module):
    """A trained (or trainable) DAS subspace at ``blocks.{layer}.hook_resid_pre``."""

    def __init__(self, d_model: int, layer: int, k: int, *, seed: int = 0) -> None:
        super().__init__()
        self.layer = layer
        self.subspace = SubspaceBasis(d_model, k, seed=seed)

    @property
    def basis(self) -> Float[Tensor, "d_model k"]:
        return self.subspace.basis

    def hooks(
        self,
        model: Any,
        batch: InterventionBatch,
        width: int,
        source_vectors: Float[Tensor, "batch d_model"] | None = None,
    ) -> Hooks:
        """Hooks of the entity-position interchange (differentiable in the basis)."""
        return entity_interchange_hooks(model, self.layer, batch, width, self.basis, source_vectors)

    def intervention(self, model: Any) -> Intervention:
        """This subspace as a :data:`~hyperdas_tl.metrics.Intervention` for scoring."""

        def build(batch: InterventionBatch, width: int) -> Hooks:
            with torch.no_grad():
                return self.hooks(model, batch, width)

        return build


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


@dataclass
class DASResult:
    """A trained DAS / MDAS subspace, its config and its training history."""

    intervention: DASIntervention
    config: DASConfig
    history: DASHistory

    @property
    def basis(self) -> Float[Tensor, "d_model k"]:
        return self.intervention.basis.detach()


def select_rows(batch: InterventionBatch, keep: Bool[Tensor, " batch"]) -> InterventionBatch:
    """The rows of ``batch`` where ``keep`` is True (tensors and examples)."""
    if keep.shape != (len(batch),):
        raise ValueError(f"keep must be [batch={len(batch)}], got {tuple(keep.shape)}")
    values = {}
    for f in fields(batch):
        value = getattr(batch, f.name)
        if isinstance(value, Tensor):
            values[f.name] = value[keep.to(value.device)]
        elif f.name == "examples":
            values[f.name] = [e for e, k in zip(value, keep.tolist(), strict=False) if k]
        else:
            values[f.name] = value
    return InterventionBatch(**values)


def _pad_value(name: str) -> int | bool:
    if name == "labels":
        return IGNORE_INDEX
    return False if name.endswith("intervenable") else 0


def concat_batches(batches: Sequence[InterventionBatch]) -> InterventionBatch:
    """One batch holding every row of ``batches`` (right padding widened to the widest; padded
    ids, masks and labels take the batching conventions' neutral values)."""
    if not batches:
        raise ValueError("concat_batches needs at least one batch")
    values: dict[str, Any] = {}
    for f in fields(InterventionBatch):
        parts = [getattr(b, f.name) for b in batches]
        if f.name == "examples":
            values[f.name] = [e for part in parts for e in part]
        elif parts[0].ndim == 1:
            values[f.name] = torch.cat(parts)
        else:
            width = max(p.shape[1] for p in parts)
            pad = _pad_value(f.name)
            values[f.name] = torch.cat(
                [nn.functional.pad(p, (0, width - p.shape[1]), value=pad) for p in parts]
            )
    return InterventionBatch(**values)


def regroup(batches: Sequence[InterventionBatch], batch_size: int) -> list[InterventionBatch]:
    """The rows of ``batches`` (in order) in batches of ``batch_size`` (the last may be
    smaller); trailing padding columns no row uses are dropped."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not batches:
        return []
    merged = concat_batches(batches)
    out = []
    for start in range(0, len(merged), batch_size):
        keep = torch.zeros(len(merged), dtype=torch.bool)
        keep[start : start + batch_size] = True
        out.append(_trim(select_rows(merged, keep)))
    return out


def _trim(batch: InterventionBatch) -> InterventionBatch:
    """Drop padding columns beyond the longest row of base and source (and concept)."""
    widths = {
        "base": int(batch.base_attention_mask.sum(dim=1).max()),
        "source": int(batch.source_attention_mask.sum(dim=1).max()),
        "concept": int(batch.concept_attention_mask.sum(dim=1).max()),
    }
    values: dict[str, Any] = {}
    for f in fields(batch):
        value = getattr(batch, f.name)
        side = "base" if f.name == "labels" else f.name.split("_")[0]
        if isinstance(value, Tensor) and value.ndim == 2 and side in widths:
            value = value[:, : max(widths[side], 1)]
        values[f.name] = value
    return InterventionBatch(**values)


def attribute_mask(batch: InterventionBatch, attribute: str) -> Bool[Tensor, " batch"]:
    """True on the rows whose example's target attribute is ``attribute``."""
    if len(batch.examples) != len(batch):
        raise ValueError(
            f"the batch carries {len(batch.examples)} examples for {len(batch)} rows; selecting "
            "rows by target attribute needs batch.examples"
        )
    return torch.tensor([e.target_attribute == attribute for e in batch.examples])


def attribute_rows(
    batches: Sequence[InterventionBatch], attribute: str | None
) -> list[InterventionBatch]:
    """The batches restricted to the rows targeting ``attribute`` (None: every row); empty
    batches dropped."""
    kept = []
    for batch in batches:
        if attribute is not None:
            batch = select_rows(batch, attribute_mask(batch, attribute))
        if len(batch):
            kept.append(batch)
    return kept


def training_rows(
    batches: Sequence[InterventionBatch], objective: Objective, attribute: str | None = None
) -> list[InterventionBatch]:
    """The batches restricted to the rows ``objective`` trains on (DAS: cause rows; MDAS: cause
    and isolate rows), of ``attribute`` only when given; empty batches dropped."""
    kept = []
    for batch in attribute_rows(batches, attribute):
        if objective == "das":
            batch = select_rows(batch, batch.is_cause)
        if len(batch):
            kept.append(batch)
    return kept


def label_loss(
    logits: Float[Tensor, "batch pos d_vocab"], labels: Tensor, max_label_tokens: int
) -> Tensor:
    """Cross-entropy over the first ``max_label_tokens`` labelled positions of each row."""
    judged = judged_label_positions(labels, max_label_tokens)
    if not bool(judged.any()):
        raise ValueError("no label tokens to train on (labels are all -100)")
    return nn.functional.cross_entropy(logits[judged].float(), labels[judged])


@dataclass
class _Captured:
    """A batch on the model's device with its frozen activations at the intervention layer."""

    batch: InterventionBatch
    base_resid: Float[Tensor, "batch pos d_model"]
    """``blocks.{layer}.hook_resid_pre`` of the base run (blocks L.. are all that run again)."""
    sources: Float[Tensor, "batch d_model"]
    """The source residual at ``source_entity_last``."""


def _capture(model: Any, batches: Sequence[InterventionBatch], layer: int) -> list[_Captured]:
    device = next(iter(model.parameters())).device
    captured = []
    for batch in batches:
        batch = batch.to(device)
        base = capture_resid_pre(model, batch.base_ids, [layer], batch.base_attention_mask)[layer]
        captured.append(_Captured(batch, base, entity_source_vectors(model, batch, layer)))
    return captured


def _intervened_logits(
    model: Any, module: "DASIntervention", item: _Captured
) -> Float[Tensor, "batch pos d_vocab"]:
    batch = item.batch
    hooks = module.hooks(model, batch, batch.base_ids.shape[1], item.sources)
    with model.hooks(fwd_hooks=hooks):
        return run_from_layer(model, item.base_resid, module.layer, batch.base_attention_mask)


@dataclass
class _Validation:
    cause: float | None
    isolate: float | None
    loss: float


@torch.no_grad()
def _validate(
    model: Any, module: "DASIntervention", val: list[_Captured], max_label_tokens: int
) -> _Validation:
    """Teacher-forced cause / isolate accuracy of ``module`` on the captured validation rows,
    and their label cross-entropy (per judged label token)."""
    hits = {True: 0, False: 0}
    totals = {True: 0, False: 0}
    loss_sum, n_tokens = 0.0, 0
    for item in val:
        logits = _intervened_logits(model, module, item)
        labels = item.batch.labels
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


def _train(
    model: Any,
    train: list[_Captured],
    val: list[_Captured] | None,
    config: DASConfig,
    start: float,
) -> "DASResult":
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
                loss = label_loss(logits, item.batch.labels, config.max_label_tokens)
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


def _check_model(model: Any, config: DASConfig) -> None:
    resid_pre_name(model, config.layer)
    d_model = int(model.cfg.d_model)
    if config.k > d_model:
        raise ValueError(f"k={config.k} exceeds d_model={d_model}")


def _rows(
    batches: Sequence[InterventionBatch],
    val_batches: Sequence[InterventionBatch] | None,
    config: DASConfig,
) -> tuple[list[InterventionBatch], list[InterventionBatch] | None]:
    train = training_rows(batches, config.objective, config.attribute)
    if not train:
        which = "" if config.attribute is None else f" of attribute {config.attribute!r}"
        raise ValueError(f"no training rows{which} for objective {config.objective!r}")
    if config.batch_size is not None:
        train = regroup(train, config.batch_size)
    if val_batches is None:
        return train, None
    val = attribute_rows(val_batches, config.attribute)
    if not val:
        raise ValueError(f"no validation rows of attribute {config.attribute!r}")
    if config.batch_size is not None:
        val = regroup(val, config.batch_size)
    return train, val


def train_das(
    model: Any,
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
    _check_model(model, config)
    train, val = _rows(batches, val_batches, config)
    start = time.perf_counter()
    # The target is frozen and positions are fixed, so the base residual entering block L is the
    # same every epoch: capture it once and train on blocks L.. only (run_from_layer). Nothing
    # before L is recomputed or kept for backward.
    captured_val = None if val is None else _capture(model, val, config.layer)
    return _train(model, _capture(model, train, config.layer), captured_val, config, start)


@dataclass
class DASSearch:
    """DAS / MDAS trained with several learning rates; the best on validation is kept."""

    runs: list[DASResult]
    """One run per learning rate, in the order given."""
    best_index: int
    """Index of the run with the best validation Disentangle (ties: lower validation loss)."""

    @property
    def best(self) -> DASResult:
        return self.runs[self.best_index]

    @property
    def lrs(self) -> list[float]:
        return [run.config.lr for run in self.runs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_lr": self.best.config.lr,
            "runs": [
                {"config": run.config.to_dict(), "history": run.history.to_dict()}
                for run in self.runs
            ],
        }


def search_lr(
    model: Any,
    batches: Sequence[InterventionBatch],
    val_batches: Sequence[InterventionBatch],
    config: DASConfig,
    lrs: Sequence[float],
) -> DASSearch:
    """Train ``config`` with each learning rate in ``lrs`` (validating every epoch, see
    :func:`train_das`) and keep the one whose best epoch has the highest validation
    Disentangle (ties: the lower validation loss, then the earlier rate). Activations are
    captured once for all learning rates."""
    lrs = list(lrs)
    if not lrs:
        raise ValueError("lrs must name at least one learning rate")
    _check_model(model, config)
    configs = [dataclasses.replace(config, lr=lr) for lr in lrs]  # validates every lr
    train, val = _rows(batches, val_batches, config)
    captured_train = _capture(model, train, config.layer)
    captured_val = _capture(model, val or [], config.layer)
    runs = [_train(model, captured_train, captured_val, c, time.perf_counter()) for c in configs]
    keys = [(run.history.best.val_disentangle, -run.history.best.val_loss) for run in runs]  # type: ignore[union-attr]
    best_index = max(range(len(runs)), key=lambda i: (keys[i], -i))
    return DASSearch(runs=runs, best_index=best_index)


def attribute_subspace_intervention(
    model: Any, layer: int, bases: Mapping[str, Float[Tensor, "d_model k"]]
) -> Intervention:
    """An :data:`~hyperdas_tl.metrics.Intervention` applying ``bases[A]`` at the entity's last
    token to every row whose example's target attribute is A (RAVEL's protocol: A's subspace is
    evaluated only as A's intervention).

    Rows are grouped by their basis's dimension ``k``: each group is one hook with a per-example
    basis ``[batch, d_model, k]`` whose other rows read nothing (all-null selection, so they are
    left exactly as they are). A row whose attribute has no basis is an error.
    """
    resid_pre_name(model, layer)
    if not bases:
        raise ValueError("bases must hold at least one attribute's basis")
    d_model = int(model.cfg.d_model)
    frozen: dict[str, Tensor] = {}
    for attribute, basis in bases.items():
        if basis.ndim != 2:
            raise ValueError(
                f"the basis of {attribute!r} must be [d_model, k], got {tuple(basis.shape)}"
            )
        check_basis(basis, d_model)
        frozen[attribute] = basis.detach()
    groups: dict[int, list[str]] = {}
    for attribute, basis in frozen.items():
        groups.setdefault(basis.shape[1], []).append(attribute)

    def build(batch: InterventionBatch, width: int) -> Hooks:
        if len(batch.examples) != len(batch):
            raise ValueError("a per-attribute intervention needs batch.examples (one per row)")
        attributes = [e.target_attribute for e in batch.examples]
        missing = sorted(set(attributes) - set(frozen))
        if missing:
            raise ValueError(f"no subspace for target attributes {missing}; have {sorted(frozen)}")
        sources = entity_source_vectors(model, batch, layer)
        device = sources.device
        hooks = []
        for names in groups.values():
            rows = torch.tensor([a in names for a in attributes], device=device)
            if not bool(rows.any()):
                continue
            basis = torch.stack(
                [frozen[a] if a in names else frozen[names[0]] for a in attributes]
            ).to(device)
            selection = positions_to_selection(
                torch.zeros(len(batch), 1, dtype=torch.long, device=device),
                batch.base_entity_last.to(device)[:, None],
                src_pos=1,
                base_pos=width,
                valid=rows[:, None],
            )
            hooks.append(
                soft_interchange_hook_for(model, layer, sources[:, None], selection, basis)
            )
        return hooks

    return build


@dataclass
class AttributeSubspaces:
    """One DAS / MDAS subspace per target attribute (RAVEL's protocol), each chosen on its
    attribute's validation rows."""

    layer: int
    objective: Objective
    searches: dict[str, DASSearch]
    """``{attribute: the learning-rate search of its subspace}``."""

    @property
    def bases(self) -> dict[str, Float[Tensor, "d_model k"]]:
        return {attribute: s.best.basis for attribute, s in self.searches.items()}

    def intervention(self, model: Any) -> Intervention:
        """Each row gets its own target attribute's subspace (see
        :func:`attribute_subspace_intervention`)."""
        return attribute_subspace_intervention(model, self.layer, self.bases)

    def to_dict(self) -> dict[str, Any]:
        """The training curves and chosen learning rate of every attribute (no weights)."""
        return {
            "layer": self.layer,
            "objective": self.objective,
            "attributes": {a: s.to_dict() for a, s in self.searches.items()},
        }


def train_attribute_subspaces(
    model: Any,
    batches: Sequence[InterventionBatch],
    val_batches: Sequence[InterventionBatch],
    config: DASConfig,
    attributes: Sequence[str],
    lrs: Sequence[float],
) -> AttributeSubspaces:
    """For each of ``attributes``: :func:`search_lr` with ``config`` restricted to that
    attribute's rows (``config.attribute`` is replaced)."""
    if not attributes:
        raise ValueError("attributes must name at least one target attribute")
    if len(set(attributes)) != len(attributes):
        raise ValueError(f"attributes repeat: {list(attributes)}")
    searches = {
        attribute: search_lr(
            model, batches, val_batches, dataclasses.replace(config, attribute=attribute), lrs
        )
        for attribute in attributes
    }
    return AttributeSubspaces(layer=config.layer, objective=config.objective, searches=searches)
