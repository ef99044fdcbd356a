"""Cause / Isolate / Disentangle scores of any interchange intervention, in two judging modes.

RAVEL's metrics (Huang et al., 2024), as HyperDAS reports them:

- **Cause**: accuracy on cause examples (the base prompt queries the target attribute A and the
  intervened run must produce the *source* entity's value of A).
- **Isolate**: accuracy on isolate examples (the base prompt queries another attribute B and the
  intervened run must keep the *base* entity's value of B).
- **Disentangle**: the mean of the two. Scores are reported per (domain, target attribute, data
  split) and macro-averaged over the attributes of a domain.

An example is judged in one of two modes, and every score names its mode:

- ``"teacher_forced"`` (the HyperDAS convention): one forward over prompt + label tokens with the
  intervention; correct when the argmax at each of the first ``max_label_tokens`` (<= 3) label
  positions equals the label token — all of them must match.
- ``"generation"`` (the RAVEL convention): greedy continuation of the prompt alone, with the
  intervention on the prompt positions only (KV-cached,
  :func:`hyperdas_tl.generation.kv_cached_greedy_generate`); correct when the
  normalised generated text starts with the normalised label (:func:`prefix_match`).

Every method scores through one path: an :data:`Intervention` is any callable
``(batch, width) -> [(hook_name, hook_fn), ...]`` that builds TransformerLens forward hooks for
a base forward of ``width`` positions. DAS, MDAS, probe subspaces, HyperDAS and controls
(:func:`no_intervention`) are all interventions; :func:`entity_subspace_intervention` is the
fixed-position one (base ``entity_last`` reads source ``entity_last`` through a basis).

One concept per module:

- :mod:`~hyperdas_tl.metrics.interventions`: :data:`Intervention`, :func:`no_intervention`,
  :func:`entity_subspace_intervention` (and the hooks it builds);
- :mod:`~hyperdas_tl.metrics.judging`: the judging modes (:data:`JudgeMode`), teacher-forced
  and generation judging of one batch, :func:`prefix_match`;
- :mod:`~hyperdas_tl.metrics.scores`: :class:`Judgement`, :func:`example_id`,
  :class:`AttributeScore`, :class:`DomainScore`, :func:`summarise`;
- :mod:`~hyperdas_tl.metrics.result`: :class:`EvalResult`, :func:`results_to_markdown`;
- :mod:`~hyperdas_tl.metrics.scoring`: :class:`EvalConfig`, :func:`evaluate` and
  :func:`evaluate_interventions` (the loop).
"""

from hyperdas_tl.metrics.interventions import (
    Hooks,
    Intervention,
    entity_interchange_hooks,
    entity_source_vectors,
    entity_subspace_intervention,
    no_intervention,
)
from hyperdas_tl.metrics.judging import (
    JUDGE_MODES,
    JudgeMode,
    generate_under,
    judge_generation,
    judge_teacher_forced,
    label_texts,
    normalise_text,
    prefix_match,
    prompt_lengths,
    teacher_forced_correct,
)
from hyperdas_tl.metrics.result import EvalResult, results_to_markdown
from hyperdas_tl.metrics.scores import (
    EXAMPLE_ID_FIELDS,
    AttributeScore,
    DomainScore,
    Judgement,
    example_id,
    mean_present,
    summarise,
)
from hyperdas_tl.metrics.scoring import (
    EvalConfig,
    batch_judgements,
    evaluate,
    evaluate_interventions,
    judge_batch,
)

__all__ = [
    "EXAMPLE_ID_FIELDS",
    "JUDGE_MODES",
    "AttributeScore",
    "DomainScore",
    "EvalConfig",
    "EvalResult",
    "Hooks",
    "Intervention",
    "JudgeMode",
    "Judgement",
    "batch_judgements",
    "entity_interchange_hooks",
    "entity_source_vectors",
    "entity_subspace_intervention",
    "evaluate",
    "evaluate_interventions",
    "example_id",
    "generate_under",
    "judge_batch",
    "judge_generation",
    "judge_teacher_forced",
    "label_texts",
    "mean_present",
    "no_intervention",
    "normalise_text",
    "prefix_match",
    "prompt_lengths",
    "results_to_markdown",
    "summarise",
    "teacher_forced_correct",
]
