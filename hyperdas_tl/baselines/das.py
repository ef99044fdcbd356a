"""DAS and MDAS: one learned orthonormal subspace at the entity's last token (one trainer).

Distributed alignment search (Geiger et al., 2024) learns ``R`` (``d_model x k``, orthonormal
columns by the ``torch.nn.utils.parametrizations.orthogonal`` parametrisation) such that the
interchange ``b' = b + R Rᵀ (s - b)`` at ``blocks.{layer}.hook_resid_pre`` — base position
``base_entity_last`` reading source position ``source_entity_last`` — makes the frozen model
produce the label. The loss is cross-entropy on the (first ``max_label_tokens``) label tokens.

- ``objective="das"`` trains on cause examples only (the source's value of A must appear).
- ``objective="mdas"`` trains on cause and isolate examples together (RAVEL's multi-task DAS:
  the other attribute must also survive the intervention).

Source activations never change (the model is frozen), so they are captured once per batch
before training; each step runs one hooked base forward.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn
from torch.nn.utils.parametrizations import orthogonal
from tqdm.auto import tqdm

from hyperdas_tl.data.batching import IGNORE_INDEX, InterventionBatch
from hyperdas_tl.hooks import capture_resid_pre, resid_pre_name
from hyperdas_tl.metrics import (
    Hooks,
    Intervention,
    entity_interchange_hooks,
    entity_source_vectors,
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
    """Passes over the training batches."""
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def training_rows(
    batches: Sequence[InterventionBatch], objective: Objective
) -> list[InterventionBatch]:
    """The batches restricted to the rows ``objective`` trains on (empty batches dropped)."""
    kept = []
    for batch in batches:
        if objective == "das":
            batch = select_rows(batch, batch.is_cause)
        if len(batch):
            kept.append(batch)
    return kept


def label_loss(
    logits: Float[Tensor, "batch pos d_vocab"], labels: Tensor, max_label_tokens: int
) -> Tensor:
    """Cross-entropy over the first ``max_label_tokens`` labelled positions of each row."""
    labelled = labels != IGNORE_INDEX
    judged = labelled & (labelled.long().cumsum(dim=1) <= max_label_tokens)
    if not bool(judged.any()):
        raise ValueError("no label tokens to train on (labels are all -100)")
    return nn.functional.cross_entropy(logits[judged].float(), labels[judged])


def train_das(model: Any, batches: Sequence[InterventionBatch], config: DASConfig) -> DASResult:
    """Train a DAS (cause rows) or MDAS (cause + isolate rows) subspace on ``batches``.

    The model's parameters stay frozen; only the basis is optimised (Adam).
    """
    resid_pre_name(model, config.layer)
    device = next(iter(model.parameters())).device
    train = [b.to(device) for b in training_rows(batches, config.objective)]
    if not train:
        raise ValueError(f"no training rows for objective {config.objective!r}")
    d_model = int(model.cfg.d_model)
    if config.k > d_model:
        raise ValueError(f"k={config.k} exceeds d_model={d_model}")

    start = time.perf_counter()
    module = DASIntervention(d_model, config.layer, config.k, seed=config.seed).to(device)
    sources = [entity_source_vectors(model, b, config.layer) for b in train]
    # The target is frozen and positions are fixed, so the base residual entering block L is the
    # same every epoch: capture it once and train on blocks L.. only (run_from_layer). Nothing
    # before L is recomputed or kept for backward.
    base_resids = [
        capture_resid_pre(model, b.base_ids, [config.layer], b.base_attention_mask)[config.layer]
        for b in train
    ]
    optimiser = torch.optim.Adam(module.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    history = DASHistory(n_train_rows=sum(len(b) for b in train))
    total = config.epochs * len(train)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    was_training = model.training
    model.eval()
    with tqdm(
        total=total,
        desc=f"{config.objective} L{config.layer} k{config.k}",
        disable=not config.show_progress,
    ) as bar:
        for _ in range(config.epochs):
            epoch_losses = []
            for index in torch.randperm(len(train), generator=generator).tolist():
                if len(history.step_loss) >= total:
                    break
                batch = train[index]
                hooks = module.hooks(model, batch, batch.base_ids.shape[1], sources[index])
                with model.hooks(fwd_hooks=hooks):
                    logits = run_from_layer(
                        model, base_resids[index], config.layer, batch.base_attention_mask
                    )
                loss = label_loss(logits, batch.labels, config.max_label_tokens)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                history.step_loss.append(loss.item())
                epoch_losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if epoch_losses:
                history.epoch_loss.append(sum(epoch_losses) / len(epoch_losses))
            if len(history.step_loss) >= total:
                break
    model.train(was_training)
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    history.seconds = time.perf_counter() - start
    logger.info(
        "%s layer %d k %d: %d steps, final loss %.4f, %.1fs",
        config.objective,
        config.layer,
        config.k,
        len(history.step_loss),
        history.step_loss[-1],
        history.seconds,
    )
    return DASResult(intervention=module, config=config, history=history)
