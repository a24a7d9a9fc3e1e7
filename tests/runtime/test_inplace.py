"""Updates written into their shared variable's own array (eqsat/codegen/inplace.py): the same
values as NumPy, the same array afterwards, and a copy instead wherever writing in place
would be wrong (an input sharing its memory, a layout BLAS can't write, an update that is also
an output), and a failing call leaves the shared variables as they were."""

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat.codegen import blas
from eqsat.codegen.compile import compiler

BACKEND_INDEPENDENT = True  # compiles in mode "c" and checks against NumPy itself
pytestmark = pytest.mark.skipif(
    compiler() is None or blas.find() is None, reason="needs a C compiler and NumPy's CBLAS"
)

LR = 0.1


def sgd(also_output=False, n_in=6, n_out=4):
    """W <- W - LR * x^T g, b <- b - LR * sum(g); output the loss sum(g * g)."""
    rng = np.random.default_rng(0)
    w = theano.shared(rng.standard_normal((n_in, n_out)), name="W")
    b = theano.shared(np.zeros(n_out), name="b")
    x, g = T.dmatrix("x"), T.dmatrix("g")
    new_w = w - LR * T.dot(x.T, g)
    outputs = [(g * g).sum()] + ([new_w] if also_output else [])
    updates = [(w, new_w), (b, b - LR * g.sum(axis=0))]
    return theano.function([x, g], outputs, updates=updates, mode="c"), w, b


def data(rows=5, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, 6)), rng.standard_normal((rows, 4))


def test_the_update_writes_into_the_shared_array():
    f, w, b = sgd()
    assert [s.node.op for s in f.thunk.in_place] == ["gemm"]
    assert f.thunk.plan.steps[-1] is f.thunk.in_place[0]  # after every other step
    array, before = w.get_value(borrow=True), w.get_value()
    x, g = data()
    (loss,) = f(x, g)
    assert w.get_value(borrow=True) is array
    np.testing.assert_allclose(array, before - LR * x.T @ g, rtol=1e-13)
    np.testing.assert_allclose(b.get_value(), -LR * g.sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(loss, (g * g).sum(), rtol=1e-13)


def test_an_input_sharing_the_array_gets_a_copy():
    n = 600  # (large enough that BLAS reads x in panels between its writes)
    f, w, _ = sgd(n_in=n, n_out=n)
    before = w.get_value()
    x = w.get_value(borrow=True)  # x is W's own array: BLAS would read what it writes
    g = np.random.default_rng(2).standard_normal((n, n))
    f(x, g)
    np.testing.assert_allclose(w.get_value(), before - LR * before.T @ g, rtol=1e-12, atol=1e-12)


def test_a_fortran_ordered_value_gets_a_copy():
    f, w, _ = sgd()
    w.set_value(np.asfortranarray(w.get_value()), borrow=True)
    before, x, g = w.get_value(), *data()
    f(x, g)
    np.testing.assert_allclose(w.get_value(), before - LR * x.T @ g, rtol=1e-13)


def test_an_update_that_is_also_an_output_is_not_shared_with_it():
    f, w, _ = sgd(also_output=True)
    assert not f.thunk.in_place
    before, x, g = w.get_value(), *data()
    _, out = f(x, g)
    assert not np.shares_memory(out, w.get_value(borrow=True))
    np.testing.assert_allclose(out, before - LR * x.T @ g, rtol=1e-13)
    out[:] = 0
    np.testing.assert_allclose(w.get_value(), before - LR * x.T @ g, rtol=1e-13)


def test_a_failing_call_leaves_the_shared_array_as_it_was():
    rng = np.random.default_rng(0)
    w = theano.shared(rng.standard_normal((6, 3)), name="W")
    x, labels = T.dmatrix("x"), T.ivector("labels")
    loss = T.nnet.categorical_crossentropy(T.nnet.softmax(T.dot(x, w)), labels).mean()
    update = w - LR * T.grad(loss, w)
    f = theano.function([x, labels], loss, updates=[(w, update)], mode="c")
    assert f.thunk.in_place
    array, before = w.get_value(borrow=True), w.get_value()
    with pytest.raises((ValueError, IndexError)):
        f(rng.standard_normal((4, 6)), np.array([0, 1, 7, 2], "int32"))  # label 7 of 3
    assert w.get_value(borrow=True) is array
    np.testing.assert_array_equal(array, before)
    f(rng.standard_normal((4, 6)), np.array([0, 1, 2, 2], "int32"))
    assert not np.array_equal(w.get_value(), before)
