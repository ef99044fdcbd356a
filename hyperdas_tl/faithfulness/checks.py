"""Input checks every faithfulness control shares."""

from collections.abc import Sequence

from hyperdas_tl.data.batching import InterventionBatch
from hyperdas_tl.hyperdas.model import TargetStates


def check_batches(batches: Sequence[InterventionBatch], *, need_examples: bool = False) -> None:
    """Raise ``ValueError`` on no batches, or (``need_examples``) on a batch without its
    :class:`~hyperdas_tl.data.examples.InterventionExample` list."""
    if not batches:
        raise ValueError("batches is empty: the controls need at least one batch of examples")
    if need_examples:
        for batch in batches:
            if len(batch.examples) != len(batch):
                raise ValueError(
                    f"a batch carries {len(batch.examples)} InterventionExamples for {len(batch)} "
                    "rows; this control needs the examples (build batches with collate_examples)"
                )


def check_states(
    states: Sequence[TargetStates] | None, batches: Sequence[InterventionBatch]
) -> None:
    """Raise ``ValueError`` when precomputed ``states`` do not pair one-to-one with ``batches``."""
    if states is not None and len(states) != len(batches):
        raise ValueError(f"got {len(states)} precomputed states for {len(batches)} batches")
