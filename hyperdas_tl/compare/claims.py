"""Several processes sharing one comparison folder: each (method, seed) unit is claimed by one.

Run the same comparison command N times on the same ``out_dir`` (say, one process per core, one
thread each) and the units are shared out: a process runs a unit only while it holds that
unit's lock (``<out>/.locks/<unit>.lock``, a ``filelock`` lock, released by the OS when its
holder dies), skips the units another process holds, and at the end waits for those and reads
their records; a unit whose holder died without writing its records is run by whoever claims it
next. The layer choice, ``run.json`` and the report files are each written under a lock of their
own, so every process ends with the same complete report.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path

LOCKS_DIR = ".locks"


def lock_path(out: Path, name: str) -> Path:
    """The lock file of ``name`` (a unit name, or ``"layer_choice"``, ``"run"``, ``"report"``)."""
    return out / LOCKS_DIR / f"{name}.lock"


@contextlib.contextmanager
def claim(out: Path, name: str, *, wait: bool) -> Iterator[bool]:
    """Hold ``name``'s lock in ``out`` for the ``with`` block.

    Yields True when this process holds it; with ``wait=False`` yields False at once (holding
    nothing) when another process does. ``wait=True`` blocks until it is free.
    """
    from filelock import FileLock, Timeout

    path = lock_path(out, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
