"""Several processes sharing one folder of work: each item (a comparison's (method, seed) unit, a
chunk of an instance's prompts) is claimed by one, through a ``filelock`` lock.

Comparisons (:mod:`hyperdas_tl.compare`): run the same comparison command N times on the same
``out_dir`` (say, one process per core, one thread each) and the units are shared out: a process
runs a unit only while it holds that unit's lock (``<out>/.locks/<unit>.lock``, a ``filelock``
lock, released by the OS when its holder dies), skips the units another process holds, and at
the end waits for those and reads their records; a unit whose holder died without writing its
records is run by whoever claims it next. The layer choice, ``run.json`` and the report files
are each written under a lock of their own, and the candidate layers of a layer choice are
shared out like units, so every process ends with the same complete report. Instance builds
(:mod:`hyperdas_tl.data.instance_decoding`) share out their prompts in chunks the same way.
"""

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

logger = logging.getLogger(__name__)

LOCKS_DIR = ".locks"
T = TypeVar("T")
R = TypeVar("R")


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


def share_out(
    out: Path,
    items: Sequence[T],
    name: Callable[[T], str],
    finished: Callable[[T], R | None],
    run: Callable[[T], R],
) -> list[R]:
    """``[result of each item]``, shared with any other process doing the same in ``out``.

    Each item is claimed by name: an item this process holds is read (``finished(item)``, None
    when it is not done) or run (``run(item)``, which stores what ``finished`` reads); items
    another process holds are waited for after the rest, then read, or run when their holder
    left without finishing them.
    """
    results: dict[int, R] = {}
    elsewhere = []
    for i, item in enumerate(items):
        with claim(out, name(item), wait=False) as mine:
            if not mine:
                logger.info("%s: held by another process; read when it is done", name(item))
                elsewhere.append(i)
                continue
            done = finished(item)
            results[i] = done if done is not None else run(item)
    for i in elsewhere:
        with claim(out, name(items[i]), wait=True):
            done = finished(items[i])
            results[i] = done if done is not None else run(items[i])
    return [results[i] for i in range(len(items))]
