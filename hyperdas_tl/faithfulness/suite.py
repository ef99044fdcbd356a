"""The whole faithfulness suite in one call: every control on each split, with the target's states
and HyperDAS's own scores computed once per split and shared, then the random-init target.

:func:`faithfulness_suite` is what ``analyses/run_faithfulness.py`` writes out and what notebook 4
shows and asserts on, so the two run the same controls with the same arguments.
"""

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.faithfulness.controls import (
    NonsenseSourceResult,
    RandomSubspaceResult,
    RandomTargetResult,
    SourceEqualsBaseResult,
    ZeroSourceResult,
    nonsense_source_control,
    random_subspace_control,
    random_target_control,
    source_equals_base_control,
    zero_source_control,
)
from hyperdas_tl.faithfulness.householder import HouseholderVectors, householder_vectors
from hyperdas_tl.faithfulness.result_dict import NOT_IN_DICT, ResultDict
from hyperdas_tl.faithfulness.scoring import (
    Score,
    hyperdas_scores,
    majority_label_rate,
    target_states_for,
)
from hyperdas_tl.faithfulness.selection import (
    ReadOutGap,
    SelectionStats,
    selection_statistics,
    soft_hard_gap,
)
from hyperdas_tl.hyperdas.model import HyperDAS
from hyperdas_tl.metrics import EvalResult

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class SplitControls(ResultDict):
    """Every per-split control of :func:`split_controls` (``to_dict``: the results file's
    ``splits[split]``)."""

    n_examples: int
    hyperdas: dict[str, Score]
    """HyperDAS's own scores per read-out (the reference of the controls)."""
    majority_label_rate: float
    """Cause of the best constant answer on these examples."""
    source_equals_base: SourceEqualsBaseResult
    random_subspace: RandomSubspaceResult
    zero_source: ZeroSourceResult
    nonsense_source: NonsenseSourceResult
    selection: SelectionStats
    soft_hard_gap: ReadOutGap
    householder: HouseholderVectors
    seconds: dict[str, float]
    """Wall time of each step (``states``, ``hyperdas``, then one per control)."""
    reference: dict[str, EvalResult] = field(metadata=NOT_IN_DICT)
    """HyperDAS's full evaluation results per read-out (behind :attr:`hyperdas`)."""


@dataclass
class FaithfulnessSuite(ResultDict):
    """:func:`faithfulness_suite`'s result: the per-split controls and the random-init target."""

    splits: dict[str, SplitControls]
    random_target_split: str | None
    """The split the random-init target is scored on (None: that control was skipped)."""
    random_target: RandomTargetResult | None
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each split's controls and of the random-init target."""


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable[[], T]) -> T:
        start = time.perf_counter()
        out = fn()
        self.seconds[name] = round(time.perf_counter() - start, 2)
        logger.info("%s: %.1fs", name, self.seconds[name])
        return out


def split_controls(
    hyperdas: HyperDAS, batches: Sequence[InterventionBatch], *, seed: int = 0
) -> SplitControls:
    """Every per-split control on ``batches``, sharing the target's states and HyperDAS's own
    scores: source == base, a random subspace of the same ``k`` (seeded), the zeroed source, a
    nonsense source entity, the selection statistics, the soft - hard gap and the Householder
    vectors."""
    timed = _Timer()
    states = timed("states", lambda: target_states_for(hyperdas, batches))
    reference = timed("hyperdas", lambda: hyperdas_scores(hyperdas, batches, states=states))
    tokenizer = hyperdas.target.tokenizer
    return SplitControls(
        n_examples=sum(len(b) for b in batches),
        hyperdas={mode: Score.of(result) for mode, result in reference.items()},
        majority_label_rate=majority_label_rate(batches),
        source_equals_base=timed(
            "source_equals_base",
            lambda: source_equals_base_control(hyperdas, batches, states=states),
        ),
        random_subspace=timed(
            "random_subspace",
            lambda: random_subspace_control(
                hyperdas, batches, seed, states=states, reference=reference["soft"]
            ),
        ),
        zero_source=timed(
            "zero_source",
            lambda: zero_source_control(
                hyperdas, batches, states=states, reference=reference["soft"]
            ),
        ),
        nonsense_source=timed(
            "nonsense_source", lambda: nonsense_source_control(hyperdas, batches, tokenizer)
        ),
        selection=timed(
            "selection", lambda: selection_statistics(hyperdas, batches, states=states)
        ),
        soft_hard_gap=timed(
            "soft_hard_gap", lambda: soft_hard_gap(hyperdas, batches, reference=reference)
        ),
        householder=timed(
            "householder", lambda: householder_vectors(hyperdas, batches, states=states)
        ),
        seconds=timed.seconds,
        reference=reference,
    )


def faithfulness_suite(
    hyperdas: HyperDAS,
    splits: Mapping[str, Sequence[InterventionBatch]],
    train_batches: Sequence[InterventionBatch],
    *,
    seed: int = 0,
    random_target_split: str | None = "test_entity",
    random_target_batches: Sequence[InterventionBatch] | None = None,
    random_target_steps: int | None = None,
    show_progress: bool = False,
) -> FaithfulnessSuite:
    """:func:`split_controls` on every split of ``splits`` (in order; an empty one is skipped),
    then, unless ``random_target_split`` is None, the random-init target control: HyperDAS's
    config (``random_target_steps`` overrides its steps) trained on ``train_batches`` against a
    random-init copy of the target and scored on ``random_target_batches`` (default:
    ``splits[random_target_split]``)."""
    if random_target_split is not None and random_target_batches is None:
        random_target_batches = splits.get(random_target_split)
    if random_target_split is not None and not random_target_batches:
        raise ValueError(f"no batches to score the random-init target on ({random_target_split})")
    timed = _Timer()
    done: dict[str, SplitControls] = {}
    for split, batches in splits.items():
        if not batches:
            logger.warning("split %s has no examples; skipped", split)
            continue
        logger.info("split %s: %d examples", split, sum(len(b) for b in batches))
        done[split] = timed(split, lambda b=batches: split_controls(hyperdas, b, seed=seed))
    random_target = None
    if random_target_split is not None:
        own = done.get(random_target_split)
        scored = list(splits.get(random_target_split) or [])
        same = len(scored) == len(random_target_batches) and all(
            a is b for a, b in zip(scored, random_target_batches, strict=True)
        )
        own = own if same else None  # HyperDAS's own scores are reused only on the same batches
        random_target = timed(
            "random_target",
            lambda: random_target_control(
                hyperdas,
                train_batches,
                random_target_batches,
                seed=seed,
                n_steps=random_target_steps,
                reference=None if own is None else own.reference["soft"],
                show_progress=show_progress,
            ),
        )
    return FaithfulnessSuite(
        splits=done,
        random_target_split=random_target_split,
        random_target=random_target,
        seconds=timed.seconds,
    )
