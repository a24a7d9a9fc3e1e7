"""Global settings, read at graph-build and compile time (Theano's `theano.config`)."""

from __future__ import annotations

import os
import shutil

import numpy as np

_FLOAT_DTYPES = ("float32", "float64")
_MODES = ("py", "c")


class _Config:
    """Attribute bag with validation on the settings users change most."""

    def __init__(self) -> None:
        self._floatX = os.environ.get("EQSAT_FLOATX", "float64")
        self._mode = os.environ.get("EQSAT_MODE") or _default_mode()
        # The optimizer: "eqsat" (equality saturation) or None; its bounds and fast_math.
        self.optimizer: str | None = os.environ.get("EQSAT_OPTIMIZER", "eqsat") or None
        self.fast_math = False
        self.opt_iterations = 30
        self.opt_nodes = 20_000
        self.opt_seconds = 2.0
        # Inserting a graph costs time superlinear in its size with egglog 13.2 (0.9 s at 500
        # ops, 3.8 s at 950, 15 s at 1,400) and egglog cannot be interrupted; extraction is
        # quadratic on long chains too (0.9 s at 2,000 ops). Larger graphs are left as they are.
        self.opt_max_graph = 600
        # Optimized graphs are kept in compiledir, keyed by graph, settings and eqsat's code.
        self.opt_cache = os.environ.get("EQSAT_OPT_CACHE", "1") != "0"
        # Who runs the threaded parts of BLAS calls: "eqsat" (the worker pool of the compiled
        # loops, eqsat/codegen/pool.py; for every caller of NumPy's OpenBLAS in the process,
        # from the first compiled function on) or "blas" (OpenBLAS's own threads, which spin
        # on the cores for 0.1 s after each call). Read once, when it is first needed.
        self.blas_threads = os.environ.get("EQSAT_BLAS_THREADS", "eqsat")
        self.compiledir = os.environ.get(
            "EQSAT_COMPILEDIR",
            os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "eqsat"),
        )

    @property
    def floatX(self) -> str:  # noqa: N802 - Theano's name
        return self._floatX

    @floatX.setter
    def floatX(self, value: str) -> None:  # noqa: N802
        value = str(np.dtype(value))
        if value not in _FLOAT_DTYPES:
            raise ValueError(f"config.floatX must be one of {_FLOAT_DTYPES}, got {value!r}")
        self._floatX = value

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        self._mode = check_mode(value)


def _default_mode() -> str:
    """The C backend where a C compiler is found (as eqsat.codegen.compile looks), else "py"."""
    if os.environ.get("CC") or any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        return "c"
    return "py"


def check_mode(mode: str) -> str:
    """Return `mode` if eqsat can run it, else raise a ValueError listing what it can."""
    if mode in _MODES:
        return mode
    if mode == "cuda":
        raise NotImplementedError(
            f"mode={mode!r} is not built yet; the NumPy reference backend mode='py' is available"
        )
    raise ValueError(f"unknown mode {mode!r}; expected one of {_MODES}")


config = _Config()
