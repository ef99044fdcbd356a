"""Durable writes: a file is either the old version or the complete new one, never half of it.

:func:`write_text_atomically` writes a sibling temporary file, flushes and fsyncs it, then
``os.replace``-s it over the target (one atomic rename on POSIX and Windows) and fsyncs the
folder so the rename itself survives a power cut. :func:`fsync_file` / :func:`fsync_dir` are
the two halves, used by the checkpoint writer for files written by other libraries
(safetensors). No torch here: the CLI imports this before any heavy module.
"""

import os
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o644
"""Permissions of a file :func:`write_text_atomically` creates (an existing file keeps its)."""


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk; a no-op where folders
    cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename is still atomic
    finally:
        os.close(fd)


def write_text_atomically(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Replace ``path`` by ``text`` in one atomic rename (see the module docstring)."""
    return write_bytes_atomically(path, text.encode(encoding))


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Replace ``path`` by ``data`` in one atomic rename (see the module docstring)."""
    path = Path(path)
    mode = path.stat().st_mode & 0o777 if path.exists() else NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        os.chmod(tmp, mode)  # mkstemp creates 0600; keep the mode a plain write would give
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path
