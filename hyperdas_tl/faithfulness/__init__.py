"""Faithfulness controls: does HyperDAS *find* the concept in the target, or *inject* it?

A hypernetwork that reads the source text could learn to write the counterfactual label into the
base run itself, whatever the target computes. Each control below removes one way the label
could legitimately reach the base run and checks that HyperDAS's success goes with it (one file
each in :mod:`hyperdas_tl.faithfulness.controls`):

- :func:`source_equals_base_control`: the source is the base prompt itself, so an interchange
  has nothing new to bring; the predictions must stay the model's own (exactly so wherever the
  selection only mixes a base position with its own state).
- :func:`random_subspace_control`: HyperDAS's selection, but ``R(e)`` replaced by a random
  orthonormal basis of the same ``k``: Cause must drop far below HyperDAS's.
- :func:`zero_source_control`: the hypernetwork and the interchange see the source's states
  zeroed; the label cannot come from the source, so Cause must collapse.
- :func:`nonsense_source_control`: the source entity replaced by a name the model does not know
  ("Zorblaxia"); the run must not produce the *original* counterfactual label.
- :func:`random_target_control`: the same HyperDAS (same config, same steps) trained against a
  random-init copy of the target (same architecture and tokenizer, no knowledge); its Cause must
  stay far below the real model's.

And descriptions of what HyperDAS learned: :func:`selection_statistics` (how much selection mass
lands on entity tokens, which tokens are picked), :func:`soft_selection_summary` (how sharp the
soft weights of a batch are) and :func:`soft_hard_gap` (Cause/Isolate of the soft read-out minus
the hard ones), all in :mod:`~hyperdas_tl.faithfulness.selection`, and
:func:`householder_vectors` (the reflection vectors ``v(e)`` per attribute, with a 2-D PCA
projection; :mod:`~hyperdas_tl.faithfulness.householder`).

Scoring: every Cause/Isolate is teacher forced on the logits of :meth:`HyperDAS.forward`, with
the target's states of a batch computed once (:func:`target_states_for`) and shared by every
control through ``states=`` (:mod:`~hyperdas_tl.faithfulness.scoring`).

The whole suite in one call: :func:`faithfulness_suite` (every control per split, then the
random-init target; :mod:`~hyperdas_tl.faithfulness.suite`), what ``analyses/run_faithfulness.py``
writes out and notebook 4 shows.

Every result is a dataclass whose ``to_dict`` is the one JSON conversion of
:mod:`~hyperdas_tl.faithfulness.result_dict`.
"""

from hyperdas_tl.faithfulness.controls import (
    DEFAULT_NONSENSE,
    OWN_MASS_ATOL,
    HypernetworkInit,
    NonsenseSourceResult,
    RandomSubspaceResult,
    RandomTargetResult,
    SourceEqualsBaseResult,
    ZeroSourceResult,
    nonsense_source_batches,
    nonsense_source_control,
    own_state_mass,
    random_init_copy,
    random_subspace_control,
    random_target_control,
    replace_entity,
    source_equals_base_batch,
    source_equals_base_control,
    zero_source_control,
)
from hyperdas_tl.faithfulness.householder import HouseholderVectors, householder_vectors, pca_2d
from hyperdas_tl.faithfulness.scoring import (
    Score,
    hyperdas_scores,
    intervened_logits,
    majority_label_rate,
    score_hyperdas,
    target_states_for,
)
from hyperdas_tl.faithfulness.selection import (
    ReadOutGap,
    ReadOutSelection,
    SelectionStats,
    SoftSelectionSummary,
    selection_statistics,
    soft_hard_gap,
    soft_selection_summary,
)
from hyperdas_tl.faithfulness.suite import (
    FaithfulnessSuite,
    SplitControls,
    faithfulness_suite,
    split_controls,
)
from hyperdas_tl.hyperdas.intervention import BasisTransform
from hyperdas_tl.interchange import random_orthonormal_basis

__all__ = [
    "DEFAULT_NONSENSE",
    "OWN_MASS_ATOL",
    "BasisTransform",
    "FaithfulnessSuite",
    "HouseholderVectors",
    "HypernetworkInit",
    "NonsenseSourceResult",
    "RandomSubspaceResult",
    "RandomTargetResult",
    "ReadOutGap",
    "ReadOutSelection",
    "Score",
    "SelectionStats",
    "SoftSelectionSummary",
    "SourceEqualsBaseResult",
    "SplitControls",
    "ZeroSourceResult",
    "faithfulness_suite",
    "householder_vectors",
    "hyperdas_scores",
    "intervened_logits",
    "majority_label_rate",
    "nonsense_source_batches",
    "nonsense_source_control",
    "own_state_mass",
    "pca_2d",
    "random_init_copy",
    "random_orthonormal_basis",
    "random_subspace_control",
    "random_target_control",
    "replace_entity",
    "score_hyperdas",
    "selection_statistics",
    "soft_hard_gap",
    "soft_selection_summary",
    "source_equals_base_batch",
    "source_equals_base_control",
    "split_controls",
    "target_states_for",
    "zero_source_control",
]
