"""RAVEL data: load the benchmark or build the offline city domain, filter per model, pair,
tokenise.

- :mod:`~hyperdas_tl.data.ravel`: :func:`load_ravel`, :func:`download_ravel`, :class:`RavelDomain`.
- :mod:`~hyperdas_tl.data.geonames`: :func:`build_geonames_city` (offline, from PyPI data).
- :mod:`~hyperdas_tl.data.judging`: per-attribute matching rules.
- :mod:`~hyperdas_tl.data.instance`: model-specific instances (:func:`build_instance`);
  :mod:`~hyperdas_tl.data.instance_decoding`: how their prompts are decoded (and the KV-cached
  decoder checked); :mod:`~hyperdas_tl.data.instance_cache`: the on-disk cache
  (:func:`load_or_build_instance`).
- :mod:`~hyperdas_tl.data.pairs`: cause/isolate examples in RAVEL's splits (:func:`make_pairs`).
- :mod:`~hyperdas_tl.data.batching`: :func:`collate_examples` into an :class:`InterventionBatch`.
"""

from hyperdas_tl.data.batching import (
    InterventionBatch,
    collate_examples,
    encode_prompt,
    entity_char_span,
    entity_token_positions,
)
from hyperdas_tl.data.concepts import concept_text
from hyperdas_tl.data.examples import InterventionExample
from hyperdas_tl.data.geonames import GeonamesConfig, build_geonames_city
from hyperdas_tl.data.instance import InstanceConfig, RavelInstance, build_instance
from hyperdas_tl.data.instance_cache import load_or_build_instance
from hyperdas_tl.data.judging import MatchRule, extract_label, judge, rule_for
from hyperdas_tl.data.pairs import PAIR_SPLITS, PairConfig, RavelPairs, check_no_leakage, make_pairs
from hyperdas_tl.data.ravel import (
    RAVEL_DOMAINS,
    RavelDomain,
    SourceContext,
    Template,
    download_ravel,
    load_ravel,
)

__all__ = [
    "PAIR_SPLITS",
    "RAVEL_DOMAINS",
    "GeonamesConfig",
    "InstanceConfig",
    "InterventionBatch",
    "InterventionExample",
    "MatchRule",
    "PairConfig",
    "RavelDomain",
    "RavelInstance",
    "RavelPairs",
    "SourceContext",
    "Template",
    "build_geonames_city",
    "build_instance",
    "check_no_leakage",
    "collate_examples",
    "concept_text",
    "download_ravel",
    "encode_prompt",
    "entity_char_span",
    "entity_token_positions",
    "extract_label",
    "judge",
    "load_or_build_instance",
    "load_ravel",
    "make_pairs",
    "rule_for",
]
