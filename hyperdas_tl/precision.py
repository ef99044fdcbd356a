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
"""

import contextlib
import logging

import torch

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


def resolve_precision(precision: Precision, device: torch.device | str) -> torch.dtype:
    """The target dtype for ``precision`` on ``device`` (``"auto"``: bf16 where native)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        if precision == "bfloat16" and not native_bf16(device):
            logger.warning(
                "bfloat16 requested on %s, which has no native bf16 support: it will be slow",
                device,
            )
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
