"""Reductions as functions and methods, over every axis form, against NumPy (values and
dtypes)."""

import numpy as np
import pytest
from helpers import assert_same, rand, run

import eqsat as theano
import eqsat.tensor as T

REDUCTIONS = ["sum", "mean", "max", "min", "prod", "var", "std"]
AXES = [None, 0, 1, 2, -1, -2, (0, 2), (1, 0), (0, 1, 2), (-1, 0)]


def _numpy(name, a, **kw):
    return np.asarray(getattr(np, name)(a, **kw))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_axes(name, axis, keepdims, mode, rng):
    x = T.dtensor3("x")
    a = rand(rng, (2, 3, 4), "float64", 0.5, 1.5)
    fn = getattr(T, name)(x, axis=axis, keepdims=keepdims)
    method = getattr(x, name)(axis=axis, keepdims=keepdims)
    want = _numpy(name, a, axis=axis, keepdims=keepdims)
    for out in (fn, method):
        assert out.ndim == want.ndim
        assert_same(run([x], out, a, mode=mode), want)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_arg_reductions(name, axis, keepdims, mode, rng):
    x = T.dmatrix("x")
    a = rng.permutation(12).reshape(3, 4).astype("float64")  # distinct: no ties
    want = _numpy(name, a, axis=axis, keepdims=keepdims)
    for out in (getattr(T, name)(x, axis=axis, keepdims=keepdims),
                getattr(x, name)(axis=axis, keepdims=keepdims)):  # fmt: skip
        assert out.dtype == "int64"
        assert_same(run([x], out, a, mode=mode), want)


def test_argmax_ties_take_first(mode):
    x = T.lvector("x")
    assert int(run([x], T.argmax(x), [1, 5, 5, 2], mode=mode)) == 1
    assert int(run([x], T.argmin(x), [3, 0, 4, 0], mode=mode)) == 1


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["bool", "int8", "int32", "int64", "uint8", "float32", "float64"])
def test_reduction_dtypes(name, dtype, mode, rng):
    """sum/prod of small ints give int64, mean/var/std of ints give float64, float32 stays
    float32, max/min keep the dtype: as NumPy does."""
    x = T.matrix("x", dtype=dtype)
    a = rand(rng, (3, 4), dtype, 1, 3)
    want = _numpy(name, a, axis=0)
    out = getattr(T, name)(x, axis=0)
    assert out.dtype == want.dtype
    assert_same(run([x], out, a, mode=mode), want, rtol=1e-5 if dtype == "float32" else None)


def test_named_dtype_expectations():
    assert T.sum(T.ivector()).dtype == "int64"
    assert T.sum(T.tensor("bool", broadcastable=(False,))).dtype == "int64"
    assert T.mean(T.lvector()).dtype == "float64"
    assert T.mean(T.ivector()).dtype == "float64"
    assert T.mean(T.fvector()).dtype == "float32"
    assert T.sum(T.fmatrix(), axis=1).dtype == "float32"
    assert T.max(T.bvector()).dtype == "int8"


def test_sum_of_bools_counts(mode):
    x = T.dvector("x")
    got = run([x], T.sum(x > 0), np.array([-1.0, 2.0, 3.0, 0.0]), mode=mode)
    assert_same(got, np.int64(2))


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_ddof(name, ddof, mode, rng):
    x = T.dmatrix("x")
    a = rand(rng, (4, 5))
    for axis in (None, 0, 1):
        out = getattr(T, name)(x, axis=axis, ddof=ddof)
        assert_same(run([x], out, a, mode=mode), _numpy(name, a, axis=axis, ddof=ddof))


def test_reduce_scalar_and_empty_axis_tuple(mode):
    s = T.dscalar("s")
    assert_same(run([s], T.sum(s), 3.5, mode=mode), np.float64(3.5))
    x = T.dvector("x")
    assert_same(run([x], T.sum(x, axis=()), np.array([1.0, 2.0]), mode=mode), [1.0, 2.0])


def test_reduction_static_shape_and_broadcastable():
    x = T.tensor("float64", shape=(2, None, 4))
    assert T.sum(x, axis=1).type.shape == (2, 4)
    assert T.sum(x, axis=1, keepdims=True).type.shape == (2, 1, 4)
    assert T.max(x, axis=(0, 2), keepdims=True).broadcastable == (True, False, True)
    assert T.sum(x).ndim == 0


def test_mean_divisor_comes_from_run_time_shape(mode, rng):
    """The divisor of mean comes from the run-time shape, not a compile-time guess."""
    x = T.dmatrix("x")
    f = theano.function([x], x.mean(axis=1), mode=mode)
    for shape in ((2, 3), (4, 7)):
        a = rand(rng, shape)
        assert_same(f(a), a.mean(axis=1))


@pytest.mark.parametrize("axis", [2, -3, (0, 5), (0, 0), (1, -1)], ids=str)
@pytest.mark.parametrize("name", ["sum", "mean", "max", "prod", "var"])
def test_bad_axis_is_value_error(name, axis):
    x = T.dmatrix("x")
    with pytest.raises(ValueError):
        getattr(T, name)(x, axis=axis)
    with pytest.raises(ValueError):
        getattr(x, name)(axis=axis)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_bad_argmax_axis(name):
    x = T.dmatrix("x")
    with pytest.raises(ValueError):
        getattr(T, name)(x, axis=2)
    with pytest.raises(ValueError):
        getattr(T, name)(x, axis=-3)
