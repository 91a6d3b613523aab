"""Keep native libraries' log lines (MediaPipe's glog/absl, TensorFlow Lite) off the user's terminal.

They write straight to file descriptor 2 from C++, past Python's sys.stderr, and ignore -q. While a
`quiet_native_stderr()` block runs, fd 2 points at /dev/null; Python's own messages written inside the
block are lost too, so keep such blocks around the native calls only. `dfm --verbose` sets
DFM_VERBOSE=1, which leaves stderr alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

VERBOSE_ENV = "DFM_VERBOSE"


def native_logs_wanted() -> bool:
    return os.environ.get(VERBOSE_ENV, "").lower() in ("1", "true", "yes")


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence fd 2 for the block (unless DFM_VERBOSE is set or fd 2 cannot be duplicated)."""
    if native_logs_wanted():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
