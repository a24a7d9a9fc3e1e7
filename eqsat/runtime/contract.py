"""Contractions (dot, gemm, gemv) on the BLAS NumPy ships, called through cffi.

alpha, beta and transposed operands go to BLAS as they are: `W - lr * dot(x.T, g)` is one
gemm reading x where it lies, not a transpose, a product, a scaling and a subtraction. An
operand BLAS can't take as it is (no unit stride on either axis) is copied first. Other
dtypes than float32/float64, a missing CBLAS, alpha or beta of 0 and empty operands (where BLAS
skips a term: an inf or nan NumPy propagates, or beta's scaling of y when op(a) has no rows) use
the op's NumPy implementation instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import cffi
import numpy as np

from eqsat.codegen import blas, c_split, pool
from eqsat.graph import Apply
from eqsat.runtime.interp import run_node

_ffi = cffi.FFI()


def address(ffi: cffi.FFI, a: np.ndarray) -> Any:
    """A char* to the first element of any array (ffi.from_buffer takes contiguous ones only)."""
    return ffi.cast("char *", a.ctypes.data)


def pointer(a: np.ndarray) -> Any:
    """A char* to an array's first element (from_buffer is 4x faster, for contiguous data)."""
    return _ffi.from_buffer(a) if a.flags.c_contiguous else address(_ffi, a)


@functools.cache
def _functions(dtype: str) -> dict[str, Any] | None:
    found = blas.find()
    if found is None:
        return None
    p, real = ("d", "double") if dtype == "float64" else ("s", "float")
    out = {}
    for f in ("gemm", "gemv", "dot"):
        # void* parameters take the char* of `pointer` without a cast per call
        sig = blas.signature(p + f, found.int_type)
        sig = sig.replace(f"const {real} *", "void *").replace(f"{real} *", "void *")
        out[f] = _ffi.cast(sig, found.functions[p + f])
    gemm = out.pop("gemm")
    out["gemm"] = lambda *args: gemm(blas.ROW_MAJOR, *args)
    out["after_gemm"] = pool.after_blas()  # (BLAS threads its products, not its gemv here)
    split = c_split.functions(dtype)
    if split is not None:  # products and gemv cut into shares for the cores
        out["gemm"], out["gemv"] = split
    return out


def _matrix(a: np.ndarray, trans: bool) -> tuple[np.ndarray, bool, int]:
    """a as a row-major BLAS operand: (array with unit-stride rows, transpose flag, ld)."""
    size, (rows, cols) = a.itemsize, a.shape
    s0, s1 = a.strides
    if s1 == size and s0 % size == 0 and s0 >= size * max(1, cols):
        return a, trans, s0 // size
    if s0 == size and s1 % size == 0 and s1 >= size * max(1, rows):
        return a.T, not trans, s1 // size  # column-major: BLAS reads it as the transpose
    return np.ascontiguousarray(a), trans, max(1, cols)


def _vector(x: np.ndarray) -> tuple[np.ndarray, int]:
    step = x.strides[0] // x.itemsize if x.strides[0] % x.itemsize == 0 else 0
    if step > 0:
        return x, step
    return np.ascontiguousarray(x), 1


def _flag(trans: bool) -> int:
    return blas.TRANS if trans else blas.NO_TRANS


def _gemm(fns, out, c, alpha, a, ta, b, tb, beta) -> None:
    """out = beta*c + alpha*op(a)op(b); c is copied into out first (it may broadcast)."""
    a, ta, lda = _matrix(a, ta)
    b, tb, ldb = _matrix(b, tb)
    m, k = a.shape[::-1] if ta else a.shape
    n = b.shape[0] if tb else b.shape[1]
    if c is not None:
        np.copyto(out, c)
    fns["gemm"](_flag(ta), _flag(tb), m, n, k, alpha, pointer(a), lda, pointer(b), ldb, beta,
                pointer(out), max(1, n))  # fmt: skip
    fns["after_gemm"]()


def _gemv(fns, out, y, alpha, a, ta, x, beta) -> None:
    """out = beta*y + alpha*op(a)x."""
    a, ta, lda = _matrix(a, ta)
    x, incx = _vector(x)
    if y is not None:
        np.copyto(out, y)
    fns["gemv"](blas.ROW_MAJOR, _flag(ta), a.shape[0], a.shape[1], alpha, pointer(a), lda,
                pointer(x), incx, beta, pointer(out), 1)  # fmt: skip


def sweep_operands(
    node: Apply, m: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, int, np.ndarray, int]:
    """A row pass's matrix with unit-stride rows and its pitch, and its forward vector with its
    step (in elements), copied where BLAS can't read them as they are."""
    if m.ndim != 2 or v.ndim != 1 or m.shape[1] != v.shape[0]:
        raise ValueError(
            f"{node.op}: inner dimensions differ: shapes {m.shape} and {v.shape} "
            "(trans_a=False, trans_b=False)"
        )
    a, flipped, ld = _matrix(m, False)
    if flipped:  # column-major: a row pass needs the rows themselves
        a, ld = np.ascontiguousarray(m), max(1, m.shape[1])
    v, step = _vector(v)
    return a, ld, v, step


def _inner(a_shape: tuple, ta: bool, b_shape: tuple, tb: bool) -> tuple[int, int]:
    ka = a_shape[0] if ta else a_shape[-1]
    kb = (b_shape[-1] if tb else b_shape[0]) if len(b_shape) == 2 else b_shape[0]
    return ka, kb


def _check_inner(node: Apply, a: np.ndarray, ta: bool, b: np.ndarray, tb: bool) -> None:
    ka, kb = _inner(a.shape, ta, b.shape, tb)
    if ka != kb:
        raise ValueError(
            f"{node.op}: inner dimensions differ: shapes {a.shape} and {b.shape} "
            f"(trans_a={ta}, trans_b={tb})"
        )


def contraction(node: Apply) -> Callable[..., np.ndarray] | None:
    """A function of the node's input arrays computing it through BLAS, or None where BLAS
    can't (the caller runs the op's NumPy implementation)."""
    dtype = node.out.dtype
    if dtype not in ("float32", "float64") or any(
        i.dtype != dtype for i in node.inputs if node.op == "dot" or i.ndim > 0
    ):
        return None
    fns = _functions(dtype)
    if fns is None:
        return None
    np_dtype, p = np.dtype(dtype), node.p

    def check(a: np.ndarray, ta: bool, b: np.ndarray, tb: bool) -> None:
        _check_inner(node, a, ta, b, tb)

    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        check(a, False, b, False)
        if not (a.size and b.size):  # BLAS returns early on empty operands: NumPy's result
            return run_node(node, [a, b])
        if a.ndim == 2 and b.ndim == 2:
            out = np.empty((a.shape[0], b.shape[1]), np_dtype)
            _gemm(fns, out, None, 1.0, a, False, b, False, 0.0)
        elif a.ndim == 2:
            out = np.empty(a.shape[0], np_dtype)
            _gemv(fns, out, None, 1.0, a, False, b, 0.0)
        elif b.ndim == 2:
            out = np.empty(b.shape[1], np_dtype)
            _gemv(fns, out, None, 1.0, b, True, a, 0.0)
        else:
            (x, ix), (y, iy) = _vector(a), _vector(b)
            out = np.array(fns["dot"](len(x), pointer(x), ix, pointer(y), iy), np_dtype)
        return out

    def gemm_or_gemv(c, alpha, a, b, beta) -> np.ndarray:
        if float(alpha) == 0 or float(beta) == 0 or not (a.size and b.size):
            return run_node(node, [c, alpha, a, b, beta])  # where BLAS would skip a term
        alpha, beta = float(alpha), float(beta)
        ta, tb = bool(p["trans_a"]), bool(p.get("trans_b", False))
        check(a, ta, b, tb)
        if node.op == "gemm":
            shape = (a.shape[1] if ta else a.shape[0], b.shape[0] if tb else b.shape[1])
            out = np.empty(shape, np_dtype)
            _gemm(fns, out, c, alpha, a, ta, b, tb, beta)
        else:
            out = np.empty(a.shape[1] if ta else a.shape[0], np_dtype)
            _gemv(fns, out, c, alpha, a, ta, b, beta)
        return out

    return dot if node.op == "dot" else gemm_or_gemv


def gemm_in_place(node: Apply) -> tuple[Callable[..., bool], Callable[..., np.ndarray]] | None:
    """For a gemm allowed to overwrite its added term c (eqsat/codegen/inplace.py): `check`,
    which raises the same errors as `contraction(node)` and says whether c can take the result
    itself, and `run`, which writes it there and returns c. None where BLAS can't compute it."""
    if contraction(node) is None:
        return None
    fns, np_dtype = _functions(node.out.dtype), np.dtype(node.out.dtype)
    ta, tb = bool(node.p["trans_a"]), bool(node.p.get("trans_b", False))

    def check(c, alpha, a, b, beta) -> bool:
        _check_inner(node, a, ta, b, tb)
        shape = (a.shape[1] if ta else a.shape[0], b.shape[0] if tb else b.shape[1])
        return (
            float(alpha) != 0 and float(beta) != 0 and a.size > 0 and b.size > 0
            and c.shape == shape and c.dtype == np_dtype and a.dtype == np_dtype
            and b.dtype == np_dtype and c.flags.c_contiguous and c.flags.writeable
            and not np.may_share_memory(c, a) and not np.may_share_memory(c, b)
        )  # fmt: skip

    def run(c, alpha, a, b, beta) -> np.ndarray:
        _gemm(fns, c, None, float(alpha), a, ta, b, tb, float(beta))
        return c

    return check, run
