"""Re-run a results file's recorded command into a fresh folder and compare the numbers.

Every results file carries ``"provenance"`` (:mod:`hyperdas_tl.provenance`): the command line,
the thread count, the seed, the package versions and the git commit. :func:`reproduce` runs
that command again with ``--out`` pointing at a new folder under ``runs/reproduce/`` (never at
the original results), with the recorded thread count, then compares every score
(``cause`` / ``isolate`` / ``disentangle`` and interval bounds) of the two files.
``python -m hyperdas_tl reproduce RESULTS.json`` is the command-line face.
"""

import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperdas_tl.provenance import REPO_ROOT, git_state, package_versions

logger = logging.getLogger(__name__)

SCORE_KEYS = frozenset({"cause", "isolate", "disentangle", "mean", "lo", "hi"})
"""Leaves of a results file that are compared (timings and counts of work are not)."""
DEFAULT_REPRODUCE_ROOT = Path("runs") / "reproduce"


@dataclass
class ScoreDifference:
    """One compared score."""

    path: str
    original: float | None
    reproduced: float | None

    @property
    def delta(self) -> float:
        if self.original is None or self.reproduced is None:
            return 0.0 if self.original is self.reproduced else math.inf
        return abs(self.reproduced - self.original)


@dataclass
class ReproduceReport:
    """What :func:`reproduce` found."""

    original: Path
    reproduced: Path
    command: list[str]
    tolerance: float
    compared: int
    differences: list[ScoreDifference] = field(default_factory=list)
    """Scores whose |reproduced - original| exceeds ``tolerance`` (or that exist in one file
    only)."""
    max_delta: float = 0.0
    environment_changes: dict[str, Any] = field(default_factory=dict)
    """Recorded vs current package versions / commit / threads where they differ."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.compared > 0 and not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": str(self.original),
            "reproduced": str(self.reproduced),
            "command": self.command,
            "tolerance": self.tolerance,
            "compared": self.compared,
            "max_delta": self.max_delta,
            "ok": self.ok,
            "differences": [
                {"path": d.path, "original": d.original, "reproduced": d.reproduced}
                for d in self.differences
            ],
            "environment_changes": self.environment_changes,
            "seconds": self.seconds,
        }

    def summary(self) -> str:
        verdict = "reproduced" if self.ok else "NOT reproduced"
        return (
            f"{verdict}: {self.compared} scores compared, max |delta| {self.max_delta:.4g} "
            f"(tolerance {self.tolerance:g}), {len(self.differences)} outside; "
            f"{self.reproduced}"
        )


def score_leaves(data: Any, path: str = "") -> Iterator[tuple[str, float | None]]:
    """``(path, value)`` for every score leaf of a results JSON (see :data:`SCORE_KEYS`)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "provenance":
                continue
            child = f"{path}/{key}"
            if key in SCORE_KEYS and (value is None or isinstance(value, int | float)):
                yield child, None if value is None else float(value)
            else:
                yield from score_leaves(value, child)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from score_leaves(value, f"{path}[{index}]")


def compare_results(original: Any, reproduced: Any, tolerance: float) -> tuple[int, list, float]:
    """(number compared, differences beyond ``tolerance``, max delta) of two results JSONs."""
    a, b = dict(score_leaves(original)), dict(score_leaves(reproduced))
    differences, max_delta = [], 0.0
    for path in sorted(set(a) | set(b)):
        diff = ScoreDifference(path, a.get(path), b.get(path))
        if path not in a or path not in b:
            differences.append(diff)
            max_delta = math.inf
            continue
        max_delta = max(max_delta, diff.delta)
        if diff.delta > tolerance:
            differences.append(diff)
    return len(set(a) & set(b)), differences, max_delta


def rerun_command(recorded: list[str], out_dir: Path) -> list[str]:
    """The recorded ``sys.argv`` as a runnable command with ``--out`` set to ``out_dir``."""
    if not recorded:
        raise ValueError("the results file records no command (provenance.command is empty)")
    script, *args = recorded
    if Path(script).name == "__main__.py" and Path(script).parent.name == "hyperdas_tl":
        head = [sys.executable, "-m", "hyperdas_tl"]
    elif script.endswith(".py"):
        head = [sys.executable, script]
    else:
        head = [script]
    rest, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--out":
            skip = True
            continue
        if arg.startswith("--out="):
            continue
        rest.append(arg)
    return [*head, *rest, "--out", str(out_dir)]


def environment_changes(provenance: dict[str, Any]) -> dict[str, Any]:
    """Recorded vs current versions and commit where they differ."""
    changes: dict[str, Any] = {}
    current = package_versions()
    for name, version in (provenance.get("packages") or {}).items():
        if current.get(name) != version:
            changes[name] = {"recorded": version, "now": current.get(name)}
    commit = (provenance.get("git") or {}).get("commit")
    now = git_state()["commit"]
    if commit != now:
        changes["git commit"] = {"recorded": commit, "now": now}
    return changes


def reproduce(
    results_path: str | os.PathLike,
    *,
    out_dir: str | os.PathLike | None = None,
    tolerance: float = 0.0,
    results_name: str | None = None,
    timeout_s: float | None = None,
) -> ReproduceReport:
    """Re-run the command recorded in ``results_path`` and compare its scores.

    Args:
        results_path: a results JSON with a ``"provenance"`` block.
        out_dir: where the re-run writes (default ``runs/reproduce/<folder>-<time>``); it must
            not exist yet and must not be the original's folder.
        tolerance: largest accepted absolute difference per score (0: exact).
        results_name: file name of the re-run's results inside ``out_dir`` (default: the
            original's file name).
        timeout_s: kill the re-run after this many seconds.
    """
    results_path = Path(results_path)
    if not results_path.is_file():
        raise FileNotFoundError(f"no results file at {results_path}")
    try:
        original = json.loads(results_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{results_path} is not valid JSON: {error}") from error
    provenance = original.get("provenance")
    if not isinstance(provenance, dict) or not provenance.get("command"):
        raise ValueError(f"{results_path} records no provenance.command; nothing to re-run")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = (
        Path(out_dir)
        if out_dir is not None
        else (REPO_ROOT / DEFAULT_REPRODUCE_ROOT / f"{results_path.parent.name}-{stamp}")
    )
    if out.resolve() == results_path.parent.resolve():
        raise ValueError(f"--out {out} is the original results folder; choose a fresh one")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} already exists and is not empty; choose a fresh --out")
    command = rerun_command(list(provenance["command"]), out)
    env = dict(os.environ)
    threads = provenance.get("threads")
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    logger.info("re-running %s", " ".join(command))
    start = time.perf_counter()
    done = subprocess.run(command, cwd=provenance.get("cwd") or REPO_ROOT, env=env,
                          timeout=timeout_s)  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the re-run exited with {done.returncode}: {' '.join(command)}")
    reproduced_path = out / (results_name or results_path.name)
    if not reproduced_path.is_file():
        raise FileNotFoundError(f"the re-run wrote no {reproduced_path}")
    reproduced = json.loads(reproduced_path.read_text())
    compared, differences, max_delta = compare_results(original, reproduced, tolerance)
    report = ReproduceReport(
        original=results_path,
        reproduced=reproduced_path,
        command=command,
        tolerance=tolerance,
        compared=compared,
        differences=differences,
        max_delta=max_delta,
        environment_changes=environment_changes(provenance),
        seconds=seconds,
    )
    (out / "reproduce.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report
