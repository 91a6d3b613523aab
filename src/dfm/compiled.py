"""Numba kernels beside a numpy fallback, for the stages that have both (the rasteriser, the fit's QP).

    KERNELS = CompiledKernels("raster", "DFM_RASTER_BACKEND", build)   # build() -> the compiled kernels
    if KERNELS.choose(backend) == "numba":
        kernel = KERNELS.get()

`build` runs once per process (numba caches the machine code on disk, so later processes only load it);
a failure to import numba or to compile is remembered, and the automatic choice then falls back to numpy
while a forced "numba" raises with the reason. The choice: the `backend` argument, else the environment
variable, else "auto".
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

BACKENDS = ("auto", "numba", "numpy")


class CompiledKernels:
    def __init__(self, what: str, env_var: str, build: Callable[[], Any]) -> None:
        self.what = what
        self.env_var = env_var
        self._build = build
        self._lock = threading.Lock()
        self._kernels: Any = None
        self.error: str | None = None  # why numba is unavailable, once it failed

    def get(self) -> Any:
        """The compiled kernels (built on the first call); RuntimeError with the reason when numba fails."""
        if self._kernels is None and self.error is None:
            with self._lock:
                if self._kernels is None and self.error is None:
                    try:
                        self._kernels = self._build()
                    except Exception as e:  # noqa: BLE001 - any import/compile failure means: use numpy
                        self.error = f"{type(e).__name__}: {e}"
        if self._kernels is None:
            raise RuntimeError(self.error)
        return self._kernels

    def ok(self) -> bool:
        try:
            self.get()
            return True
        except RuntimeError:
            return False

    def available(self) -> tuple[str, ...]:
        """The back ends that work here: always 'numpy', and 'numba' when it imports and compiles."""
        return ("numba", "numpy") if self.ok() else ("numpy",)

    def choose(self, backend: str | None) -> str:
        """'numba' or 'numpy' for `backend` (None: the environment variable, else auto)."""
        name = (backend or os.environ.get(self.env_var, "") or "auto").lower()
        if name not in BACKENDS:
            raise ValueError(f"unknown {self.what} backend {name!r} (auto, numba or numpy)")
        if name == "numpy":
            return "numpy"
        if self.ok():
            return "numba"
        if name == "numba":
            raise RuntimeError(f"the numba {self.what} backend is unavailable: {self.error}")
        return "numpy"
