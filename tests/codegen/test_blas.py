"""NumPy's BLAS found through cffi: the addresses, the integer width and results against `@`."""

import sys

import cffi
import numpy as np
import pytest

from eqsat.codegen import blas

BACKEND_INDEPENDENT = True  # no compiled function here: one run covers every backend

_ffi = cffi.FFI()


@pytest.fixture(scope="module")
def found() -> blas.Blas:
    result = blas.find()
    if result is None:
        pytest.skip("no CBLAS found next to NumPy (distro or Accelerate build?)")
    return result


def test_int_type_matches_symbols(found):
    assert found.int_type in ("int", "int64_t")
    assert set(found.symbols) == set(blas.FUNCTIONS)
    # One naming pattern for all six, so one integer width fits all of them.
    patterns = {name.replace(f, "{f}") for f, name in found.symbols.items()}
    assert len(patterns) == 1
    if patterns.pop().endswith("64_"):
        assert found.int_type == "int64_t"


def test_addresses_nonzero_and_distinct(found):
    addresses = [found.functions[f] for f in blas.FUNCTIONS]
    assert all(address != 0 for address in addresses)
    assert len(set(addresses)) == len(addresses)


def test_find_is_memoized(found):
    assert blas.find() is found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_library_is_the_one_numpy_loaded(found):
    # Same file means same thread pool and settings as NumPy's own matmul.
    np.ones((2, 2)) @ np.ones((2, 2))
    with open("/proc/self/maps") as maps:
        assert found.path in maps.read()


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("shapes", [((3, 5), (5, 2)), ((64, 128), (128, 32)), ((1, 1), (1, 1))])
def test_gemm_matches_matmul(found, rng, dtype, rtol, shapes):
    a = rng.standard_normal(shapes[0]).astype(dtype)
    b = rng.standard_normal(shapes[1]).astype(dtype)
    c = blas.call_gemm(a, b)
    assert c.dtype == dtype
    np.testing.assert_allclose(c, a @ b, rtol=rtol)


def test_gemm_non_contiguous_input(found, rng):
    a = rng.standard_normal((5, 3)).T
    b = rng.standard_normal((5, 4))[:, ::2]
    np.testing.assert_allclose(blas.call_gemm(a, b), a @ b, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, k, n", [(3, 0, 2), (0, 4, 2), (3, 4, 0), (0, 0, 0)])
def test_gemm_empty_dimensions(found, dtype, m, k, n):
    # K=0 with beta=0 must write zeros over C (call_gemm starts C as NaN to catch a skipped write).
    c = blas.call_gemm(np.ones((m, k), dtype), np.ones((k, n), dtype))
    np.testing.assert_array_equal(c, np.zeros((m, n), dtype))


@pytest.mark.parametrize("prefix, dtype, rtol", [("d", np.float64, 1e-12), ("s", np.float32, 1e-5)])
def test_gemv_and_dot(found, rng, prefix, dtype, rtol):
    # Calls the other four pointers too, so a wrong integer width there would show.
    a = rng.standard_normal((7, 5)).astype(dtype)
    x = rng.standard_normal(5).astype(dtype)
    y = np.full(7, np.nan, dtype)
    real = "double *" if dtype == np.float64 else "float *"

    def ptr(array):
        return _ffi.cast(real, array.ctypes.data)

    def function(name):
        return _ffi.cast(blas.signature(name, found.int_type), found.functions[name])

    gemv = function(prefix + "gemv")
    gemv(blas.ROW_MAJOR, blas.NO_TRANS, 7, 5, 1.0, ptr(a), 5, ptr(x), 1, 0.0, ptr(y), 1)
    np.testing.assert_allclose(y, a @ x, rtol=rtol)

    dot = function(prefix + "dot")
    # w holds column 0 at every other entry, so incY=2 is exercised too.
    v = a[:, 0].copy()
    w = np.ascontiguousarray(a[:, :2]).ravel()
    np.testing.assert_allclose(dot(7, ptr(v), 1, ptr(w), 2), v @ a[:, 0], rtol=rtol)


def test_none_without_a_library(monkeypatch):
    monkeypatch.setattr(blas, "_candidates", lambda: ["/nonexistent/libopenblas.so"])
    assert blas.find.__wrapped__() is None
