"""Large returned arrays the caller has let go of are reused by the next call (no new pages to
fault in); any array someone still refers to is never written again."""

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat.codegen.compile import compiler
from eqsat.runtime import compiled

BACKEND_INDEPENDENT = True  # compiles in mode "c" and checks against NumPy itself
pytestmark = pytest.mark.skipif(compiler() is None, reason="needs a C compiler")

N = compiled.RECYCLE_BYTES // 8 + 5  # float64 elements: just past the size that is kept


def function():
    x = T.dvector("x")
    return theano.function([x], T.exp(x) * 2, mode="c")


def inputs(seed):
    return np.random.default_rng(seed).uniform(-1, 1, N)


def test_a_dropped_result_is_reused():
    f = function()
    address = f(inputs(0)).ctypes.data  # (the result is dropped at once)
    x = inputs(1)
    again = f(x)
    assert again.ctypes.data == address
    np.testing.assert_allclose(again, np.exp(x) * 2, rtol=1e-15)


def test_a_kept_result_or_view_is_never_overwritten():
    f = function()
    x0, x1, x2 = inputs(0), inputs(1), inputs(2)
    kept = f(x0)
    view = f(x1)[:100]
    latest = f(x2)
    np.testing.assert_allclose(kept, np.exp(x0) * 2, rtol=1e-15)
    np.testing.assert_allclose(view, np.exp(x1[:100]) * 2, rtol=1e-15)
    np.testing.assert_allclose(latest, np.exp(x2) * 2, rtol=1e-15)
    assert not np.shares_memory(kept, latest) and not np.shares_memory(view, latest)


def test_small_results_are_not_held():
    x = T.dvector("x")
    f = theano.function([x], x + 1, mode="c")
    out = f(np.zeros(10))
    assert all(s is None or s is not out for s in f.thunk.recycle.slots)


def test_a_shared_variable_updated_from_a_kernel_keeps_its_values():
    start = inputs(3)
    s = theano.shared(start.copy(), name="s")
    f = theano.function([], [], updates=[(s, s * 2 + 1)], mode="c")
    old = s.get_value(borrow=True)
    want = start
    for _ in range(3):
        f()
        want = want * 2 + 1
        np.testing.assert_array_equal(s.get_value(), want)
    np.testing.assert_array_equal(old, start)  # the first value, kept here, was not reused
