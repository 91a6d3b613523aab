"""Advisory file locks (flock) between dfm processes on one machine.

    with output_lock(out):          # a second job writing the same output fails at once (InputError)
        ...
    with exclusive_lock(lock_path): # waits: e.g. one analysis per video, the others then read its cache
        ...

The lock file is hidden beside what it protects (`.NAME.lock`) and holds the owner's pid (for the
message). flock locks die with their process, so a killed job never leaves a lock held; the file itself
is deleted by its owner on release. Locks are per open file, so two threads of one process exclude each
other too. (flock is not reliable over NFS; workspaces and outputs are expected on a local disk.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from dfm.errors import InputError


def lock_path_for(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def exclusive_lock(lock_file: str | os.PathLike, *, wait: bool = True,
                   on_wait: Callable[[int | None], None] | None = None) -> Iterator[Path]:
    """Hold an exclusive flock on `lock_file` (created if missing) for the block.

    wait=False: raise BlockingIOError at once when another process holds it. on_wait(owner_pid) is
    called once before blocking, so a caller can say what it waits for.
    """
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    announced = False
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise
                if on_wait is not None and not announced:
                    on_wait(_read_pid(lock_file))
                    announced = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            # The previous owner may have deleted the file between our open and our flock: then we
            # hold a lock on an orphan inode that nobody else sees. Start again on the current file.
            try:
                same = os.fstat(fd).st_ino == os.stat(lock_file).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
        except BaseException:
            os.close(fd)
            raise
        break
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock_file
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_file)  # while still holding it: waiters re-open the new file (see above)
        os.close(fd)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Claim `path` as this job's output; InputError at once if another dfm job is writing it."""
    lock = lock_path_for(path)
    held = contextlib.ExitStack()
    try:
        held.enter_context(exclusive_lock(lock, wait=False))
    except BlockingIOError:
        pid = _read_pid(lock)
        who = f" (pid {pid})" if pid else ""
        raise InputError(f"another dfm job{who} is writing {path}; wait for it to finish or choose another output") from None
    with held:
        yield lock


def _read_pid(lock_file: Path) -> int | None:
    for _ in range(3):  # the owner writes its pid just after locking
        with contextlib.suppress(OSError, ValueError):
            text = lock_file.read_text().strip()
            if text:
                return int(text)
        time.sleep(0.01)
    return None
