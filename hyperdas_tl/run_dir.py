"""A run's output folder (``--out``): checked before any work starts, locked while a run uses it.

- :func:`check_out_dir` creates the folder if needed and proves it is writable (by writing a
  file, which is what counts on read-only mounts and for root) and has at least
  :data:`MIN_FREE_BYTES` free, so a read-only or full ``--out`` fails in a second, not after
  training.
- :func:`run_lock` holds an exclusive lock on ``<out>/.hyperdas_tl.lock`` (``filelock``:
  ``flock`` on Unix, released by the kernel when the process dies, even by SIGKILL) for the
  whole run; a second run on the same folder refuses at once with :class:`RunDirLockedError`
  naming the other run's PID (recorded in ``<out>/.hyperdas_tl.lock.owner``).

Light on purpose (no torch): the CLI runs these before the heavy imports.
"""

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

MIN_FREE_BYTES = 100 * 2**20
"""Free space ``--out`` must have before a run starts (a HyperDAS training checkpoint of
SmolLM2-135M with N = 4 is about 250 MB: the check is a floor, not a guarantee)."""
LOCK_FILE = ".hyperdas_tl.lock"
OWNER_FILE = ".hyperdas_tl.lock.owner"


class RunDirLockedError(RuntimeError):
    """Another run holds the output folder's lock."""


def check_out_dir(
    out: str | os.PathLike, *, option: str = "--out", min_free_bytes: int = MIN_FREE_BYTES
) -> Path:
    """Create ``out`` if missing and raise ``ValueError`` (naming ``option`` and the folder)
    unless it is a writable folder with ``min_free_bytes`` free; returns the path."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{option} {out} cannot be created ({error.strerror})") from error
    try:
        fd, probe = tempfile.mkstemp(prefix=".hyperdas_tl-write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ValueError(f"{option} {out} is not writable ({error.strerror})") from error
    free = shutil.disk_usage(out).free
    if free < min_free_bytes:
        raise ValueError(
            f"{option} {out} has only {free / 2**20:.0f} MiB free; a run needs at least "
            f"{min_free_bytes / 2**20:.0f} MiB (free some space or choose another {option})"
        )
    return out


def lock_owner(out: str | os.PathLike) -> dict | None:
    """What the lock's holder recorded about itself (pid, start time, command), if readable."""
    try:
        return json.loads((Path(out) / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def run_lock(out: str | os.PathLike, *, option: str = "--out") -> Iterator[Path]:
    """Hold ``out``'s run lock for the ``with`` block; raise :class:`RunDirLockedError` at once
    if another process holds it."""
    from filelock import FileLock, Timeout

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        owner = lock_owner(out) or {}
        pid = owner.get("pid", "unknown")
        since = owner.get("started")
        started = f", started {since}" if since else ""
        raise RunDirLockedError(
            f"{option} {out} is in use by another hyperdas_tl run (PID {pid}{started}); wait "
            f"for it to finish or choose another {option}"
        ) from None
    try:
        owner = {
            "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "argv": sys.argv,
        }
        (out / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")
        yield out
    finally:
        with contextlib.suppress(OSError):
            (out / OWNER_FILE).unlink()
        lock.release()
