"""Nested loops on shapes large enough that their rows go to the worker pool in chunks
(eqsat/codegen/c.py): reductions that keep the innermost axis (column sums, each chunk its own
row of partials), reductions along it (row sums) and broadcasting loops, on contiguous and
transposed operands: right against NumPy, nan kept, and the same bits whatever the number of
threads."""

import os
import subprocess
import sys

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat.codegen import c, pool
from eqsat.codegen.compile import compiler

BACKEND_INDEPENDENT = True  # compiles in mode "c" and checks against NumPy itself
pytestmark = pytest.mark.skipif(compiler() is None, reason="needs a C compiler")

# exp makes the kernel one of transcendental math: split from c.PARALLEL elements.
ROWS, COLS = 600, 300


def _reduce(op, x, axis, keepdims):
    return getattr(T, op)(T.exp(x), axis=axis, keepdims=keepdims)


@pytest.mark.parametrize("op", ["sum", "max", "min", "prod", "mean"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_column_reductions_match_numpy(op, keepdims, dtype):
    assert ROWS * COLS >= c.PARALLEL and ROWS // 8 > 1  # (several chunks of rows)
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((ROWS, COLS)) * (0.01 if op == "prod" else 1)).astype(dtype)
    x = T.tensor(dtype, broadcastable=(False, False))
    f = theano.function([x], [_reduce(op, x, 0, keepdims), T.exp(x)], mode="c")
    got, ex = f(data)
    want = getattr(np, op)(np.exp(data.astype("float64")), axis=0, keepdims=keepdims)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    assert got.shape == want.shape and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=rtol)
    np.testing.assert_allclose(ex, np.exp(data), rtol=rtol)  # (the kernel's other output)


def test_several_reduced_axes_and_a_kept_outer_axis():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((40, 50, 120))
    x = T.dtensor3()
    f = theano.function([x], [T.exp(x).sum(axis=(0, 1)), T.exp(x).sum(axis=1)], mode="c")
    a, b = f(data)
    np.testing.assert_allclose(a, np.exp(data).sum(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(b, np.exp(data).sum(axis=1), rtol=1e-12)


def test_a_nan_in_any_chunk_reaches_the_maximum():
    data = np.zeros((ROWS, COLS))
    data[ROWS // 2 + 3, 7] = np.nan  # in a middle chunk
    x = T.dmatrix()
    got = theano.function([x], T.exp(x).max(axis=0), mode="c")(data)
    assert np.isnan(got[7]) and np.all(got[np.arange(COLS) != 7] == 1.0)


CHILD = f"""
import numpy as np, eqsat as theano, eqsat.tensor as T
data = np.random.default_rng(2).standard_normal(({ROWS}, {COLS}))
x = T.dmatrix()
f = theano.function([x], [T.exp(x).sum(axis=0), T.exp(x).sum()], mode="c")
cols, every = f(data)
_, every_t = f(np.asfortranarray(data))  # (the nested loops of a full reduction)
print(cols.tobytes().hex() + every.tobytes().hex() + every_t.tobytes().hex())
"""


def test_sums_do_not_depend_on_the_number_of_threads():
    if pool.address() is None:
        pytest.skip("the pool could not be built")
    outs = []
    for threads in ("1", "2", "3"):
        env = {**os.environ, "OMP_NUM_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outs.append(done.stdout.strip())
    assert outs[0] and outs[0] == outs[1] == outs[2]


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_row_sums_and_broadcasting_loops_match_numpy(layout):
    rng = np.random.default_rng(4)
    data = rng.standard_normal((ROWS, COLS))
    data = data if layout == "contiguous" else np.asfortranarray(data)
    b = rng.standard_normal(COLS)
    x, v = T.dmatrix(), T.dvector()
    outs = [T.exp(x).sum(axis=1), x * 2 + v, T.exp(x).max(axis=1, keepdims=True)]
    f = theano.function([x, v], outs, mode="c")
    assert all(k.ndim == 2 for k in f.thunk.plan.kernels)  # (nested loops, not flat ones)
    rows, bias, top = f(data, b)
    np.testing.assert_allclose(rows, np.exp(data).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(bias, data * 2 + b, rtol=1e-15)
    np.testing.assert_allclose(top, np.exp(data).max(axis=1, keepdims=True), rtol=1e-15)


def test_full_reductions_match_numpy():
    rng = np.random.default_rng(5)
    data = rng.standard_normal((ROWS, COLS))
    x = T.dmatrix()
    f = theano.function([x], [T.exp(x).sum(), T.exp(x).max()], mode="c")
    for layout in (data, np.asfortranarray(data), data[:, ::2]):
        total, top = f(layout)
        np.testing.assert_allclose(total, np.exp(layout).sum(), rtol=1e-12)
        assert top == np.exp(layout).max()
