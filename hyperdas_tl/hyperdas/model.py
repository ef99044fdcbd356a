"""HyperDAS on a frozen TransformerLens target.

One forward (:meth:`HyperDAS.forward`):

1. The frozen target runs once on the base and once on the source, under ``no_grad``, through
   :func:`hyperdas_tl.partial_forward.resid_stream_states` (every ``hook_resid_pre`` + the final
   normalised output; no unembedding).
2. The hypernetwork reads the concept tokens and those states and returns the encoding ``e``.
3. The selection module turns ``e`` and the layer-L states into soft weights ``A``, read out as
   soft / one-to-many / one-to-one (with ``architecture.positions="entity"``, the ablation, the
   selection is fixed instead: source entity token -> base entity token, as DAS intervenes);
   the subspace module turns ``e`` into ``R(e)``.
4. The intervened pass starts at layer L from the base's ``hook_resid_pre`` (blocks before L never
   run again, so nothing before L is kept for backward) with the soft interchange hook of
   :mod:`hyperdas_tl.hooks` on ``blocks.L.hook_resid_pre``, scoped by ``model.hooks``.
5. The loss (:func:`hyperdas_tl.hyperdas.loss.hyperdas_loss`) of the intervened logits.

Each step is a public method, so callers that time, measure or vary one step (the benchmark, the
faithfulness controls) run these very calls instead of a copy of the forward:
:meth:`HyperDAS.target_states` (1) -> :meth:`HyperDAS.intervention_weights` (2-3) ->
:meth:`HyperDAS.intervene` (4) -> :meth:`HyperDAS.loss` (5). :meth:`HyperDAS.forward` is that
chain with the batch and the weights validated.
"""

from dataclasses import dataclass, replace
from typing import Literal

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from hyperdas_tl.data.batching import IGNORE_INDEX, InterventionBatch, label_positions
from hyperdas_tl.hooks import soft_interchange_hook_for
from hyperdas_tl.hyperdas.config import HyperDASConfig, SelectionMode, check_selection_mode
from hyperdas_tl.hyperdas.hypernetwork import Hypernetwork
from hyperdas_tl.hyperdas.loss import HyperDASLoss, hyperdas_loss
from hyperdas_tl.hyperdas.selection import PositionSelection, read_out
from hyperdas_tl.hyperdas.subspace import HouseholderSubspace
from hyperdas_tl.interchange import positions_to_selection
from hyperdas_tl.models import module_device
from hyperdas_tl.partial_forward import ResidStreamStates, resid_stream_states, run_from_layer
from hyperdas_tl.precision import autocast_like, model_dtype, precision_name
from hyperdas_tl.target import TargetModel


@dataclass
class TargetStates:
    """The frozen target's residual streams for one batch (computed without grad)."""

    base: ResidStreamStates
    source: ResidStreamStates

    def with_zeroed_source(self) -> "TargetStates":
        """These states with the source's (every ``hook_resid_pre`` and the final output)
        zeroed: the faithfulness control in which no label can come from the source."""
        source = replace(
            self.source,
            resid_pre=torch.zeros_like(self.source.resid_pre),
            final=torch.zeros_like(self.source.final),
        )
        return replace(self, source=source)


@dataclass
class InterventionWeights:
    """What the hypernetwork, selection and subspace produce for one batch."""

    encoding: Float[Tensor, "batch d_model"]
    """The hypernetwork's encoding ``e``."""
    soft_selection: Float[Tensor, "batch src_pos_plus_null base_pos"]
    """The soft weights ``A`` (columns sum to 1; null row last)."""
    selection: Float[Tensor, "batch src_pos_plus_null base_pos"]
    """The read-out of ``soft_selection`` the intervention uses."""
    basis: Float[Tensor, "*batch d_model k"]
    """``R(e)``, orthonormal columns (a control may swap in one ``[d_model, k]`` basis shared by
    every example: :meth:`HyperDAS.intervene` takes either)."""

    def check_finite(self) -> None:
        """Raise ``FloatingPointError`` when the encoding, the soft selection or the basis holds
        NaN / inf."""
        for name, value in (
            ("encoding e", self.encoding),
            ("selection", self.soft_selection),
            ("basis R(e)", self.basis),
        ):
            if not bool(torch.isfinite(value).all()):
                raise FloatingPointError(
                    f"the {name} is not finite (NaN/inf in HyperDAS weights or inputs)"
                )


@dataclass
class HyperDASOutput:
    """Result of :meth:`HyperDAS.forward`."""

    logits: Float[Tensor, "batch logit_pos d_vocab"]
    """Logits of the intervened base run: at every base position, or at :attr:`positions`."""
    selection: Float[Tensor, "batch src_pos_plus_null base_pos"]
    """The selection the intervention used (the read-out of ``soft_selection``)."""
    soft_selection: Float[Tensor, "batch src_pos_plus_null base_pos"]
    """The soft weights ``A`` (columns sum to 1; null row last)."""
    basis: Float[Tensor, "batch d_model k"]
    """``R(e)``, orthonormal columns."""
    encoding: Float[Tensor, "batch d_model"]
    """The hypernetwork's encoding ``e``."""
    loss: HyperDASLoss | None
    """Loss parts (None when the batch has no label tokens)."""
    positions: Int[Tensor, "batch logit_pos"] | None = None
    """The base positions :attr:`logits` holds (``logits[b, i]`` at ``positions[b, i]``); None:
    every position."""


def config_for_target(config: HyperDASConfig, target: TargetModel) -> HyperDASConfig:
    """``config`` as a HyperDAS built on ``target`` records it: layer and rank resolved for the
    target's size, ``head_lr`` fixed, and the target's dtype filled in when the architecture does
    not name one."""
    config = config.resolved_for(int(target.cfg.n_layers), int(target.cfg.d_model))
    if config.architecture.target_dtype is None:
        dtype = precision_name(model_dtype(target))
        config = replace(config, architecture=replace(config.architecture, target_dtype=dtype))
    return config


class HyperDAS(nn.Module):
    """Hypernetwork + position selection + Householder subspace over a frozen target.

    The target is referenced, not owned: it is not a submodule, so ``parameters()`` and
    ``state_dict()`` hold only what HyperDAS trains.
    """

    def __init__(self, target: TargetModel, config: HyperDASConfig | None = None) -> None:
        super().__init__()
        d_model = int(target.cfg.d_model)
        config = config_for_target(config or HyperDASConfig(), target)
        self.config = config
        object.__setattr__(self, "_target", target)  # a reference, not a submodule
        device = module_device(target)
        arch = config.architecture
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.training.seed)
            self.hypernetwork = Hypernetwork.from_target(
                target,
                arch.n_hypernet_layers,
                routing=arch.state_routing,
                train_embedding=arch.train_embedding,
            )
            self.selection = PositionSelection(
                d_model,
                arch.n_selection_heads,
                arch.null_init_weight,
                arch.selection_score,
                arch.selection_temperature,
            )
            self.subspace = HouseholderSubspace(d_model, self.k)
        # float32 master weights whatever the target's dtype (a bf16 target runs under autocast)
        self.to(device=device, dtype=torch.float32)

    @property
    def target(self) -> TargetModel:
        """The frozen target model."""
        return self._target

    @property
    def layer(self) -> int:
        """The intervention layer L (resolved when the model was built)."""
        return int(self.config.architecture.layer)  # type: ignore[arg-type]

    @property
    def k(self) -> int:
        """The rank of the intervened subspace (resolved when the model was built)."""
        return int(self.config.architecture.k)  # type: ignore[arg-type]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def position_masks(
        self, batch: InterventionBatch
    ) -> tuple[Bool[Tensor, "batch base_pos"], Bool[Tensor, "batch src_pos"]]:
        """The base / source positions HyperDAS may write / read: the batch's intervenable
        positions, without position 0 when ``config.skip_attention_sink``."""
        masks = []
        for name in ("base_intervenable", "source_intervenable"):
            mask = getattr(batch, name).bool()
            if self.config.architecture.skip_attention_sink:
                mask = mask.clone()
                mask[:, 0] = False
                if not bool(mask.any(dim=1).all()):
                    raise ValueError(
                        f"an example's only {name} position is position 0, the attention sink "
                        "HyperDAS skips; use longer prompts or skip_attention_sink=False"
                    )
            masks.append(mask)
        return masks[0], masks[1]

    def intervention_weights(
        self,
        batch: InterventionBatch,
        states: TargetStates,
        selection_mode: SelectionMode = "soft",
    ) -> InterventionWeights:
        """Steps 2-3: the encoding, the soft selection and its read-out, and ``R(e)`` (no
        checks; :meth:`forward` validates the batch and the results)."""
        with autocast_like(self.target):  # a no-op beside a float32 target
            base_mask, source_mask = self.position_masks(batch)
            encoding = self.hypernetwork(
                batch.concept_ids,
                batch.concept_attention_mask,
                states.base.all_states(),
                base_mask,
                states.source.all_states(),
                source_mask,
            )
            layer = self.layer
            if self.config.architecture.positions == "entity":  # the ablation: DAS's positions
                soft = selection = positions_to_selection(
                    batch.source_entity_last.to(encoding.device)[:, None],
                    batch.base_entity_last.to(encoding.device)[:, None],
                    src_pos=source_mask.shape[1],
                    base_pos=base_mask.shape[1],
                )
            else:
                soft = self.selection(
                    encoding, states.base.at(layer), states.source.at(layer), base_mask, source_mask
                )
                selection = read_out(
                    soft,
                    selection_mode,
                    base_mask,
                    source_mask,
                    self.config.architecture.one_to_one_floor,
                )
            # R(e) in float32 even under autocast: its columns must stay orthonormal to 1e-3
            with torch.autocast(device_type=encoding.device.type, enabled=False):
                basis = self.subspace(encoding.float())
        return InterventionWeights(encoding, soft, selection, basis)

    @torch.no_grad()
    def target_states(self, batch: InterventionBatch) -> TargetStates:
        """Step 1: the frozen target's states for base and source (one no-grad pass each, in the
        target's dtype: bf16 states for a bf16 target)."""
        with autocast_like(self.target):
            return TargetStates(
                base=resid_stream_states(self.target, batch.base_ids, batch.base_attention_mask),
                source=resid_stream_states(
                    self.target, batch.source_ids, batch.source_attention_mask
                ),
            )

    def intervene(
        self,
        batch: InterventionBatch,
        states: TargetStates,
        weights: InterventionWeights,
        *,
        positions: Int[Tensor, "batch n"] | None = None,
    ) -> Float[Tensor, "batch n d_vocab"]:
        """Step 4: the intervened base run from layer L, patching ``weights.basis`` of the
        source's layer-L states into the base by ``weights.selection`` (no checks;
        :meth:`forward` validates the batch and the weights). ``positions``: unembed only
        those base positions (:func:`~hyperdas_tl.partial_forward.run_from_layer`)."""
        layer = self.layer
        with autocast_like(self.target):
            hook = soft_interchange_hook_for(
                self.target, layer, states.source.at(layer), weights.selection, weights.basis
            )
            with self.target.hooks(fwd_hooks=[hook]):
                return run_from_layer(
                    self.target,
                    states.base.at(layer),
                    layer,
                    batch.base_attention_mask,
                    positions=positions,
                )

    def loss(
        self,
        batch: InterventionBatch,
        logits: Float[Tensor, "batch n d_vocab"],
        weights: InterventionWeights,
        *,
        sparsity_weight: float = 0.0,
        positions: Int[Tensor, "batch n"] | None = None,
    ) -> HyperDASLoss:
        """The training loss of :meth:`intervene`'s logits (cause / isolate weights from the
        config; the sparsity penalty is on ``weights.soft_selection``); ``positions``: the
        ones :meth:`intervene` was given (every label position: the same loss)."""
        with autocast_like(self.target):
            return hyperdas_loss(
                logits,
                batch.labels,
                batch.is_cause,
                weights.soft_selection,
                cause_weight=self.config.training.cause_weight,
                isolate_weight=self.config.training.isolate_weight,
                sparsity_weight=sparsity_weight,
                positions=positions,
            )

    def forward(
        self,
        batch: InterventionBatch,
        selection_mode: SelectionMode = "soft",
        *,
        sparsity_weight: float = 0.0,
        states: TargetStates | None = None,
        logits_at: Literal["all", "labels"] = "all",
    ) -> HyperDASOutput:
        """Intervene on ``batch`` and, when it has labels, compute the loss:
        :meth:`target_states` -> :meth:`intervention_weights` -> :meth:`intervene` ->
        :meth:`loss`, with the batch and the weights validated.

        Args:
            batch: base/source/concept tensors (see :mod:`hyperdas_tl.data.batching`).
            selection_mode: ``"soft"`` (training), ``"one_to_many"`` or ``"one_to_one"``.
            sparsity_weight: weight of the sparsity penalty in ``loss.total``.
            states: precomputed :meth:`target_states` (computed here when None).
            logits_at: ``"all"``: logits at every base position; ``"labels"``: only at the
                label positions (:func:`~hyperdas_tl.data.batching.label_positions`, recorded
                in ``output.positions``), which skips the unembedding of the others; the loss
                and the logits there are the same.
        """
        check_selection_mode(selection_mode)
        if logits_at not in ("all", "labels"):
            raise ValueError(f"logits_at must be 'all' or 'labels', got {logits_at!r}")
        check_batch(batch, self.target)
        states = states if states is not None else self.target_states(batch)
        weights = self.intervention_weights(batch, states, selection_mode)
        weights.check_finite()
        positions = label_positions(batch.labels).positions if logits_at == "labels" else None
        logits = self.intervene(batch, states, weights, positions=positions)
        loss = None
        if bool((batch.labels != IGNORE_INDEX).any()):
            loss = self.loss(
                batch, logits, weights, sparsity_weight=sparsity_weight, positions=positions
            )
        return HyperDASOutput(
            logits=logits,
            selection=weights.selection,
            soft_selection=weights.soft_selection,
            basis=weights.basis,
            encoding=weights.encoding,
            loss=loss,
            positions=positions,
        )


def check_batch(batch: InterventionBatch, target: TargetModel) -> None:
    """Raise ``ValueError`` when ``batch`` cannot be intervened on."""
    n = batch.base_ids.shape[0]
    pairs = {
        "base_attention_mask": (batch.base_attention_mask, batch.base_ids),
        "base_intervenable": (batch.base_intervenable, batch.base_ids),
        "labels": (batch.labels, batch.base_ids),
        "source_attention_mask": (batch.source_attention_mask, batch.source_ids),
        "source_intervenable": (batch.source_intervenable, batch.source_ids),
        "concept_attention_mask": (batch.concept_attention_mask, batch.concept_ids),
    }
    for name, (tensor, like) in pairs.items():
        if tensor.shape != like.shape:
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)} but its ids have {tuple(like.shape)}"
            )
    for name, tensor in (("source_ids", batch.source_ids), ("concept_ids", batch.concept_ids)):
        if tensor.ndim != 2 or tensor.shape[0] != n:
            raise ValueError(f"{name} must be [batch={n}, pos], got {tuple(tensor.shape)}")
    if tuple(batch.is_cause.shape) != (n,):
        raise ValueError(f"is_cause must be [batch={n}], got {tuple(batch.is_cause.shape)}")
    for name in ("base_intervenable", "source_intervenable"):
        mask = getattr(batch, name).bool()
        if not bool(mask.any(dim=1).all()):
            raise ValueError(f"every example needs at least one intervenable position ({name})")
    if bool((batch.base_intervenable.bool() & ~batch.base_attention_mask.bool()).any()):
        raise ValueError("base_intervenable marks padding positions")
    if bool((batch.source_intervenable.bool() & ~batch.source_attention_mask.bool()).any()):
        raise ValueError("source_intervenable marks padding positions")
    if not bool(batch.concept_attention_mask.bool()[:, 0].all()):
        raise ValueError("every example needs concept tokens (right-padded)")
    d_vocab = int(target.cfg.d_vocab)
    for name in ("base_ids", "source_ids", "concept_ids"):
        ids = getattr(batch, name)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= d_vocab):
            raise ValueError(f"{name} holds token ids outside [0, {d_vocab})")
