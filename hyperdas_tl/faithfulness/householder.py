"""The Householder reflection vectors ``v(e)`` of ``R(e) = (I - 2 v vᵀ) R0`` per example: do the
subspaces HyperDAS builds cluster by attribute?"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from torch import Tensor

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.faithfulness.checks import check_batches, check_states
from hyperdas_tl.faithfulness.result_dict import NOT_IN_DICT, ResultDict
from hyperdas_tl.hyperdas.model import HyperDAS, TargetStates
from hyperdas_tl.models import module_device


@dataclass
class HouseholderVectors(ResultDict):
    """The reflection vectors ``v(e)`` of ``R(e) = (I - 2 v vᵀ) R0``, one per example."""

    vectors: Float[Tensor, "n d_model"] = field(metadata=NOT_IN_DICT)
    """Unit vectors ``v(e)``."""
    attributes: list[str]
    """Target attribute (concept) of each example."""
    projection: Float[Tensor, "n 2"]
    """The vectors on their first two principal components."""
    explained_variance: tuple[float, float]
    """Share of the variance on each of the two components."""
    centroid_accuracy: float
    """Fraction of vectors closer (cosine) to their own attribute's mean than to any other's
    (leave-in; 1/n_attributes is chance)."""
    mean_cosine: dict[str, float]
    """Mean pairwise cosine within an attribute (``"A"``) and between attributes (``"A|B"``)."""


def pca_2d(
    vectors: Float[Tensor, "n d"],
) -> tuple[Float[Tensor, "n 2"], tuple[float, float]]:
    """Projection on the first two principal components and their explained-variance shares."""
    if vectors.ndim != 2 or vectors.shape[0] < 2:
        raise ValueError(f"PCA needs at least two vectors [n, d], got {tuple(vectors.shape)}")
    centred = vectors.double() - vectors.double().mean(dim=0, keepdim=True)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    components = vh[:2]
    projection = centred @ components.T
    if projection.shape[1] < 2:
        projection = torch.nn.functional.pad(projection, (0, 2 - projection.shape[1]))
    variance = singular.pow(2)
    total = float(variance.sum())
    shares = [float(v) / total if total > 0 else 0.0 for v in variance[:2].tolist()]
    shares += [0.0] * (2 - len(shares))
    return projection.float(), (shares[0], shares[1])


@torch.no_grad()
def householder_vectors(
    hyperdas: HyperDAS,
    batches: Sequence[InterventionBatch],
    *,
    states: Sequence[TargetStates] | None = None,
) -> HouseholderVectors:
    """``v(e)`` for every example (``hyperdas.subspace.reflection_vector`` of the encoding),
    labelled by target attribute, with a PCA projection and cluster summaries."""
    check_batches(batches, need_examples=True)
    check_states(states, batches)
    device = module_device(hyperdas.target)
    vectors, attributes = [], []
    for index, batch in enumerate(batches):
        batch = batch.to(device)
        output = hyperdas(batch, "soft", states=None if states is None else states[index])
        vectors.append(hyperdas.subspace.reflection_vector(output.encoding).float().cpu())
        attributes.extend(e.target_attribute for e in batch.examples)
    v = torch.cat(vectors)
    projection, explained = pca_2d(v)
    names = sorted(set(attributes))
    labels = torch.tensor([names.index(a) for a in attributes])
    unit = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    centroids = torch.stack([unit[labels == c].mean(dim=0) for c in range(len(names))])
    centroids = centroids / centroids.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    nearest = (unit @ centroids.T).argmax(dim=-1)
    cosine = unit @ unit.T
    mean_cosine: dict[str, float] = {}
    for a, name_a in enumerate(names):
        for b, name_b in enumerate(names[a:], start=a):
            block = cosine[labels == a][:, labels == b]
            if a == b:
                n = block.shape[0]
                off = block.sum() - block.diagonal().sum()
                mean_cosine[name_a] = float(off / (n * (n - 1))) if n > 1 else 1.0
            else:
                mean_cosine[f"{name_a}|{name_b}"] = float(block.mean())
    return HouseholderVectors(
        vectors=v,
        attributes=attributes,
        projection=projection,
        explained_variance=explained,
        centroid_accuracy=float((nearest == labels).float().mean()),
        mean_cosine=mean_cosine,
    )
