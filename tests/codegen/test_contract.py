"""Contractions on NumPy's BLAS through cffi (eqsat/runtime/contract.py), against NumPy: the
matrix-vector products split over the cores, skinny products cut into blocks of rows for the
worker pool (eqsat/codegen/c_split.py), transposed and strided operands, alpha and beta."""

import os
import subprocess
import sys

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat.codegen import blas, c_split, pool
from eqsat.runtime import contract

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


def _operand(a: np.ndarray, layout: str) -> np.ndarray:
    return {"contiguous": a.copy(), "fortran": np.asfortranarray(a),
            "sliced": np.pad(a, ((0, 0), (3, 5)))[:, 3:-5]}[layout]  # fmt: skip


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layout", ["contiguous", "fortran", "sliced"])
# An MLP's 10-class layer: past SPLIT with n*k small, so each is cut into blocks of rows (301
# rows: the last block is short); and a product too wide to cut.
@pytest.mark.parametrize("shape", [(301, 512, 10), (301, 10, 512), (512, 301, 10), (64, 300, 300)])
def test_products_match_numpy(dtype, layout, shape):
    m, k, n = shape
    rng = np.random.default_rng(m + k + n)
    a = _operand(rng.standard_normal((m, k)).astype(dtype), layout)
    b = _operand(rng.standard_normal((k, n)).astype(dtype), layout)
    at = _operand(rng.standard_normal((k, m)).astype(dtype), layout)
    b2 = _operand(rng.standard_normal((k, n)).astype(dtype), layout)
    c = rng.standard_normal((m, n)).astype(dtype)
    ma, mb, mat, mb2, mc = (T.tensor(dtype, broadcastable=(False, False)) for _ in range(5))
    outs = [T.dot(ma, mb), mc - 0.5 * T.dot(mat.T, mb), T.dot(mat.T, mb2)]  # (beta 1, then 0)
    fc = theano.function([ma, mb, mat, mb2, mc], outs, mode="c")
    assert sum(s.kind == "blas" for s in fc.thunk.plan.steps if hasattr(s, "kind")) == 3
    a64, b64, at64, b264 = (v.astype("float64") for v in (a, b, at, b2))
    want = [a64 @ b64, c - 0.5 * (at64.T @ b64), at64.T @ b264]
    rtol = 1e-12 if dtype == "float64" else 2e-5
    for got, w in zip(fc(a, b, at, b2, c), want, strict=True):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, w, rtol=rtol, atol=rtol * 30 * np.sqrt(k))


def test_skinny_blocks_stay_in_one_thread_each():
    # A block handed to the pool must be one BLAS call OpenBLAS does not thread itself: the
    # parts of a threaded product inside a chunk would wait on each other in one thread.
    if c_split.functions("float64") is None or pool.blas_jobs() is None:
        pytest.skip("needs the split products and the pool running BLAS's threads")
    jobs = pool.blas_jobs()
    rng = np.random.default_rng(0)
    h, w = rng.standard_normal((256, 512)), rng.standard_normal((512, 10))
    x, y = T.dmatrix(), T.dmatrix()
    f = theano.function([x, y], T.dot(x, y), mode="c")
    assert 256 * 512 * 10 >= c_split.SPLIT  # (split)
    before = jobs()
    got = f(h, w)
    assert jobs() == before
    np.testing.assert_allclose(got, h @ w, rtol=1e-12, atol=1e-12)


def test_the_block_size_is_what_blas_keeps_in_one_thread():
    jobs = pool.blas_jobs()
    if jobs is None or (os.cpu_count() or 1) < 2:
        pytest.skip("needs the pool running BLAS's threads, on 2 cores or more")
    size = c_split.block()
    assert size in c_split.BLOCKS
    for rows, threaded in ((size // 4096, False), (4 * size // 4096, True)):
        before = jobs()
        blas.call_gemm(np.ones((rows, 64)), np.ones((64, 64)))  # (rows x 64) @ (64 x 64)
        assert (jobs() > before) == threaded, (rows, size)


CHILD = """
import numpy as np, eqsat as theano, eqsat.tensor as T
rng = np.random.default_rng(1)
h, w = rng.standard_normal((300, 512)), rng.standard_normal((512, 10))
x, y = T.dmatrix(), T.dmatrix()
print(theano.function([x, y], T.dot(x, y), mode="c")(h, w).tobytes().hex())
"""


def test_split_products_do_not_depend_on_the_number_of_threads():
    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outs.append(done.stdout.strip())
    assert outs[0] == outs[1] and outs[0]


@pytest.mark.parametrize(("ta", "m", "k"), [(True, 512, 300), (False, 300, 512)])
def test_a_split_product_with_beta_0_never_reads_c(ta, m, k):
    # BLAS's contract: with beta 0, C is written, never read (a nan there must not survive).
    if c_split.functions("float64") is None:
        pytest.skip("the split products could not be built")
    gemm, _ = c_split.functions("float64")
    rng = np.random.default_rng(3)
    a = rng.standard_normal((k, m) if ta else (m, k))
    b = rng.standard_normal((k, 10))
    c = np.full((m, 10), np.nan)
    flag = blas.TRANS if ta else blas.NO_TRANS
    ptr = [contract.pointer(v) for v in (a, b, c)]
    gemm(flag, blas.NO_TRANS, m, 10, k, 2.0, ptr[0], a.shape[1], ptr[1], 10, 0.0, ptr[2], 10)
    np.testing.assert_allclose(c, 2 * ((a.T if ta else a) @ b), rtol=1e-12, atol=1e-12)
