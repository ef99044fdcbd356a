"""Configuration of a HyperDAS model and its training run.

One dataclass, :class:`HyperDASConfig`, saved verbatim (``to_dict``) beside every checkpoint.
Fields that depend on the target (``layer``, ``k``, the number of hypernetwork blocks) may be
left unset and are fixed by :meth:`HyperDASConfig.resolved_for` when the model is built, so a
checkpoint always records concrete values.

Default ``k`` (:func:`default_k`): the paper intervenes on a ``k = 128`` subspace of
Llama-3-8B's 4096-wide residual stream, i.e. 1/32 of it. We keep that *fraction* rather than
the absolute 128: the share of the residual stream that is exchanged is what trades Cause
(enough room for the attribute) against Isolate (little room for anything else). For
SmolLM2-135M (``d_model = 576``) this gives ``k = 18``, still far more dimensions than the
~log2(#values) ≈ 7-8 bits a RAVEL attribute such as a city's country needs, while 128 would
exchange 22% of the stream and hurt Isolate.
"""

import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, get_args

from hyperdas_tl.config_dict import check_known_fields

logger = logging.getLogger(__name__)

SelectionMode = Literal["soft", "one_to_many", "one_to_one"]
SELECTION_MODES: tuple[SelectionMode, ...] = get_args(SelectionMode)
StateRouting = Literal["grouped", "all"]
SelectionScore = Literal["dot", "cosine"]


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
class HyperDASConfig:
    """Architecture and training settings of HyperDAS (see the module docstring)."""

    target_model: str = "smollm2-135m"
    """Name of the target, as given to :func:`hyperdas_tl.models.load_model`."""
    layer: int | None = None
    """Intervention layer L (``blocks.L.hook_resid_pre``); None = ``n_layers // 2``."""
    k: int | None = None
    """Rank of the intervened subspace; None = :func:`default_k` of the target's d_model."""
    n_hypernet_layers: int = 8
    """N: the hypernetwork is the target's first N blocks (clipped to the target's depth)."""
    state_routing: StateRouting = "grouped"
    """Which target states each hypernetwork block cross-attends to: ``"grouped"`` splits the
    n_layers + 1 states (every resid_pre + final output) into N contiguous groups, block i
    reading group i; ``"all"`` lets every block read every state (N times the key cost)."""
    n_selection_heads: int = 8
    """Heads of the position-selection scorer (must divide d_model)."""
    train_embedding: bool = False
    """Train the hypernetwork's token embedding (a d_vocab x d_model copy); False reads the
    target's embedding, frozen, and keeps it out of checkpoints."""
    selection_score: SelectionScore = "dot"
    """How the selection scores (source i, base j) pairs: ``"dot"`` (scaled dot product) or
    ``"cosine"`` (per-head cosine times a learned temperature); see
    :mod:`hyperdas_tl.hyperdas.selection`."""
    selection_temperature: float = 10.0
    """Initial temperature of ``"cosine"`` selection scores."""
    skip_attention_sink: bool = True
    """Never read or write position 0 (base and source). The first token is the attention sink:
    on SmolLM2 its residual norm is ~7x the other tokens' at layer 6 and ~170x at layer 12 (with
    a BOS token, as in Llama-3, it is the BOS). A soft selection that gives it even a few percent
    blends a huge vector into every base token; no RAVEL entity sits there."""
    null_init_weight: float | None = None
    """Initial soft weight of the null ("keep base") row at every intervenable base position, set
    through a learned bias on the null score (None: no bias, i.e. null starts as one more option
    among the source tokens). Starting near "keep base" (e.g. 0.5) keeps the first steps close to
    the unintervened model instead of blending every source token into every base token."""
    one_to_one_floor: float = 0.1
    """Minimum soft weight a source token's bid needs in the one-to-one read-out."""

    cause_weight: float = 3.5
    """Loss weight of cause examples."""
    isolate_weight: float = 0.5
    """Loss weight of isolate examples."""
    sparsity_max: float = 1.5
    """Final weight of the sparsity loss (penalises a source token spread over > 1 base)."""
    sparsity_start: float = 0.5
    """Fraction of training before the sparsity weight starts its linear ramp 0 -> max."""

    n_steps: int = 1000
    """Optimiser steps."""
    lr: float = 1e-4
    """AdamW learning rate of the hypernetwork blocks (and of the heads when ``head_lr`` is
    None)."""
    r0_lr: float = 1e-3
    """Learning rate of the base subspace R0 (its own parameter group)."""
    head_lr: float | None = None
    """Learning rate of the randomly initialised heads (position selection and the Householder
    MLP); None = ``lr``. The hypernetwork blocks start from pretrained weights and usually want
    a smaller rate than these."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to R0, norms or biases)."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up steps."""
    grad_clip: float | None = 1.0
    """Max global gradient norm; None disables clipping."""
    seed: int = 0
    """Seed of parameter initialisation and batch order."""
    eval_every: int = 50
    """Steps between Cause/Isolate evaluations on the validation slice."""
    val_batches: int = 4
    """Batches of the validation set used for the progress-bar accuracy."""
    checkpoint_every: int | None = None
    """Steps between checkpoints (None: only at the end); needs a checkpoint directory."""
    cache_target_states: bool = True
    """Keep each training batch's frozen target states (every resid_pre + final output of base
    and source, in the target's dtype: bf16 for a bf16 target) in memory after its first visit,
    so later epochs skip both frozen passes. Costs ``2 x (n_layers + 1) x pos x d_model``
    values per example (about 2 MB per SmolLM2 example of 30 tokens in bf16); results are
    identical with and without it. Ignored by runs of at most one epoch, where no batch is seen
    twice; capped by ``state_cache_max_gb``."""
    state_cache_max_gb: float = 4.0
    """Memory cap of the state cache: batches past it are recomputed on every visit."""

    target_dtype: str | None = None
    """Dtype of the frozen target the weights were trained against (``"float32"`` /
    ``"bfloat16"``), recorded when the model is built; re-evaluation loads the target in it."""
    data: dict[str, Any] = field(default_factory=dict)
    """Data settings recorded with the checkpoint (domain, attributes, split sizes, ...)."""

    def __post_init__(self) -> None:
        if not self.state_cache_max_gb >= 0:
            raise ValueError(f"state_cache_max_gb must be >= 0, got {self.state_cache_max_gb}")
        if self.layer is not None and (isinstance(self.layer, bool) or self.layer < 0):
            raise ValueError(f"layer must be a non-negative int or None, got {self.layer!r}")
        if self.k is not None and (isinstance(self.k, bool) or self.k < 1):
            raise ValueError(f"k must be a positive int or None, got {self.k!r}")
        _positive_int("n_hypernet_layers", self.n_hypernet_layers)
        _positive_int("n_selection_heads", self.n_selection_heads)
        _positive_int("n_steps", self.n_steps)
        _positive_int("eval_every", self.eval_every)
        _positive_int("val_batches", self.val_batches)
        if self.checkpoint_every is not None:
            _positive_int("checkpoint_every", self.checkpoint_every)
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.state_routing not in ("grouped", "all"):
            raise ValueError(
                f"state_routing must be 'grouped' or 'all', got {self.state_routing!r}"
            )
        for name in ("cause_weight", "isolate_weight", "sparsity_max", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr", "r0_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.selection_score not in ("dot", "cosine"):
            raise ValueError(
                f"selection_score must be 'dot' or 'cosine', got {self.selection_score!r}"
            )
        if not self.selection_temperature > 0:
            raise ValueError(f"selection_temperature must be > 0, got {self.selection_temperature}")
        if self.head_lr is not None and not self.head_lr > 0:
            raise ValueError(f"head_lr must be > 0 or None, got {self.head_lr}")
        if self.null_init_weight is not None and not 0.0 < self.null_init_weight < 1.0:
            raise ValueError(
                f"null_init_weight must be in (0, 1) or None, got {self.null_init_weight}"
            )
        if not 0.0 <= self.sparsity_start <= 1.0:
            raise ValueError(f"sparsity_start must be in [0, 1], got {self.sparsity_start}")
        if not 0.0 <= self.one_to_one_floor < 1.0:
            raise ValueError(f"one_to_one_floor must be in [0, 1), got {self.one_to_one_floor}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")

    def resolved_for(self, n_layers: int, d_model: int) -> "HyperDASConfig":
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
    def from_dict(cls, data: dict[str, Any]) -> "HyperDASConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise."""
        check_known_fields(cls, data, comma_separated=True)
        return cls(**data)


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
