"""The BLAS that NumPy ships: find its library and hand out CBLAS function addresses.

Generated C kernels get these addresses at load time, so contractions run in the same BLAS (and
the same thread pool) as NumPy's own `@`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import cffi
import numpy as np

FUNCTIONS = ("dgemm", "sgemm", "dgemv", "sgemv", "ddot", "sdot")

# CBLAS enum values (cblas.h); enums are passed as C int whatever the BLAS integer width.
ROW_MAJOR = 101
NO_TRANS = 111
TRANS = 112

# Symbol patterns, most specific first. Only the "64_" suffix proves ILP64 by itself.
_PATTERNS = ("scipy_cblas_{f}64_", "cblas_{f}64_", "cblas_{f}")

# C prototypes; "{t}" is the real type, "{i}" the BLAS integer, "{name}" the symbol or "(*)".
_PROTOTYPES = {
    "gemm": "void {name}(int, int, int, {i}, {i}, {i}, {t}, const {t} *, {i}, const {t} *, {i},"
    " {t}, {t} *, {i})",
    "gemv": "void {name}(int, int, {i}, {i}, {t}, const {t} *, {i}, const {t} *, {i}, {t}, {t} *,"
    " {i})",
    "dot": "{t} {name}({i}, const {t} *, {i}, const {t} *, {i})",
}

_LIB_SUFFIXES = (".so", ".dylib", ".dll")

# dlopen'd libraries stay referenced for the life of the process: the addresses handed out
# point into them.
_HANDLES: list[object] = []

_ffi = cffi.FFI()


@dataclass(frozen=True)
class Blas:
    """A CBLAS library and the addresses of the functions the C backend calls."""

    path: str
    int_type: str  # "int64_t" (ILP64) or "int" (LP64)
    functions: dict[str, int]
    symbols: dict[str, str]


def signature(function: str, int_type: str, name: str = "(*)") -> str:
    """C declaration of a CBLAS function (default: its function-pointer type)."""
    real = {"d": "double", "s": "float"}[function[0]]
    return _PROTOTYPES[function[1:]].format(name=name, t=real, i=int_type)


@functools.cache
def find() -> Blas | None:
    """The CBLAS NumPy uses, or None when none is found (contractions then stay in NumPy)."""
    ilp64 = _config_ilp64()
    for path in _candidates():
        for pattern in _PATTERNS:
            int_type = "int64_t" if pattern.endswith("64_") or ilp64 else "int"
            found = _load(path, pattern, int_type)
            if found is not None:
                return found
    return None


def call_gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for 2-D float64 or float32 arrays through the found cblas ?gemm (row-major)."""
    blas = find()
    if blas is None:
        raise RuntimeError("no CBLAS library found")
    dtype = np.result_type(a, b)
    if dtype not in (np.float64, np.float32) or a.ndim != 2 or b.ndim != 2:
        raise TypeError(f"call_gemm takes 2-D float32/float64 arrays, got {a.dtype}, {b.dtype}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"shapes {a.shape} and {b.shape} do not contract")
    a = np.ascontiguousarray(a, dtype)
    b = np.ascontiguousarray(b, dtype)
    (m, k), n = a.shape, b.shape[1]
    # NaN-filled so a BLAS that leaves C unwritten shows up: beta=0 must overwrite every entry.
    c = np.full((m, n), np.nan, dtype)
    function = "dgemm" if dtype == np.float64 else "sgemm"
    gemm = _ffi.cast(signature(function, blas.int_type), blas.functions[function])
    # BLAS requires leading dimensions >= 1 even for empty matrices.
    lda, ldb, ldc = max(1, k), max(1, n), max(1, n)
    pa, pb, pc = _pointer(a), _pointer(b), _pointer(c)
    gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1.0, pa, lda, pb, ldb, 0.0, pc, ldc)
    return c


def _pointer(array: np.ndarray) -> object:
    """A C pointer to a float64/float32 array's data (the array must outlive the call)."""
    real = "double *" if array.dtype == np.float64 else "float *"
    return _ffi.cast(real, array.ctypes.data)


def _candidates() -> list[str]:
    """BLAS-looking shared libraries in the places a NumPy build keeps the one it links."""
    package = Path(np.__file__).resolve().parent
    dirs = [package.parent / "numpy.libs", package / ".libs", package / ".dylibs"]
    # The build-time lib directory; only meaningful for distro builds (wheels record a path on
    # the build machine that does not exist here).
    dirs += [Path(d) for d in _config_values("lib directory") if os.path.isabs(d)]
    found: list[str] = []
    for directory in dirs:
        if not directory.is_dir():
            continue
        names = sorted(
            p.name
            for p in directory.iterdir()
            if "blas" in p.name.lower() and any(s in p.name for s in _LIB_SUFFIXES)
        )
        # OpenBLAS first: in a system lib directory a reference libblas may sit beside it.
        names.sort(key=lambda name: "openblas" not in name.lower())
        found += [str(directory / name) for name in names if str(directory / name) not in found]
    return found


def _load(path: str, pattern: str, int_type: str) -> Blas | None:
    """The six functions from one library under one naming pattern, or None if any is missing."""
    ffi = cffi.FFI()
    symbols = {f: pattern.format(f=f) for f in FUNCTIONS}
    ffi.cdef("\n".join(signature(f, int_type, name) + ";" for f, name in symbols.items()))
    try:
        lib = ffi.dlopen(path)
    except OSError:
        return None
    try:
        functions = {f: int(ffi.cast("uintptr_t", getattr(lib, s))) for f, s in symbols.items()}
    except (AttributeError, cffi.FFIError):
        return None
    _HANDLES.append((ffi, lib))
    return Blas(path, int_type, functions, symbols)


def _config_values(key: str) -> list[str]:
    """Values of `key` across NumPy's build-time BLAS/LAPACK entries (empty on old NumPy)."""
    config = getattr(getattr(np, "__config__", None), "CONFIG", None) or {}
    deps = config.get("Build Dependencies", {})
    values = [str(dep.get(key, "")) for dep in deps.values() if isinstance(dep, dict)]
    return [v for v in values if v and v != "unknown"]


def _config_ilp64() -> bool:
    """Whether NumPy's build config says its OpenBLAS uses 64-bit integers."""
    return any("USE64BITINT" in v for v in _config_values("openblas configuration"))
