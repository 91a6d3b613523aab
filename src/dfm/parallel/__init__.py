"""Chunked execution of one video's analysis and rendering on a local process pool or on Ray."""

from dfm.parallel.options import ParallelOptions, machine_cores

__all__ = ["ParallelOptions", "machine_cores"]
