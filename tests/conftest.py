"""Shared fixtures: seeded RNG, the tiny random Llama, and the real SmolLM2 (session-scoped)."""

import os
from pathlib import Path

import pytest
import torch

from hyperdas_tl.models import load_model, tiny_llama_config

REPO_ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(int(os.environ.get("HYPERDAS_TL_TEST_THREADS", torch.get_num_threads())))


@pytest.fixture(autouse=True)
def seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_model():
    """Random-init 4-layer Llama (d_model 64, GQA 4/2 heads) with SmolLM2's tokenizer."""
    return load_model("tiny-llama", device="cpu", tiny_config=tiny_llama_config())


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct (raw bridge, float32, CPU)."""
    return load_model("smollm2-135m", device="cpu")


@pytest.fixture(scope="session")
def ravel_archive() -> Path:
    """The shared RAVEL archive (``HYPERDAS_TL_RAVEL`` or ../shared/ravel/data.tgz)."""
    path = Path(os.environ.get("HYPERDAS_TL_RAVEL", REPO_ROOT.parent / "shared/ravel/data.tgz"))
    if not path.exists():
        pytest.skip(f"RAVEL archive not found at {path}")
    return path
