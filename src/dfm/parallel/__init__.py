"""Chunked execution of one video's analysis and rendering on a local process pool or on Ray."""

from dfm.parallel.chunks import Chunk, plan_chunks
from dfm.parallel.executor import (ChunkFailed, LocalExecutor, SerialExecutor, blas_beside_workers, make_executor,
                                   run_item)
from dfm.parallel.options import ParallelOptions, machine_cores

__all__ = ["Chunk", "ChunkFailed", "LocalExecutor", "blas_beside_workers", "ParallelOptions", "SerialExecutor", "machine_cores", "make_executor",
           "plan_chunks", "run_item"]
