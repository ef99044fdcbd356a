"""The named choices a run is configured with: the target's precision, how test splits are
judged, the RAVEL domains, how an instance's prompts are decoded. Torch-free, so the configs and
the command line that is generated from them (``--help`` answers without torch) can name them;
:mod:`hyperdas_tl.precision`, :mod:`hyperdas_tl.metrics`, :mod:`hyperdas_tl.data.ravel` and
:mod:`hyperdas_tl.data.instance_decoding` re-export them where they are used.
"""

from typing import Literal, get_args

Precision = Literal["auto", "float32", "bfloat16"]
"""Dtype of the frozen target: ``"auto"`` = bfloat16 where the hardware has it natively."""
PRECISIONS: tuple[Precision, ...] = get_args(Precision)

JudgeMode = Literal["teacher_forced", "generation"]
"""How an example is judged: the label's tokens are the argmax under teacher forcing, or the
label is what greedy generation says."""
JUDGE_MODES: tuple[JudgeMode, ...] = get_args(JudgeMode)

RavelDomainName = Literal["city", "nobel_prize_winner", "occupation", "physical_object", "verb"]
"""RAVEL's entity types."""
RAVEL_DOMAINS: tuple[RavelDomainName, ...] = get_args(RavelDomainName)

GenerationBackend = Literal["greedy_generate", "kv_cached", "prefix_cached"]
"""How an instance's prompts are decoded (:mod:`hyperdas_tl.data.instance_decoding`)."""
GENERATION_BACKENDS: tuple[GenerationBackend, ...] = get_args(GenerationBackend)
