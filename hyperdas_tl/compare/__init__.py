"""One comparison pipeline: every method trained and scored on the same examples, with intervals.

:func:`compare_methods` takes a model and an :class:`~hyperdas_tl.experiment.ExperimentData`
and, at one layer (given, or chosen on the validation split — never on a test split) and one
``k``:

- scores the controls (``"no intervention"``, ``"random subspace"`` of the same k, seeded,
  ``"full residual swap"`` at the entity token: the single-position ceiling);
- trains the baselines in RAVEL's protocol: ``"DAS"`` / ``"MDAS"`` learn one subspace per target
  attribute on that attribute's rows, with the learning rate and the epoch chosen on validation
  (:func:`hyperdas_tl.baselines.das.train_attribute_subspaces`), ``"probe"`` uses each
  attribute's probe-weight span; ``"DAS (pooled)"`` / ``"MDAS (pooled)"`` are the named ablation
  of one subspace for every attribute;
- trains ``"HyperDAS"`` and scores its three read-outs (``"HyperDAS (soft)"``,
  ``"HyperDAS (one_to_many)"``, ``"HyperDAS (one_to_one)"``);
- keeps every per-example verdict (:class:`ExampleRecord`) and summarises them per (domain,
  split, method) as Cause / Isolate / Disentangle with 95 % bootstrap intervals
  (:mod:`hyperdas_tl.stats`: a cluster bootstrap over base entities by default), pooled over
  seeds (each example's verdict averaged over the seeds) beside per-seed intervals and the
  mean ± sd over seeds, plus **paired** intervals of the differences the README states.

Every trained method runs once per seed; deterministic methods (no intervention, the full swap,
probes) run once. With ``out_dir`` the run is incremental and resumable: each (method, seed)
writes its records (``records/*.jsonl.gz``) and curves (``curves/*.json``) atomically when it
finishes, and a later call with the same ``out_dir`` skips what is already there (``run.json``
holds a fingerprint of the data and settings; a different run in the same folder is an error).
A HyperDAS unit also checkpoints its training in ``checkpoints/hyperdas.seed<N>/`` (every 50
steps unless its config sets ``checkpoint_every``): a unit stopped mid-training resumes from
its last checkpoint, and the finished checkpoint is the trained HyperDAS that
``analyses/run_faithfulness.py`` reads.
A DAS / MDAS unit keeps each (attribute, learning rate) run in ``checkpoints/<unit>/`` as it
finishes (:mod:`hyperdas_tl.baselines.das.run_store`): a unit stopped part-way trains only the
runs it had not finished, and scores what the uninterrupted unit would have.
Several processes may run the same comparison on one ``out_dir`` at once: each unit is run by
the one that claims it (:mod:`~hyperdas_tl.claims`) and each process ends with the
complete report.
:func:`write_report` writes ``summary.json`` (the schema of issue 13), ``details.json``,
``records.jsonl.gz`` and ``summary.md``.

**Decision rule** (fixed before any run): "A beats B" only when the paired 95 % interval of
``A - B`` (Disentangle) excludes 0 (:func:`hyperdas_tl.stats.decide`); with the seed condition
(:func:`hyperdas_tl.stats.decide_over_seeds`), not when a seed's own paired interval
(``PairedDifference.per_seed``) lies on the other side of 0: "no consistent difference".

One concept per module:

- :mod:`~hyperdas_tl.compare.methods`: the method names (:data:`METHODS`, the seeded ones, the
  per-attribute ones, HyperDAS's read-outs);
- :mod:`~hyperdas_tl.compare.settings`: :class:`CompareSettings`, :func:`default_differences`;
- :mod:`~hyperdas_tl.compare.data_checks`: what the data must hold, checked before training;
- :mod:`~hyperdas_tl.compare.layer_choice`: :func:`choose_layer` on validation;
- :mod:`~hyperdas_tl.compare.units`: one (method, seed) trained and scored;
- :mod:`~hyperdas_tl.compare.records`: :class:`ExampleRecord` and its JSON-lines files;
- :mod:`~hyperdas_tl.compare.scores`: intervals of one method and paired differences;
- :mod:`~hyperdas_tl.compare.report`: :class:`ComparisonReport`, :func:`build_report`,
  :func:`write_report`;
- :mod:`~hyperdas_tl.compare.run_folder`: the ``out_dir`` layout, atomic writes, ``run.json``;
- :mod:`hyperdas_tl.claims` (shared with the instance build): several processes sharing one
  ``out_dir`` (a file lock per unit);
- :mod:`~hyperdas_tl.compare.pipeline`: :func:`compare_methods`, the whole run.
"""

from hyperdas_tl.compare.data_checks import check_attribute_rows
from hyperdas_tl.compare.layer_choice import LayerChoice, LayerScore, choose_layer
from hyperdas_tl.compare.methods import (
    DEFAULT_METHODS,
    HYPERDAS_METHODS,
    METHODS,
    NO_INTERVENTION,
    PER_ATTRIBUTE_METHODS,
    SEEDED_METHODS,
    scored_names,
)
from hyperdas_tl.compare.pipeline import SPLIT_ORDER, compare_methods
from hyperdas_tl.compare.records import ExampleRecord, read_records, records_bytes
from hyperdas_tl.compare.report import ComparisonReport, build_report, write_report
from hyperdas_tl.compare.run_folder import (
    DETAILS_JSON,
    LAYER_JSON,
    RECORDS_JSONL,
    RUN_JSON,
    SUMMARY_JSON,
    SUMMARY_MD,
)
from hyperdas_tl.compare.scores import (
    METRICS,
    MethodScore,
    PairedDifference,
    ScoreSet,
    paired_method_difference,
    score_set,
    summarise_method,
)
from hyperdas_tl.compare.settings import CompareSettings, default_differences
from hyperdas_tl.compare.units import rebatch

__all__ = [
    "DEFAULT_METHODS",
    "DETAILS_JSON",
    "HYPERDAS_METHODS",
    "LAYER_JSON",
    "METHODS",
    "METRICS",
    "NO_INTERVENTION",
    "PER_ATTRIBUTE_METHODS",
    "RECORDS_JSONL",
    "RUN_JSON",
    "SEEDED_METHODS",
    "SPLIT_ORDER",
    "SUMMARY_JSON",
    "SUMMARY_MD",
    "CompareSettings",
    "ComparisonReport",
    "ExampleRecord",
    "LayerChoice",
    "LayerScore",
    "MethodScore",
    "PairedDifference",
    "ScoreSet",
    "build_report",
    "check_attribute_rows",
    "choose_layer",
    "compare_methods",
    "default_differences",
    "paired_method_difference",
    "read_records",
    "records_bytes",
    "rebatch",
    "score_set",
    "scored_names",
    "summarise_method",
    "write_report",
]
