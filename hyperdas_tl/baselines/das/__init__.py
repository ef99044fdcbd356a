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

One concept per module: :mod:`~hyperdas_tl.baselines.das.config` (:class:`DASConfig`),
:mod:`~hyperdas_tl.baselines.das.module` (the orthonormal basis and the intervention),
:mod:`~hyperdas_tl.baselines.das.rows` (which rows train and validate a run),
:mod:`~hyperdas_tl.baselines.das.train` (:func:`train_das`, the epoch loop, validation),
:mod:`~hyperdas_tl.baselines.das.search` (:func:`search_lr`) and
:mod:`~hyperdas_tl.baselines.das.attribute_subspaces` (one subspace per target attribute).
"""

from hyperdas_tl.baselines.das.attribute_subspaces import (
    AttributeSubspaces,
    attribute_subspace_intervention,
    train_attribute_subspaces,
)
from hyperdas_tl.baselines.das.config import OBJECTIVES, DASConfig, Objective
from hyperdas_tl.baselines.das.module import DASIntervention, SubspaceBasis
from hyperdas_tl.baselines.das.rows import (
    attribute_mask,
    attribute_rows,
    concat_batches,
    regroup,
    select_rows,
    training_rows,
)
from hyperdas_tl.baselines.das.search import DASSearch, search_lr
from hyperdas_tl.baselines.das.train import (
    DASEpoch,
    DASHistory,
    DASResult,
    label_loss,
    train_das,
)

__all__ = [
    "OBJECTIVES",
    "AttributeSubspaces",
    "DASConfig",
    "DASEpoch",
    "DASHistory",
    "DASIntervention",
    "DASResult",
    "DASSearch",
    "Objective",
    "SubspaceBasis",
    "attribute_mask",
    "attribute_rows",
    "attribute_subspace_intervention",
    "concat_batches",
    "label_loss",
    "regroup",
    "search_lr",
    "select_rows",
    "train_attribute_subspaces",
    "train_das",
    "training_rows",
]
