"""Hand the process's free heap back to the OS before a step that needs a lot of memory at once.

The C2PA library (c2pa-rs under `c2pa-python`) copies the whole asset into memory while it embeds a
manifest (an intermediate buffer that grows to about twice the file). At the end of a long edit the
process also holds the heap left over from rendering: hundreds of MB of freed frame buffers that glibc
keeps in its arenas (their pages stay resident, and the library's large buffers are mmapped apart from
them, so they cannot reuse that space). Collecting garbage and trimming the heap first keeps the signing
step's peak near the rendering step's instead of on top of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

__all__ = ["release_free_memory", "resident_bytes"]


def resident_bytes() -> int | None:
    """The process's resident set size now (bytes), None where /proc is not available."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def release_free_memory() -> int | None:
    """Run the garbage collector and return the C heap's free pages to the OS (glibc `malloc_trim`);
    the resident bytes this freed (None where it cannot tell, e.g. without glibc or /proc)."""
    before = resident_bytes()
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    after = resident_bytes()
    return None if before is None or after is None or trim is None else max(0, before - after)


def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn
