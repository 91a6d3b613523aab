"""Checks a job runs on its output paths before any heavy work, each failing with one InputError line.

    check_output_file(out, overwrite=False)    # a file name, in a folder we can create files in
    check_writable_folder(workspace, "workspace")
    check_free_space(out.parent, need_bytes, "the output")

Writability is tested by creating (and deleting) a file, not by permission bits: root passes every
os.access test, yet cannot create files in /proc or on a read-only mount.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path

from dfm.errors import InputError


def nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists (what a mkdir -p would create in)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe_write(base: Path, target: Path, what: str) -> None:
    """Create and remove a file in `base`: root passes every os.access test, so only trying tells."""
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".dfm-write-test-")
    except OSError as e:
        raise InputError(f"cannot write the {what} {target}: {_reason(e, base)}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_writable_folder(folder: str | os.PathLike, what: str) -> Path:
    """`folder` exists or can be created, and files can be created in it; returns it."""
    folder = Path(folder)
    base = nearest_existing(folder)
    if not base.is_dir():
        raise InputError(f"cannot use {folder} as the {what}: {base} is a file, not a folder")
    _probe_write(base, folder, what)
    return folder


def check_output_file(path: str | os.PathLike, *, what: str = "output", overwrite: bool = False) -> Path:
    """`path` can be written as a new file (or replaced, with overwrite); returns it."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"the {what} {path} is a folder: give a file name, e.g. {path / 'edited.mp4'}")
    if path.name in ("", ".", ".."):
        raise InputError(f"the {what} {path} is not a file name")
    base = nearest_existing(path.parent)
    if not base.is_dir():
        raise InputError(f"cannot write the {what} {path}: {base} is a file, not a folder")
    if path.exists() and not overwrite:
        raise InputError(f"the {what} {path} exists; pass --overwrite to replace it")
    _probe_write(base, path, what)
    return path


def check_free_space(folder: str | os.PathLike, need_bytes: int, what: str) -> None:
    """At least `need_bytes` free on the disk that holds `folder` (or its nearest existing ancestor)."""
    base = nearest_existing(Path(folder))
    try:
        free = shutil.disk_usage(base).free
    except OSError:
        return  # no figure (an odd file system): let the write itself fail if it must
    if free < need_bytes:
        raise InputError(f"not enough disk space for {what} in {base}: about {_size(need_bytes)} needed, "
                         f"{_size(free)} free")


def _reason(e: OSError, where: Path) -> str:
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied in {where}"
    if e.errno == errno.EROFS:
        return f"{where} is on a read-only file system"
    if e.errno == errno.ENOSPC:
        return f"no space left on the disk of {where}"
    return f"files cannot be created in {where} ({e.strerror or e})"


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
