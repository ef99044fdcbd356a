import logging
import re
import sys
from pathlib import Path

import pytest
import torch
from bad_input import raises_bad_input

sys.path.insert(0, str(Path(__file__).parent / "hyperdas"))
from hyperdas_helpers import build_batch, build_config  # noqa: E402

from hyperdas_tl import precision  # noqa: E402
from hyperdas_tl.hyperdas import HyperDAS  # noqa: E402
from hyperdas_tl.hyperdas.subspace import orthonormality_error  # noqa: E402
from hyperdas_tl.models import load_model, tiny_llama_config  # noqa: E402
from hyperdas_tl.precision import autocast_like, model_dtype, resolve_precision  # noqa: E402


@pytest.fixture(scope="module")
def tiny_bf16():
    return load_model(
        "tiny-llama", device="cpu", dtype=torch.bfloat16, tiny_config=tiny_llama_config()
    )


def test_auto_picks_bf16_only_with_native_support(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="hyperdas_tl.precision")
    monkeypatch.setattr(precision, "cpu_flags", lambda: ["amx_bf16", "amx_tile"])
    assert resolve_precision("auto", "cpu") == torch.bfloat16
    monkeypatch.setattr(precision, "cpu_flags", lambda: [])
    assert resolve_precision("auto", "cpu") == torch.float32
    assert "float32 target" in caplog.text and "bfloat16 target" in caplog.text


def test_explicit_precisions_and_bad_input(monkeypatch, caplog):
    monkeypatch.setattr(precision, "cpu_flags", lambda: [])
    assert resolve_precision("float32", "cpu") == torch.float32
    with caplog.at_level(logging.WARNING, logger="hyperdas_tl.precision"):
        assert resolve_precision("bfloat16", "cpu", allow_emulated=True) == torch.bfloat16
    assert "allowed although emulated" in caplog.text and "x the float32 time" in caplog.text
    with raises_bad_input("precision must be one of"):
        resolve_precision("fp16", "cpu")  # type: ignore[arg-type]


def test_emulated_bf16_is_refused_with_the_slowdown_measured(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: ["avx2", "fma"])
    with pytest.raises(precision.EmulatedPrecisionError) as refused:
        resolve_precision("bfloat16", "cpu")
    message = str(refused.value)
    assert "no native bf16 matrix unit" in message and "--allow-emulated-bf16" in message
    assert re.search(r"took [\d.]+ ms in bfloat16 and [\d.]+ ms in float32 just now", message)
    monkeypatch.setattr(precision, "cpu_flags", lambda: ["avx512_bf16"])
    assert resolve_precision("bfloat16", "cpu") == torch.bfloat16


def test_autocast_only_beside_a_bf16_target(tiny_model, tiny_bf16):
    with autocast_like(tiny_model):
        assert not torch.is_autocast_enabled("cpu")
    with autocast_like(tiny_bf16):
        assert torch.is_autocast_enabled("cpu")
    assert model_dtype(tiny_bf16) == torch.bfloat16


def test_hyperdas_on_a_bf16_target_keeps_float32_master_weights(tiny_bf16):
    model = HyperDAS(tiny_bf16, build_config())
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    batch = build_batch()
    states = model.target_states(batch)
    assert states.base.resid_pre.dtype == torch.bfloat16  # compact frozen states
    out = model(batch, "soft", states=states)
    assert out.basis.dtype == torch.float32 and orthonormality_error(out.basis) < 1e-5
    assert out.soft_selection.dtype == torch.float32
    assert torch.allclose(out.soft_selection.sum(dim=1), torch.ones(()), atol=1e-5)
    out.loss.total.backward()
    assert all(p.grad is not None for p in model.trainable_parameters())
    assert torch.isfinite(out.loss.total)
