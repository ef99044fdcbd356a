"""Fixtures of the data tests: the tiny RAVEL-format dataset in a tmp dir and SmolLM2's
tokenizer (the shared archive is tests/conftest.py's ``ravel_archive``)."""

import tarfile
from pathlib import Path

import pytest
from tiny_ravel import write_tiny_ravel

from hyperdas_tl.data.ravel import RavelDomain, load_ravel


@pytest.fixture
def tiny_ravel_dir(tmp_path: Path) -> Path:
    return write_tiny_ravel(tmp_path / "ravel")


@pytest.fixture
def tiny_ravel_tgz(tiny_ravel_dir: Path, tmp_path: Path) -> Path:
    archive = tmp_path / "data.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny_ravel_dir / "data", arcname="data")
    return archive


@pytest.fixture
def tiny_domain(tiny_ravel_dir: Path) -> RavelDomain:
    return load_ravel("city", tiny_ravel_dir)


@pytest.fixture(scope="session")
def smollm2_tok():
    from hyperdas_tl.models import smollm2_tokenizer

    return smollm2_tokenizer()
