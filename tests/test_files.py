"""Atomic writes: all or nothing, ordinary permissions."""

import os

import pytest

from dfm.io.files import atomic_output, atomic_write_text


def test_atomic_output_has_ordinary_permissions(tmp_path):
    atomic_write_text(tmp_path / "out.json", "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_output_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []
