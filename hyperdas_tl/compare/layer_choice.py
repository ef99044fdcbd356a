"""The intervention layer, chosen on validation by a short per-attribute DAS at each candidate
(:func:`choose_layer`); test splits are never read."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hyperdas_tl.baselines.das import DASConfig, train_attribute_subspaces
from hyperdas_tl.compare.data_checks import split_batches, target_attributes
from hyperdas_tl.compare.scores import METRICS
from hyperdas_tl.compare.settings import CompareSettings
from hyperdas_tl.experiment import ExperimentData
from hyperdas_tl.hooks import resid_pre_name
from hyperdas_tl.metrics import EvalConfig, evaluate, mean_present
from hyperdas_tl.models import module_device
from hyperdas_tl.target import TargetModel

logger = logging.getLogger(__name__)


@dataclass
class LayerScore:
    """Validation scores of the per-attribute DAS at one candidate layer."""

    layer: int
    cause: float | None
    isolate: float | None
    disentangle: float | None


@dataclass
class LayerChoice:
    """The layer chosen on validation and what every candidate scored."""

    layer: int
    split: str
    scores: list[LayerScore]
    settings: dict[str, Any] = field(default_factory=dict)
    """How each candidate was scored (objective, epochs, lr, k, seed)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "split": self.split,
            "scores": [asdict(s) for s in self.scores],
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LayerChoice":
        return cls(
            layer=int(data["layer"]),
            split=data["split"],
            scores=[LayerScore(**s) for s in data["scores"]],
            settings=dict(data.get("settings", {})),
        )


def choose_layer(
    model: TargetModel,
    data: ExperimentData,
    layers: Sequence[int],
    k: int,
    *,
    settings: CompareSettings | None = None,
    seed: int = 0,
    map_layers: Callable[[list[int], Callable[[int], LayerScore]], list[LayerScore]] | None = None,
) -> LayerChoice:
    """The candidate layer whose per-attribute DAS (``settings.layer_objective``, a short run:
    ``layer_epochs`` at ``layer_lr``) scores the best teacher-forced Disentangle on
    ``settings.val_split`` (macro over attributes; the shallowest layer on ties). Test splits
    are never read. ``map_layers(layers, score)``: how the candidates are scored (default one
    after another; :func:`~hyperdas_tl.compare.compare_methods` shares them out between the
    processes of one folder)."""
    settings = settings or CompareSettings()
    layers = list(layers)
    if not layers:
        raise ValueError("layers must name at least one candidate layer")
    for layer in layers:
        resid_pre_name(model, layer)
    device = module_device(model)
    train = [b.to(device) for b in data.batches["train"]]
    val = [b.to(device) for b in split_batches(data, settings.val_split)]
    attributes = target_attributes(data)
    lr = settings.layer_lr if settings.layer_lr is not None else max(settings.das_lrs)
    scoring = EvalConfig(
        modes=("teacher_forced",),
        max_label_tokens=settings.max_label_tokens,
        show_progress=settings.show_progress,
    )

    def score(layer: int) -> LayerScore:
        config = DASConfig(
            layer=layer,
            k=k,
            objective=settings.layer_objective,
            epochs=settings.layer_epochs,
            lr=lr,
            max_label_tokens=settings.max_label_tokens,
            seed=seed,
            show_progress=settings.show_progress,
            batch_size=data.config.batch_size,
        )
        subspaces = train_attribute_subspaces(model, train, val, config, attributes, [lr])
        result = evaluate(
            model, val, subspaces.intervention(model), method=f"DAS L{layer}", config=scoring
        )
        domains = [d for d in result.domains if d.mode == "teacher_forced"]
        values = {m: mean_present(getattr(d, m) for d in domains) for m in METRICS}
        logger.info("layer %d: val Disentangle %s", layer, values["disentangle"])
        return LayerScore(layer=layer, **values)

    scores = map_layers(layers, score) if map_layers else [score(layer) for layer in layers]
    best = max(
        scores,
        key=lambda s: (-1.0 if s.disentangle is None else s.disentangle, -s.layer),
    )
    return LayerChoice(
        layer=best.layer,
        split=settings.val_split,
        scores=scores,
        settings={
            "objective": settings.layer_objective,
            "epochs": settings.layer_epochs,
            "lr": lr,
            "k": k,
            "seed": seed,
            "attributes": list(attributes),
        },
    )
