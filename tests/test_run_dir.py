"""The output folder checks and the run lock (no model needed)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hyperdas_tl import run_dir
from hyperdas_tl.run_dir import (
    LOCK_FILE,
    OWNER_FILE,
    RunDirLockedError,
    check_out_dir,
    lock_owner,
    run_lock,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_check_out_dir_creates_and_probes(tmp_path, monkeypatch):
    assert check_out_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="--out .*file is a file, not a folder"):
        check_out_dir(tmp_path / "file")
    with pytest.raises(ValueError, match="--out .*file/sub cannot be created \\(Not a directory"):
        check_out_dir(tmp_path / "file" / "sub")
    usage = run_dir.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(run_dir.shutil, "disk_usage", lambda path: usage._replace(free=0))
    with pytest.raises(ValueError, match="--checkpoint-dir .* has only 0 MiB free"):
        check_out_dir(tmp_path, option="--checkpoint-dir")


def test_a_read_only_folder_is_not_writable(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # permission bits do not bind root: fail the probe as they would

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(run_dir.tempfile, "mkstemp", refuse)
    try:
        with pytest.raises(ValueError, match="is not writable \\(Permission denied\\)"):
            check_out_dir(folder)
    finally:
        folder.chmod(0o755)


def test_the_lock_is_exclusive_names_its_holder_and_dies_with_it(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time\n"
         "from hyperdas_tl.run_dir import run_lock\n"
         f"with run_lock({str(tmp_path)!r}):\n"
         "    print('locked', flush=True)\n"
         "    time.sleep(60)\n"],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert lock_owner(tmp_path)["pid"] == holder.pid
        with pytest.raises(
            RunDirLockedError, match=f"in use by another hyperdas_tl run \\(PID {holder.pid}"
        ):
            with run_lock(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel released the dead holder's lock; its stale owner file does not matter
    with run_lock(tmp_path):
        assert lock_owner(tmp_path)["pid"] == os.getpid()
    assert (tmp_path / LOCK_FILE).exists() and not (tmp_path / OWNER_FILE).exists()
