"""File helpers every stage uses: atomic writes (temp file + rename) and content hashes.

Temporary files and folders are hidden beside their target and named after the process that writes
them: `.NAME.dfm-HOST-PID-RANDOM.tmp[SUFFIX]` (HOST: a short hash of the host name). A process killed
with SIGKILL cannot delete its own; the next write of the same target on the same host deletes those
whose process is gone (`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator

# leading dots: a temporary of a temporary (a writer's temp file beside a hidden work file) belongs to the
# same target and process; the first ".dfm-HOST-PID-" names them
_TEMP = re.compile(r"^\.+(?P<name>.+?)\.dfm-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[^.]*\.(?:tmp|old)")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temp_prefix(path: Path) -> str:
    """Name prefix of this process's temporary files for `path`."""
    return f".{path.name}.dfm-{_host_tag()}-{os.getpid()}-"


def process_is_gone(pid: int, since: float | None = None) -> bool:
    """True if no process `pid` runs on this host, or the one that does started after `since` (a
    time.time() value: a reused pid is not the writer of a file last modified before it started)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        pass
    if since is not None:
        started = _process_start_time(pid)
        if started is not None and started > since + 1.0:
            return True
    return False


def _process_start_time(pid: int) -> float | None:
    """Wall-clock start time of a process (Linux /proc), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime, clock ticks after boot
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files/folders of `path` left by dead processes of this host; returns them."""
    path = Path(path)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    host = _host_tag()
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m is None or m["name"] != path.name.lstrip(".") or m["host"] != host or int(m["pid"]) == os.getpid():
            continue
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if not process_is_gone(int(m["pid"]), since=mtime):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on error delete it.

    `suffix` keeps the extension tools rely on (np.savez appends .npz, PyAV picks the muxer from it).
    Leftovers of earlier killed writers of `path` are deleted first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    suffix = suffix if suffix is not None else path.suffix
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp" + suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the permissions a plain open() would have
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path` (an old folder there
    is swapped out and deleted), on error it is deleted and `path` stays as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp"))
    try:
        yield tmp
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=temp_prefix(path), suffix=".old"))
            os.rmdir(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
