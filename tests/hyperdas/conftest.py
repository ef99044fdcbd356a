"""Fixtures for the HyperDAS tests (builders live in hyperdas_helpers.py)."""

import pytest
import torch

from hyperdas_tl.models import load_model, tiny_llama_config


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_target():
    return load_model("tiny-llama", device="cpu", tiny_config=tiny_llama_config())
