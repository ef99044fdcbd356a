"""Configuration of HyperDAS: what is saved with the weights, and what only drives a run.

- :class:`HyperDASArchitecture`: what the weights mean (target, layer, rank, hypernetwork depth,
  selection and subspace settings, the target's dtype); saved with every checkpoint, needed to
  build a model that the weights fit.
- :class:`HyperDASTraining`: what only drives a training run (loss weights, optimiser, schedule,
  evaluation cadence, checkpoint cadence, the state cache, the seed).
- :class:`HyperDASConfig`: the two together with the run's data settings, as a model records
  them (``HyperDAS.config``, ``config.json`` of a checkpoint, ``"hyperdas"`` in results files).
  :meth:`HyperDASConfig.build` and :meth:`HyperDASConfig.with_fields` take the fields by name
  (each name belongs to one of the two parts), and :meth:`HyperDASConfig.from_dict` also reads
  the flat layout of checkpoints written before the split.

Fields that depend on the target (``layer``, ``k``, ``n_hypernet_layers``, ``target_dtype``) may
be left unset and are fixed when the model is built (:func:`hyperdas_tl.hyperdas.model.
config_for_target`), as is ``head_lr`` (unset = ``lr``), so a recorded config always holds
concrete values.

Default ``k`` (:func:`default_k`): the paper intervenes on a ``k = 128`` subspace of
Llama-3-8B's 4096-wide residual stream, i.e. 1/32 of it. We keep that *fraction* rather than
the absolute 128: the share of the residual stream that is exchanged is what trades Cause
(enough room for the attribute) against Isolate (little room for anything else). For
SmolLM2-135M (``d_model = 576``) this gives ``k = 18``, still far more dimensions than the
~log2(#values) ≈ 7-8 bits a RAVEL attribute such as a city's country needs, while 128 would
exchange 22% of the stream and hurt Isolate.

This module imports no torch (the command line builds its options from these classes).
"""

import logging
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Annotated, Any, Literal, get_args

from tyro.conf import Suppress, arg

from hyperdas_tl.config_dict import check_known_fields
from hyperdas_tl.config_values import (
    NonNegativeFloat,
    NonNegativeInt,
    OpenUnitFloat,
    PositiveFloat,
    PositiveInt,
    UnitFloat,
)

logger = logging.getLogger(__name__)

SelectionMode = Literal["soft", "one_to_many", "one_to_one"]
SELECTION_MODES: tuple[SelectionMode, ...] = get_args(SelectionMode)
StateRouting = Literal["grouped", "all"]
SelectionScore = Literal["dot", "cosine"]
PositionSource = Literal["selected", "entity"]
POSITION_SOURCES: tuple[PositionSource, ...] = get_args(PositionSource)


def check_selection_mode(mode: str) -> None:
    """Raise ``ValueError`` unless ``mode`` is one of :data:`SELECTION_MODES`."""
    if mode not in SELECTION_MODES:
        raise ValueError(f"selection_mode must be one of {SELECTION_MODES}, got {mode!r}")


PAPER_K = 128
PAPER_D_MODEL = 4096


def default_k(d_model: int) -> int:
    """Subspace rank that keeps the paper's fraction ``128 / 4096`` of the residual stream
    (18 for ``d_model = 576``; at least 1)."""
    return max(1, round(d_model * PAPER_K / PAPER_D_MODEL))


@dataclass
class HyperDASArchitecture:
    """What a HyperDAS checkpoint's weights mean (see the module docstring)."""

    target_model: Annotated[str, Suppress] = "smollm2-135m"
    """Name of the target, as given to :func:`hyperdas_tl.models.load_model`."""
    layer: NonNegativeInt | None = None
    """Intervention layer L (``blocks.L.hook_resid_pre``); None = ``n_layers // 2``."""
    k: PositiveInt | None = None
    """Rank of the intervened subspace; None = :func:`default_k` of the target's d_model."""
    n_hypernet_layers: PositiveInt = 8
    """N: the hypernetwork is the target's first N blocks (clipped to the target's depth)."""
    state_routing: StateRouting = "grouped"
    """Which target states each hypernetwork block cross-attends to: ``"grouped"`` splits the
    n_layers + 1 states (every resid_pre + final output) into N contiguous groups, block i
    reading group i; ``"all"`` lets every block read every state (N times the key cost)."""
    n_selection_heads: PositiveInt = 8
    """Heads of the position-selection scorer (must divide d_model)."""
    train_embedding: bool = False
    """Train the hypernetwork's token embedding (a d_vocab x d_model copy); False reads the
    target's embedding, frozen, and keeps it out of checkpoints."""
    selection_score: SelectionScore = "dot"
    """How the selection scores (source i, base j) pairs: ``"dot"`` (scaled dot product) or
    ``"cosine"`` (per-head cosine times a learned temperature); see
    :mod:`hyperdas_tl.hyperdas.selection`."""
    selection_temperature: PositiveFloat = 10.0
    """Initial temperature of ``"cosine"`` selection scores."""
    skip_attention_sink: bool = True
    """Never read or write position 0 (base and source). The first token is the attention sink:
    on SmolLM2 its residual norm is ~7x the other tokens' at layer 6 and ~170x at layer 12 (with
    a BOS token, as in Llama-3, it is the BOS). A soft selection that gives it even a few percent
    blends a huge vector into every base token; no RAVEL entity sits there."""
    null_init_weight: OpenUnitFloat | None = None
    """Initial soft weight of the null ("keep base") row at every intervenable base position, set
    through a learned bias on the null score (None: no bias, i.e. null starts as one more option
    among the source tokens). Starting near "keep base" (e.g. 0.5) keeps the first steps close to
    the unintervened model instead of blending every source token into every base token."""
    one_to_one_floor: float = 0.1
    """Minimum soft weight a source token's bid needs in the one-to-one read-out."""
    positions: PositionSource = "selected"
    """Where the interchange reads and writes. ``"selected"`` (HyperDAS): the position-selection
    module chooses, per example, which source tokens feed which base tokens. ``"entity"`` (an
    ablation): the source's last entity token feeds the base's last entity token, the fixed
    positions DAS uses, for every read-out; the hypernetwork then only builds the subspace. It
    separates HyperDAS's two halves: does it fail at finding the positions or at the subspace?"""
    target_dtype: Annotated[str | None, Suppress] = None
    """Dtype of the frozen target the weights were trained against (``"float32"`` /
    ``"bfloat16"``), recorded when the model is built; re-evaluation loads the target in it."""

    def __post_init__(self) -> None:
        if self.layer is not None and (isinstance(self.layer, bool) or self.layer < 0):
            raise ValueError(f"layer must be a non-negative int or None, got {self.layer!r}")
        if self.k is not None and (isinstance(self.k, bool) or self.k < 1):
            raise ValueError(f"k must be a positive int or None, got {self.k!r}")
        _positive_int("n_hypernet_layers", self.n_hypernet_layers)
        _positive_int("n_selection_heads", self.n_selection_heads)
        if self.state_routing not in get_args(StateRouting):
            raise ValueError(
                f"state_routing must be 'grouped' or 'all', got {self.state_routing!r}"
            )
        if self.selection_score not in get_args(SelectionScore):
            raise ValueError(
                f"selection_score must be 'dot' or 'cosine', got {self.selection_score!r}"
            )
        if not self.selection_temperature > 0:
            raise ValueError(f"selection_temperature must be > 0, got {self.selection_temperature}")
        if self.null_init_weight is not None and not 0.0 < self.null_init_weight < 1.0:
            raise ValueError(
                f"null_init_weight must be in (0, 1) or None, got {self.null_init_weight}"
            )
        if self.positions not in POSITION_SOURCES:
            raise ValueError(f"positions must be one of {POSITION_SOURCES}, got {self.positions!r}")
        if not 0.0 <= self.one_to_one_floor < 1.0:
            raise ValueError(f"one_to_one_floor must be in [0, 1), got {self.one_to_one_floor}")

    def resolved_for(self, n_layers: int, d_model: int) -> "HyperDASArchitecture":
        """A copy with ``layer``, ``k`` and ``n_hypernet_layers`` fixed for a target with
        ``n_layers`` blocks and width ``d_model``; raises if they cannot fit."""
        layer = n_layers // 2 if self.layer is None else self.layer
        if not 0 <= layer < n_layers:
            raise ValueError(
                f"layer {layer} is out of range: the target has layers 0..{n_layers - 1}"
            )
        k = default_k(d_model) if self.k is None else self.k
        if k > d_model:
            raise ValueError(f"k={k} exceeds the target's d_model={d_model}")
        n_hyper = self.n_hypernet_layers
        if n_hyper > n_layers:
            logger.warning(
                "n_hypernet_layers=%d exceeds the target's %d layers; using %d",
                n_hyper,
                n_layers,
                n_layers,
            )
            n_hyper = n_layers
        if d_model % self.n_selection_heads:
            raise ValueError(
                f"n_selection_heads={self.n_selection_heads} must divide d_model={d_model}"
            )
        return replace(self, layer=layer, k=k, n_hypernet_layers=n_hyper)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HyperDASArchitecture":
        """Inverse of :meth:`to_dict`; unknown keys raise."""
        check_known_fields(cls, data, comma_separated=True)
        return cls(**data)


@dataclass
class HyperDASTraining:
    """What drives one HyperDAS training run (see the module docstring)."""

    cause_weight: NonNegativeFloat = 3.5
    """Loss weight of cause examples."""
    isolate_weight: NonNegativeFloat = 0.5
    """Loss weight of isolate examples."""
    sparsity_max: NonNegativeFloat = 1.5
    """Final weight of the sparsity loss (penalises a source token spread over > 1 base)."""
    sparsity_start: UnitFloat = 0.5
    """Fraction of training before the sparsity weight starts its linear ramp 0 -> max."""
    n_steps: Annotated[PositiveInt, arg(name="steps")] = 1000
    """Optimiser steps."""
    lr: PositiveFloat = 1e-4
    """AdamW learning rate of the hypernetwork blocks (and of the heads when ``head_lr`` is
    unset)."""
    r0_lr: PositiveFloat = 1e-3
    """Learning rate of the base subspace R0 (its own parameter group)."""
    head_lr: PositiveFloat | None = None
    """Learning rate of the randomly initialised heads (position selection and the Householder
    MLP); unset = ``lr`` (fixed by :meth:`resolved`). The hypernetwork blocks start from
    pretrained weights and usually want a smaller rate than these."""
    weight_decay: NonNegativeFloat = 0.01
    """AdamW weight decay (not applied to R0, norms or biases)."""
    warmup_steps: NonNegativeInt = 0
    """Linear learning-rate warm-up steps."""
    grad_clip: PositiveFloat | None = 1.0
    """Max global gradient norm; None disables clipping."""
    seed: NonNegativeInt = 0
    """Seed of parameter initialisation and batch order."""
    eval_every: PositiveInt = 50
    """Steps between Cause/Isolate evaluations on the validation slice."""
    val_batches: PositiveInt = 4
    """Batches of the validation set used for the progress-bar accuracy."""
    checkpoint_every: PositiveInt | None = None
    """Steps between checkpoints (None: only at the end); needs a checkpoint directory."""
    cache_target_states: Annotated[bool, arg(name="cache-states")] = True
    """Keep each training batch's frozen target states (every resid_pre + final output of base
    and source, in the target's dtype: bf16 for a bf16 target) in memory after its first visit,
    so later epochs skip both frozen passes. Costs ``2 x (n_layers + 1) x pos x d_model``
    values per example (about 2 MB per SmolLM2 example of 30 tokens in bf16); results are
    identical with and without it. Ignored by runs of at most one epoch, where no batch is seen
    twice; capped by ``state_cache_max_gb``."""
    state_cache_max_gb: NonNegativeFloat = 4.0
    """Memory cap of the state cache: batches past it are recomputed on every visit."""

    def __post_init__(self) -> None:
        if not self.state_cache_max_gb >= 0:
            raise ValueError(f"state_cache_max_gb must be >= 0, got {self.state_cache_max_gb}")
        _positive_int("n_steps", self.n_steps)
        _positive_int("eval_every", self.eval_every)
        _positive_int("val_batches", self.val_batches)
        if self.checkpoint_every is not None:
            _positive_int("checkpoint_every", self.checkpoint_every)
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        for name in ("cause_weight", "isolate_weight", "sparsity_max", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr", "r0_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.head_lr is not None and not self.head_lr > 0:
            raise ValueError(f"head_lr must be > 0 or None, got {self.head_lr}")
        if not 0.0 <= self.sparsity_start <= 1.0:
            raise ValueError(f"sparsity_start must be in [0, 1], got {self.sparsity_start}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")

    def resolved(self) -> "HyperDASTraining":
        """A copy with ``head_lr`` fixed (unset = ``lr``). Left unset until a run starts, so
        ``replace(training, lr=...)`` moves the heads' rate along."""
        return replace(self, head_lr=self.heads_lr)

    @property
    def heads_lr(self) -> float:
        """The heads' learning rate (``head_lr``, or ``lr`` when unset)."""
        return self.lr if self.head_lr is None else self.head_lr

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HyperDASTraining":
        """Inverse of :meth:`to_dict`; unknown keys raise."""
        check_known_fields(cls, data, comma_separated=True)
        return cls(**data)


ARCHITECTURE_FIELD_NAMES = tuple(f.name for f in fields(HyperDASArchitecture))
TRAINING_FIELD_NAMES = tuple(f.name for f in fields(HyperDASTraining))
WEIGHT_FIELDS = (
    "target_model",
    "layer",
    "k",
    "n_hypernet_layers",
    "state_routing",
    "n_selection_heads",
    "null_init_weight",
    "skip_attention_sink",
    "selection_score",
    "train_embedding",
    "seed",
)
"""The settings two configs must share for one's weights (or training run) to continue in the
other's model: the architecture's shape-defining fields and the initialisation seed."""


@dataclass
class HyperDASConfig:
    """A HyperDAS model's architecture, its training run and its data, as the model records
    them (see the module docstring)."""

    architecture: HyperDASArchitecture = field(default_factory=HyperDASArchitecture)
    """What the weights mean."""
    training: HyperDASTraining = field(default_factory=HyperDASTraining)
    """What drives (drove) the training run."""
    data: dict[str, Any] = field(default_factory=dict)
    """Data settings recorded with the checkpoint (domain, attributes, split sizes, ...)."""

    @classmethod
    def build(cls, **values: Any) -> "HyperDASConfig":
        """A config from fields given by name (``HyperDASConfig.build(layer=6, n_steps=100)``):
        each name is an architecture or a training field, or ``data``."""
        return cls().with_fields(**values)

    def with_fields(self, **values: Any) -> "HyperDASConfig":
        """A copy with the named fields replaced (each routed to the part that holds it);
        unknown names raise ``ValueError``."""
        unknown = sorted(set(values) - {*ARCHITECTURE_FIELD_NAMES, *TRAINING_FIELD_NAMES, "data"})
        if unknown:
            raise ValueError(f"unknown HyperDASConfig fields: {', '.join(unknown)}")
        architecture = {k: v for k, v in values.items() if k in ARCHITECTURE_FIELD_NAMES}
        training = {k: v for k, v in values.items() if k in TRAINING_FIELD_NAMES}
        return replace(
            self,
            architecture=replace(self.architecture, **architecture),
            training=replace(self.training, **training),
            data=values.get("data", self.data),
        )

    def weight_fields(self) -> dict[str, Any]:
        """The :data:`WEIGHT_FIELDS` of this config, by name."""
        return {
            name: getattr(self.training if name == "seed" else self.architecture, name)
            for name in WEIGHT_FIELDS
        }

    def resolved_for(self, n_layers: int, d_model: int) -> "HyperDASConfig":
        """The architecture fixed for a target with ``n_layers`` blocks of width ``d_model``
        (:meth:`HyperDASArchitecture.resolved_for`) and the training's ``head_lr`` fixed."""
        return replace(
            self,
            architecture=self.architecture.resolved_for(n_layers, d_model),
            training=self.training.resolved(),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"architecture": ..., "training": ..., "data": ...}``."""
        return {
            "architecture": self.architecture.to_dict(),
            "training": self.training.to_dict(),
            "data": dict(self.data),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HyperDASConfig":
        """Inverse of :meth:`to_dict`. Also reads the flat layout written before the split
        (every field at the top level, as in version-2 checkpoints up to then); unknown keys
        raise."""
        if "architecture" in data or "training" in data:
            check_known_fields(cls, data, comma_separated=True)
            return cls(
                architecture=HyperDASArchitecture.from_dict(data.get("architecture", {})),
                training=HyperDASTraining.from_dict(data.get("training", {})),
                data=dict(data.get("data", {})),
            )
        return cls.build(**data)


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
