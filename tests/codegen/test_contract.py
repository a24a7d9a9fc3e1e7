"""Contractions on NumPy's BLAS through cffi (eqsat/runtime/contract.py), against NumPy: the
matrix-vector products split over the cores, transposed and strided operands, alpha and beta."""

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat.codegen import blas

BACKEND_INDEPENDENT = True  # compares the backends itself

pytestmark = pytest.mark.skipif(blas.find() is None, reason="no CBLAS next to NumPy")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layout", ["contiguous", "fortran", "sliced"])
@pytest.mark.parametrize("rows", [1, 3, 400])  # 400 x 784 is past the split threshold
def test_matrix_vector_products_match_numpy(dtype, layout, rows):
    rng = np.random.default_rng(rows)
    a = rng.standard_normal((rows, 900)).astype(dtype)
    a = {"contiguous": a[:, :784].copy(), "fortran": np.asfortranarray(a[:, :784]),
         "sliced": a[:, 100:884]}[layout]  # fmt: skip
    v, u = rng.standard_normal(784).astype(dtype), rng.standard_normal(rows).astype(dtype)
    m = T.tensor(dtype, broadcastable=(False, False))
    x, y = T.tensor(dtype, broadcastable=(False,)), T.tensor(dtype, broadcastable=(False,))
    outs = [T.dot(m, x), T.dot(y, m), 2 * T.dot(m, x) + y]
    fc = theano.function([m, x, y], outs, mode="c")
    assert any(s.kind == "blas" for s in fc.thunk.plan.steps if hasattr(s, "kind"))
    rtol = 1e-12 if dtype == "float64" else 2e-5
    want = [a.astype("float64") @ v, u @ a.astype("float64"), 2 * (a.astype("float64") @ v) + u]
    for got, w in zip(fc(a, v, u), want, strict=True):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, w, rtol=rtol, atol=rtol * 30)
