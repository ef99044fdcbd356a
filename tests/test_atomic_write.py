"""Durable writes: the old file or the whole new one, never half."""

import os

import pytest

from hyperdas_tl import atomic_write
from hyperdas_tl.atomic_write import write_text_atomically


def test_replaces_in_one_rename_and_keeps_the_mode(tmp_path):
    path = tmp_path / "results.json"
    write_text_atomically(path, "one")
    assert path.read_text() == "one" and path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o640)
    write_text_atomically(path, "two")
    assert path.read_text() == "two" and path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_failure_before_the_rename_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    write_text_atomically(path, "old")

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_write.os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomically(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    assert os.path.exists(path)
