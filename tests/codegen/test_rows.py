"""Softmax, log-softmax and one-hot in C (eqsat/codegen/c_rows.py): the C path is taken, and its
results are the NumPy reference's (mode "py"), special values, layouts and errors included."""

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat.codegen.compile import compiler
from eqsat.ops import apply
from tests.compare import assert_same

BACKEND_INDEPENDENT = True  # compares the backends itself
pytestmark = pytest.mark.skipif(compiler() is None, reason="needs a C compiler")

NAN, INF = float("nan"), float("inf")


def both(inputs, outputs):
    fc = theano.function(inputs, outputs, mode="c", optimizer=None)
    fp = theano.function(inputs, outputs, mode="py", optimizer=None)
    assert fc.thunk.by_row, "the op ran through NumPy, not C"
    return fc, fp


def layouts(a: np.ndarray) -> dict[str, np.ndarray]:
    wide = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
    wide[:, ::2] = a
    return {"contiguous": a, "transposed": np.ascontiguousarray(a.T).T, "strided": wide[:, ::2]}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("axis", [0, 1])
def test_softmax_and_log_softmax(dtype, axis):
    x = T.matrix("x", dtype=dtype)
    fc, fp = both([x], [T.nnet.softmax(x, axis=axis), T.nnet.log_softmax(x, axis=axis)])
    rng = np.random.default_rng(axis)
    a = (rng.standard_normal((7, 13)) * 20).astype(dtype)
    a[2, 3] = NAN  # row 2 / column 3: nan throughout (its maximum is nan)
    a[4, 5] = INF  # inf - inf: nan too
    a[5, :] = -INF  # every term -inf: nan
    a[:, 8] = -INF  # a -inf among finite terms: 0 (log: -inf)
    tol = 1e-13 if dtype == "float64" else 2e-6
    for name, v in layouts(a).items():
        for k, (got, want) in enumerate(zip(fc(v), fp(v), strict=True)):
            assert_same(got, want, f"{name} output {k}", rtol=tol, atol=tol)
    sm = fc(a)[0]
    finite = np.isfinite(sm).all(axis=axis)
    np.testing.assert_allclose(sm.sum(axis=axis)[finite], 1, rtol=tol * 10)


def test_empty_rows_behave_as_numpy():
    x = T.dmatrix("x")
    fc, fp = both([x], T.nnet.softmax(x, axis=1))
    assert fc(np.zeros((0, 4))).shape == (0, 4)
    with pytest.raises(ValueError, match="zero-size"):
        fp(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="zero-size"):
        fc(np.zeros((3, 0)))


ONE_HOT_DTYPES = [("int32", "float64"), ("int64", "float32"), ("uint8", "int64"), ("int16", "bool")]


@pytest.mark.parametrize(("label_dtype", "out_dtype"), ONE_HOT_DTYPES)
def test_one_hot(label_dtype, out_dtype):
    labels = T.vector("labels", dtype=label_dtype)
    n = T.lscalar("n")
    fc, fp = both([labels, n], apply("one_hot", [labels, n], dtype=out_dtype))
    values = np.array([0, 3, 1, 3, 2], label_dtype)
    want = (values[:, None] == np.arange(4)).astype(out_dtype)  # written out by hand
    for v in (values, np.repeat(values, 2)[::2]):
        got = fc(v, 4)
        assert_same(got, want, "one_hot")
        assert_same(got, fp(v, 4), "one_hot against the reference")
    for bad in ([0, 4], [5]):
        with pytest.raises(ValueError, match="labels must lie in"):
            fc(np.array(bad, label_dtype), 4)
    if label_dtype.startswith("int"):
        with pytest.raises(ValueError, match="labels must lie in"):
            fc(np.array([1, -1], label_dtype), 4)
    assert fc(np.array([], label_dtype), 3).shape == (0, 3)


def test_long_float32_rows_stay_within_a_few_ulp():
    x = T.fmatrix("x")
    fc, fp = both([x], [T.nnet.softmax(x), T.nnet.log_softmax(x)])
    a = (np.random.default_rng(0).standard_normal((3, 20000)) * 3).astype("float32")
    for got, want in zip(fc(a), fp(a), strict=True):
        ulps = np.abs(got - want) / np.spacing(np.abs(want))
        assert ulps.max() <= 8, ulps.max()  # (a float sum of 20000 terms would drift further)


@pytest.mark.parametrize("axis", [0, 1])
def test_many_rows_go_out_in_chunks(axis):
    # 40,000 elements, past c.PARALLEL: the rows go to the worker pool in several chunks.
    x = T.dmatrix("x")
    fc, fp = both([x], [T.nnet.softmax(x, axis=axis), T.nnet.log_softmax(x, axis=axis)])
    a = np.random.default_rng(7).standard_normal((4000, 10) if axis == 1 else (10, 4000)) * 20
    for v in layouts(a).values():
        for got, want in zip(fc(v), fp(v), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-12)
