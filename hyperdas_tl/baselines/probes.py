"""Linear probes on the entity's residual, and their weight span as an interchange subspace.

Per layer, a multinomial logistic-regression probe reads ``blocks.{L}.hook_resid_pre`` at the
last token of the entity mention and predicts the value of one attribute. Probes are fitted on
one data split and tested on another (accuracy vs layer). A probe that decodes well need not
point at what the model *uses*: :meth:`LinearProbe.subspace` turns the span of the probe's
weight rows into an orthonormal basis, which :func:`hyperdas_tl.metrics.evaluate` scores with
Cause / Isolate exactly like a DAS subspace.

Samples come from interchange examples: every example states the queried attribute's value for
its base entity (``base_label``) and its source entity (``counterfactual_label``), so each
side's prompt, entity position and value become one probe sample (deduplicated).

Features are centred and divided by one scalar (their mean norm) before fitting; neither changes
the direction of a weight row, so the probe's span lives in the raw residual basis.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.hooks import capture_resid_pre, n_layers_of
from hyperdas_tl.metrics import prompt_lengths
from hyperdas_tl.models import module_device
from hyperdas_tl.target import TargetModel

logger = logging.getLogger(__name__)


@dataclass
class ProbeConfig:
    """How probes are fitted."""

    layers: tuple[int, ...] | None = None
    """Layers to probe (None: every layer)."""
    l2: float = 1e-3
    """L2 penalty on the weights (features are scaled to unit mean norm)."""
    max_iter: int = 200
    """L-BFGS iterations (full batch)."""
    feature_batch_size: int = 32
    """Prompts per forward when capturing features."""
    train_split: str = "train"
    """Split the probe is fitted on."""
    test_split: str = "test_entity"
    """Split the probe is scored on."""
    show_progress: bool = True
    """Show tqdm bars."""

    def __post_init__(self) -> None:
        if self.layers is not None:
            self.layers = tuple(self.layers)
            if not self.layers:
                raise ValueError("layers must name at least one layer (or be None for all)")
        if self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        if self.feature_batch_size < 1:
            raise ValueError(f"feature_batch_size must be >= 1, got {self.feature_batch_size}")
        if self.train_split == self.test_split:
            raise ValueError(f"train and test split are both {self.train_split!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layers"] = None if self.layers is None else list(self.layers)
        return data


@dataclass
class ProbeSamples:
    """Prompts with an entity position and the attribute value to predict."""

    attribute: str
    prompts: list[tuple[int, ...]]
    """Token ids of each prompt (no padding)."""
    entity_last: list[int]
    """Position of the entity's last token in each prompt."""
    values: list[str]
    """The attribute value of each prompt's entity (the model's own answer)."""
    splits: list[str]

    def __len__(self) -> int:
        return len(self.prompts)


def probe_samples(batches: Sequence[InterventionBatch], attribute: str) -> ProbeSamples:
    """Probe samples for ``attribute`` from interchange batches (see the module docstring)."""
    seen: dict[tuple[tuple[int, ...], int], int] = {}
    samples = ProbeSamples(attribute, [], [], [], [])
    for batch in batches:
        if len(batch.examples) != len(batch):
            raise ValueError("probe samples need batch.examples (values and splits live there)")
        lengths = prompt_lengths(batch).tolist()
        source_lengths = batch.source_attention_mask.sum(dim=1).tolist()
        for row, example in enumerate(batch.examples):
            if example.queried_attribute != attribute:
                continue
            sides = (
                (
                    batch.base_ids[row, : lengths[row]],
                    batch.base_entity_last[row],
                    example.base_label,
                ),
                (
                    batch.source_ids[row, : source_lengths[row]],
                    batch.source_entity_last[row],
                    example.counterfactual_label,
                ),
            )
            for ids, entity_last, value in sides:
                key = (tuple(ids.tolist()), int(entity_last))
                if key in seen or not value.strip():
                    continue
                seen[key] = len(samples)
                samples.prompts.append(key[0])
                samples.entity_last.append(key[1])
                samples.values.append(value.strip())
                samples.splits.append(example.split)
    if not samples.prompts:
        raise ValueError(f"no example queries attribute {attribute!r}")
    return samples


@torch.no_grad()
def entity_features(
    model: TargetModel,
    samples: ProbeSamples,
    layers: Sequence[int],
    *,
    batch_size: int = 32,
    show_progress: bool = True,
) -> dict[int, Float[Tensor, "n d_model"]]:
    """``{layer: resid_pre at each sample's entity_last}`` (float32, on CPU)."""
    device = module_device(model)
    pad = getattr(model.tokenizer, "pad_token_id", None) or 0
    chunks: dict[int, list[Tensor]] = {layer: [] for layer in layers}
    starts = range(0, len(samples), batch_size)
    for start in tqdm(starts, desc="probe features", disable=not show_progress):
        prompts = samples.prompts[start : start + batch_size]
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, prompt in enumerate(prompts):
            ids[i, : len(prompt)] = torch.tensor(prompt)
            mask[i, : len(prompt)] = 1
        resid = capture_resid_pre(model, ids.to(device), list(layers), mask.to(device))
        rows = torch.arange(len(prompts), device=device)
        positions = torch.tensor(samples.entity_last[start : start + batch_size], device=device)
        for layer in layers:
            chunks[layer].append(resid[layer][rows, positions].float().cpu())
    return {layer: torch.cat(chunks[layer]) for layer in layers}


@dataclass
class LinearProbe:
    """A fitted multinomial logistic-regression probe on the raw residual.

    ``logits = ((x - mean) / scale) @ weight.T + bias``."""

    layer: int
    attribute: str
    classes: tuple[str, ...]
    weight: Float[Tensor, "n_classes d_model"]
    bias: Float[Tensor, " n_classes"]
    mean: Float[Tensor, " d_model"]
    scale: float

    def logits(self, features: Float[Tensor, "n d_model"]) -> Float[Tensor, "n n_classes"]:
        return ((features.float() - self.mean) / self.scale) @ self.weight.T + self.bias

    def predict(self, features: Float[Tensor, "n d_model"]) -> Int[Tensor, " n"]:
        return self.logits(features).argmax(dim=-1)

    def subspace(self, k: int | None = None) -> Float[Tensor, "d_model k"]:
        """Orthonormal basis of the span of the weight rows (their top-``k`` right singular
        vectors; rows are centred first, since adding one vector to every row leaves the
        softmax unchanged). ``k`` defaults to the rank, at most ``n_classes - 1``."""
        rows = self.weight - self.weight.mean(dim=0, keepdim=True)
        _, singular, vh = torch.linalg.svd(rows.double(), full_matrices=False)
        rank = int((singular > singular.max() * 1e-6).sum()) if singular.numel() else 0
        k = rank if k is None else k
        if not 1 <= k <= rank:
            raise ValueError(f"k must be in [1, rank={rank}] for this probe, got {k}")
        return vh[:k].T.float().contiguous()


def fit_probe(
    features: Float[Tensor, "n d_model"],
    targets: Int[Tensor, " n"],
    n_classes: int,
    *,
    l2: float = 1e-3,
    max_iter: int = 200,
) -> tuple[Float[Tensor, "n_classes d_model"], Float[Tensor, " n_classes"], Tensor, float]:
    """Fit ``(weight, bias, mean, scale)`` by full-batch L-BFGS (deterministic)."""
    if features.shape[0] != targets.shape[0] or features.shape[0] == 0:
        raise ValueError(
            f"need as many targets as feature rows (> 0), got {features.shape[0]} and "
            f"{targets.shape[0]}"
        )
    if n_classes < 2:
        raise ValueError(f"a probe needs at least 2 classes, got {n_classes}")
    features = features.float()
    mean = features.mean(dim=0)
    scale = float((features - mean).norm(dim=1).mean().clamp_min(1e-8))
    x = (features - mean) / scale
    weight = torch.zeros(n_classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimiser = torch.optim.LBFGS(
        [weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-7
    )

    def closure() -> Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight.T + bias, targets)
        loss = loss + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    return weight.detach(), bias.detach(), mean, scale


@dataclass
class ProbeLayerScore:
    """Accuracy of one layer's probe."""

    layer: int
    train_accuracy: float
    test_accuracy: float
    n_train: int
    n_test: int
    n_classes: int


@dataclass
class ProbeSweep:
    """Probes of one attribute at several layers: accuracy vs layer, and the probes."""

    attribute: str
    scores: list[ProbeLayerScore]
    probes: dict[int, LinearProbe] = field(repr=False)
    config: ProbeConfig
    seconds: float = 0.0

    @property
    def best_layer(self) -> int:
        """The layer with the highest test accuracy (the shallowest on ties)."""
        return max(self.scores, key=lambda s: (s.test_accuracy, -s.layer)).layer

    def to_dict(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "scores": [asdict(s) for s in self.scores],
            "best_layer": self.best_layer,
            "config": self.config.to_dict(),
            "seconds": self.seconds,
        }


def train_probes(
    model: TargetModel,
    batches: Sequence[InterventionBatch],
    attribute: str,
    config: ProbeConfig | None = None,
) -> ProbeSweep:
    """Fit one probe per layer for ``attribute`` on ``config.train_split`` samples and score it
    on ``config.test_split`` (a test value never seen in training counts as wrong)."""
    config = config or ProbeConfig()
    start = time.perf_counter()
    layers = config.layers if config.layers is not None else tuple(range(n_layers_of(model)))
    samples = probe_samples(batches, attribute)
    train = [i for i, s in enumerate(samples.splits) if s == config.train_split]
    test = [i for i, s in enumerate(samples.splits) if s == config.test_split]
    if not train or not test:
        raise ValueError(
            f"attribute {attribute!r}: {len(train)} {config.train_split!r} and {len(test)} "
            f"{config.test_split!r} samples; both splits are needed"
        )
    classes = tuple(sorted({samples.values[i] for i in train}))
    if len(classes) < 2:
        raise ValueError(f"attribute {attribute!r} has one value in training: {classes}")
    index = {value: c for c, value in enumerate(classes)}
    train_y = torch.tensor([index[samples.values[i]] for i in train])
    test_y = torch.tensor([index.get(samples.values[i], -1) for i in test])
    features = entity_features(
        model,
        samples,
        layers,
        batch_size=config.feature_batch_size,
        show_progress=config.show_progress,
    )
    scores, probes = [], {}
    for layer in tqdm(layers, desc=f"probes {attribute}", disable=not config.show_progress):
        weight, bias, mean, scale = fit_probe(
            features[layer][train], train_y, len(classes), l2=config.l2, max_iter=config.max_iter
        )
        probe = LinearProbe(layer, attribute, classes, weight, bias, mean, scale)
        probes[layer] = probe
        scores.append(
            ProbeLayerScore(
                layer=layer,
                train_accuracy=float(
                    (probe.predict(features[layer][train]) == train_y).float().mean()
                ),
                test_accuracy=float(
                    (probe.predict(features[layer][test]) == test_y).float().mean()
                ),
                n_train=len(train),
                n_test=len(test),
                n_classes=len(classes),
            )
        )
    return ProbeSweep(attribute, scores, probes, config, time.perf_counter() - start)
