"""Section 2: one DAS training step (forward, backward, Adam) at the same layer, k, batch and
positions, four ways: ours (TransformerLens bridge + our hook, as
:func:`hyperdas_tl.baselines.das.train_das` runs it), ours starting at layer L, ours re-running
the source each step, and pyvene 0.1.8's ``LowRankRotatedSpaceIntervention`` on the plain HF
model (set up here). Peak memory of each comes from a fresh subprocess per variant
(:func:`hyperdas_tl.bench.memory.memory_probe_subprocess`)."""

from typing import Any

import torch
from torch import Tensor, nn

from hyperdas_tl.baselines.das import DASIntervention, label_loss
from hyperdas_tl.bench.inputs import make_batch, resolved
from hyperdas_tl.bench.memory import memory_probe_subprocess
from hyperdas_tl.bench.settings import BenchSettings
from hyperdas_tl.bench.timing import interleaved, ratio_rows
from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.hooks import capture_resid_pre
from hyperdas_tl.metrics import entity_source_vectors
from hyperdas_tl.partial_forward import run_from_layer

DAS_LR = 1e-3
DAS_VARIANTS = ("ours", "ours from layer L", "ours, source re-run each step", "pyvene")


class DASStep:
    """One DAS training step on a batch, in one of four ways (see :data:`DAS_VARIANTS`)."""

    def __init__(
        self,
        variant: str,
        model: nn.Module,
        batch: InterventionBatch,
        layer: int,
        k: int,
        *,
        hf_model: nn.Module | None = None,
        n_label: int = 3,
        seed: int = 0,
    ) -> None:
        if variant not in DAS_VARIANTS:
            raise ValueError(f"variant must be one of {DAS_VARIANTS}, got {variant!r}")
        self.variant, self.model, self.batch = variant, model, batch
        self.layer, self.n_label = layer, n_label
        self.width = batch.base_ids.shape[1]
        if variant == "pyvene":
            if hf_model is None:
                raise ValueError("the pyvene variant needs the plain HF model")
            self._setup_pyvene(hf_model, layer, k)
            return
        self.module = DASIntervention(int(model.cfg.d_model), layer, k, seed=seed)
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=DAS_LR)
        # As train_das does: the frozen source activations are captured once per batch.
        self.sources = entity_source_vectors(model, batch, layer)
        if variant == "ours from layer L":
            self.base_resid = capture_resid_pre(
                model, batch.base_ids, [layer], batch.base_attention_mask
            )[layer]

    def _setup_pyvene(self, hf_model: nn.Module, layer: int, k: int) -> None:
        import pyvene as pv

        config = pv.IntervenableConfig(
            model_type=type(hf_model),
            representations=[
                pv.RepresentationConfig(layer, "block_input", "pos", 1, low_rank_dimension=k)
            ],
            intervention_types=pv.LowRankRotatedSpaceIntervention,
        )
        self.intervenable = pv.IntervenableModel(config, hf_model)
        self.intervenable.disable_model_gradients()
        self.optimizer = torch.optim.Adam(self.intervenable.get_trainable_parameters(), lr=DAS_LR)
        b = self.batch
        self.locations = {
            "sources->base": (
                [[[p] for p in b.source_entity_last.tolist()]],
                [[[p] for p in b.base_entity_last.tolist()]],
            )
        }

    def logits(self) -> Tensor:
        b, model = self.batch, self.model
        if self.variant == "pyvene":
            _, counterfactual = self.intervenable(
                {"input_ids": b.base_ids, "attention_mask": b.base_attention_mask},
                [{"input_ids": b.source_ids, "attention_mask": b.source_attention_mask}],
                self.locations,
            )
            return counterfactual.logits
        sources = self.sources
        if self.variant == "ours, source re-run each step":
            sources = entity_source_vectors(model, b, self.layer)
        hooks = self.module.hooks(model, b, self.width, sources)
        if self.variant == "ours from layer L":
            with model.hooks(fwd_hooks=hooks):
                return run_from_layer(model, self.base_resid, self.layer, b.base_attention_mask)
        return model.run_with_hooks(
            b.base_ids, fwd_hooks=hooks, attention_mask=b.base_attention_mask
        )

    def __call__(self) -> float:
        loss = label_loss(self.logits(), self.batch.labels, self.n_label)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def bench_das_step(
    model: nn.Module,
    hf_model: nn.Module,
    settings: BenchSettings,
    *,
    memory: bool = True,
) -> dict[str, Any]:
    """DAS training step: ours (three ways) vs pyvene, time and (optionally) peak memory."""
    config = resolved(model, settings)
    layer, k = int(config.architecture.layer), int(config.architecture.k)
    batch = make_batch(model, settings)
    steps = {
        v: DASStep(v, model, batch, layer, k, hf_model=hf_model, n_label=settings.n_label)
        for v in DAS_VARIANTS
    }
    # Same basis everywhere (ours share the seed), so every variant computes the same loss.
    with torch.no_grad():
        basis = steps["ours"].module.basis.detach().clone()
        _pyvene_intervention(steps["pyvene"].intervenable).rotate_layer.weight = basis
        first_losses = {
            v: float(label_loss(s.logits(), batch.labels, settings.n_label))
            for v, s in steps.items()
        }
    timings = interleaved({v: steps[v] for v in DAS_VARIANTS}, settings.repeats)
    rows = ratio_rows(timings, "pyvene")
    for row in rows:  # speed-up over pyvene = its time / ours
        row["speedup_vs_pyvene_min"] = 1 / row["ratio_min"]
        row["speedup_vs_pyvene_median"] = 1 / row["ratio_median"]
    out: dict[str, Any] = {
        "layer": layer,
        "k": k,
        "shape": list(batch.base_ids.shape),
        "rows": rows,
        "first_step_loss": first_losses,
        "goal": "ours >= 2x faster than pyvene",
        "timings": {n: t.to_dict() for n, t in timings.items()},
    }
    if memory:
        out["memory"] = {
            v: memory_probe_subprocess(v, settings)
            for v in ("das_ours", "das_ours_from_layer", "das_pyvene")
        }
    return out


def _pyvene_intervention(intervenable: Any) -> Any:
    (intervention,) = intervenable.interventions.values()
    return intervention[0] if isinstance(intervention, tuple | list) else intervention
