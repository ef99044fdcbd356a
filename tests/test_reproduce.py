import json
import sys
from pathlib import Path

import pytest

from hyperdas_tl.reproduce import compare_results, reproduce, rerun_command

SCRIPT = """
import argparse, json, pathlib
p = argparse.ArgumentParser(); p.add_argument("--out"); p.add_argument("--shift", type=float)
a = p.parse_args()
out = pathlib.Path(a.out); out.mkdir(parents=True, exist_ok=True)
scores = {"method": "m", "cause": 0.25 + a.shift, "isolate": 0.75, "seconds": 12.0}
(out / "results.json").write_text(json.dumps({"results": [scores]}))
"""


def write_original(tmp_path: Path, shift: float, recorded_shift: float) -> Path:
    script = tmp_path / "make_results.py"
    script.write_text(SCRIPT)
    original = tmp_path / "original"
    original.mkdir()
    command = [str(script), "--shift", str(shift), "--out", str(original)]
    payload = {
        "results": [{"method": "m", "cause": 0.25 + recorded_shift, "isolate": 0.75}],
        "provenance": {"command": command, "threads": 1, "cwd": str(tmp_path)},
    }
    path = original / "results.json"
    path.write_text(json.dumps(payload))
    return path


def test_compare_results_reads_scores_not_timings():
    a = {"results": [{"cause": 0.5, "isolate": 0.5, "seconds": 1.0}], "provenance": {"x": 1}}
    b = {"results": [{"cause": 0.5, "isolate": 0.6, "seconds": 9.0}]}
    compared, differences, max_delta = compare_results(a, b, tolerance=0.05)
    assert compared == 2 and max_delta == pytest.approx(0.1)
    assert [d.path for d in differences] == ["/results[0]/isolate"]


def test_rerun_command_replaces_out_and_runs_the_package_as_a_module():
    command = rerun_command(["/x/hyperdas_tl/__main__.py", "train", "--out", "a", "--seed", "1"],
                            Path("b"))  # fmt: skip
    assert command == [sys.executable, "-m", "hyperdas_tl", "train", "--seed", "1", "--out", "b"]


def test_reproduce_passes_on_the_same_numbers(tmp_path):
    path = write_original(tmp_path, shift=0.0, recorded_shift=0.0)
    report = reproduce(path, out_dir=tmp_path / "again")
    assert report.ok and report.compared == 2 and report.max_delta == 0.0
    assert (tmp_path / "again" / "reproduce.json").is_file()


def test_reproduce_fails_outside_the_tolerance_and_accepts_within(tmp_path):
    path = write_original(tmp_path, shift=0.01, recorded_shift=0.0)
    assert not reproduce(path, out_dir=tmp_path / "exact").ok
    assert reproduce(path, out_dir=tmp_path / "loose", tolerance=0.02).ok


def test_reproduce_never_writes_over_the_original(tmp_path):
    path = write_original(tmp_path, shift=0.0, recorded_shift=0.0)
    with pytest.raises(ValueError, match="original results folder"):
        reproduce(path, out_dir=path.parent)
    with pytest.raises(ValueError, match="records no provenance"):
        bare = tmp_path / "bare.json"
        bare.write_text(json.dumps({"results": []}))
        reproduce(bare)
