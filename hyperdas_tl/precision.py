"""Which floating-point precision the frozen target runs in, and the autocast around it.

The frozen target (base, source and intervened passes, the state cache, the instance builder)
can hold its weights in bfloat16; what is trained (hypernetwork, selection, R0, DAS bases)
always keeps float32 master weights and runs under ``torch.autocast(bfloat16)`` beside a bf16
target (:func:`autocast_like`). ``"auto"`` picks bfloat16 only where the hardware does bf16
matrix work natively (a CUDA device with bf16 support, or a CPU reporting ``amx_bf16`` or
``avx512_bf16``) and says so in the log; elsewhere float32. How much it buys depends on the
CPU: on the AMD EPYC (``avx512_bf16``, no AMX) of the last measurement a bf16 matrix product is
~2x faster than fp32 and a HyperDAS training step 1.9x (``analyses/bench_precision.py``; CPUs
with AMX gain more). The speed and the equivalence of the two precisions are measured in
``analyses/results/bench_precision_smollm2.md`` and ``analyses/results/precision_runs_smollm2``.
Where the CPU has neither flag (an AVX2-only CPU) bf16 is emulated and slow: a SmolLM2 forward of
8 x 32 tokens took 9.5 s in bf16 against 1.6 s in fp32 (5.8x; median, one thread,
``analyses/results/bench_precision_avx2``) on an AVX2-only AMD EPYC, so an explicit
``"bfloat16"`` there is refused unless allowed (:func:`resolve_precision`).
"""

import contextlib
import logging
from functools import partial

import torch

from hyperdas_tl.bench.timing import interleaved
from hyperdas_tl.choices import PRECISIONS, Precision
from hyperdas_tl.models import module_device
from hyperdas_tl.provenance import cpu_flags

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` does bfloat16 matrix work natively."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return any(flag in cpu_flags() for flag in ("amx_bf16", "avx512_bf16"))
    return False


class EmulatedPrecisionError(ValueError):
    """bfloat16 was asked for on a device that would only emulate it (many times slower)."""


def linear_ms_by_dtype(repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` milliseconds of one ``F.linear`` of 64 x 576 inputs by a 1536 x 576
    weight on the CPU (a SmolLM2 MLP projection of a small batch, laid out as the model's) in
    float32 and in bfloat16, timed in turn (:func:`hyperdas_tl.bench.timing.interleaved`)."""
    inputs, weight = torch.randn(64, 576), torch.randn(1536, 576)
    variants = {
        name: partial(torch.nn.functional.linear, inputs.to(dtype), weight.to(dtype))
        for name, dtype in _DTYPES.items()
    }
    return {name: t.min_s * 1e3 for name, t in interleaved(variants, repeats=repeats).items()}


def emulated_bf16_message(device: torch.device | str) -> str:
    """Why bfloat16 on ``device`` (no native bf16) is refused, with the slowdown measured now."""
    device = torch.device(device)
    if device.type != "cpu":
        return f"{device} has no native bf16 support"
    ms = linear_ms_by_dtype()
    fp32, bf16 = ms["float32"], ms["bfloat16"]
    return (
        f"this CPU has no native bf16 matrix unit (its flags hold neither amx_bf16 nor "
        f"avx512_bf16), so bf16 matrix products are emulated: one 64x576 by 1536x576 linear "
        f"took {bf16:.1f} ms in bfloat16 and {fp32:.2f} ms in float32 just now "
        f"({bf16 / max(fp32, 1e-6):.1f}x the float32 time)"
    )


def resolve_precision(
    precision: Precision, device: torch.device | str, *, allow_emulated: bool = False
) -> torch.dtype:
    """The target dtype for ``precision`` on ``device`` (``"auto"``: bf16 where native).

    An explicit ``"bfloat16"`` where the hardware has no native bf16 raises
    :class:`EmulatedPrecisionError` (with the slowdown measured on the spot; on an AVX2-only AMD
    EPYC a SmolLM2 forward was 5.8x slower in bf16 than in fp32), before any model is loaded,
    unless ``allow_emulated``; then it only warns. Choose ``"float32"`` or ``"auto"`` there,
    knowing that float32 and bfloat16 results are different experiments (README, Performance).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        if precision == "bfloat16" and not native_bf16(device):
            reason = emulated_bf16_message(device)
            if not allow_emulated:
                raise EmulatedPrecisionError(
                    f"precision bfloat16 refused on {device}: {reason}. Use float32 or auto "
                    "(float32 results are a different experiment from bfloat16 ones), run on a "
                    "CPU with avx512_bf16 / AMX or a GPU, or allow the emulation explicitly "
                    "(--allow-emulated-bf16)"
                )
            logger.warning("bfloat16 on %s, allowed although emulated: %s", device, reason)
        return _DTYPES[precision]
    if native_bf16(device):
        logger.info("precision auto: bfloat16 target (%s has native bf16)", device)
        return torch.bfloat16
    logger.info("precision auto: float32 target (%s has no native bf16)", device)
    return torch.float32


def precision_name(dtype: torch.dtype) -> str:
    """``"float32"`` / ``"bfloat16"`` for a dtype (as recorded in results)."""
    for name, value in _DTYPES.items():
        if value == dtype:
            return name
    return str(dtype).removeprefix("torch.")


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype of a model's (first floating) parameters."""
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.float32


def autocast_like(model: torch.nn.Module) -> contextlib.AbstractContextManager:
    """``torch.autocast(bfloat16)`` on the model's device when its weights are bf16, else a
    no-op: float32 trainable parts and hooks then meet the bf16 target in bf16 matmuls."""
    dtype = model_dtype(model)
    if dtype != torch.bfloat16:
        return contextlib.nullcontext()
    device = module_device(model)
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
