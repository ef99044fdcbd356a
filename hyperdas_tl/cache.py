"""Where hyperdas_tl keeps what it builds: converted weights, RAVEL downloads, built instances.

The location is ``$HYPERDAS_TL_CACHE`` if set, else ``$XDG_CACHE_HOME/hyperdas_tl``, else
``~/.cache/hyperdas_tl``. Nothing in it is needed for correctness: delete it at any time.
"""

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

CACHE_ENV_VAR = "HYPERDAS_TL_CACHE"


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it), created if missing."""
    root = os.environ.get(CACHE_ENV_VAR)
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "hyperdas_tl"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def build_atomically(target: Path, build: Callable[[Path], None]) -> Path:
    """Build a folder with ``build(tmp)`` and move it to ``target`` in one rename.

    Two processes racing to fill the same cache entry both succeed; the loser's copy is
    discarded. A build that raises leaves nothing behind.
    """
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not target.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
