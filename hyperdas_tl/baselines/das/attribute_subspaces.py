"""RAVEL's protocol: one DAS / MDAS subspace per target attribute
(:func:`train_attribute_subspaces`), each row intervened on with its own attribute's basis
(:func:`attribute_subspace_intervention`)."""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import torch
from jaxtyping import Float
from torch import Tensor

from hyperdas_tl.baselines.das.config import DASConfig, Objective
from hyperdas_tl.baselines.das.search import DASSearch, search_lr
from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.hooks import resid_pre_name, soft_interchange_hook_for
from hyperdas_tl.interchange import check_basis, positions_to_selection
from hyperdas_tl.metrics import Hooks, Intervention, entity_source_vectors
from hyperdas_tl.target import TargetModel


def attribute_subspace_intervention(
    model: TargetModel, layer: int, bases: Mapping[str, Float[Tensor, "d_model k"]]
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

    def intervention(self, model: TargetModel) -> Intervention:
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


def attribute_store(store: Path, attribute: str) -> Path:
    """The sub-folder of ``store`` holding ``attribute``'s runs (its name percent-encoded: any
    attribute name is one distinct path component)."""
    return Path(store) / f"attribute-{quote(attribute, safe='')}"


def train_attribute_subspaces(
    model: TargetModel,
    batches: Sequence[InterventionBatch],
    val_batches: Sequence[InterventionBatch],
    config: DASConfig,
    attributes: Sequence[str],
    lrs: Sequence[float],
    *,
    store: Path | None = None,
) -> AttributeSubspaces:
    """For each of ``attributes``: :func:`search_lr` with ``config`` restricted to that
    attribute's rows (``config.attribute`` is replaced); with ``store``, each attribute's runs
    are kept in its own sub-folder (:func:`attribute_store`) and a stopped call resumes."""
    if not attributes:
        raise ValueError("attributes must name at least one target attribute")
    if len(set(attributes)) != len(attributes):
        raise ValueError(f"attributes repeat: {list(attributes)}")
    searches = {
        attribute: search_lr(
            model,
            batches,
            val_batches,
            dataclasses.replace(config, attribute=attribute),
            lrs,
            store=None if store is None else attribute_store(store, attribute),
        )
        for attribute in attributes
    }
    return AttributeSubspaces(layer=config.layer, objective=config.objective, searches=searches)
