"""Theano's tutorial, run unchanged through `import eqsat as theano`.

Expected values are the tutorial's documented outputs or NumPy's.
"""

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat import In, function, shared


# --------------------------------------------------------------------------- baby steps
def test_adding_two_scalars(mode):
    x = T.dscalar("x")
    y = T.dscalar("y")
    z = x + y
    f = function([x, y], z, mode=mode)
    assert f(2, 3) == 5.0
    assert np.allclose(f(16.3, 12.1), 28.4)
    assert type(f(2, 3)) is np.ndarray


def test_adding_two_matrices(mode):
    x = T.dmatrix("x")
    y = T.dmatrix("y")
    f = function([x, y], x + y, mode=mode)
    expected = [[11.0, 22.0], [33.0, 44.0]]
    np.testing.assert_array_equal(f([[1, 2], [3, 4]], [[10, 20], [30, 40]]), expected)
    np.testing.assert_array_equal(f(np.array([[1, 2], [3, 4]]), np.array([[10, 20], [30, 40]])),
                                  expected)  # fmt: skip


def test_baby_steps_exercise(mode):
    a = T.vector()
    b = T.vector()
    out = a**2 + b**2 + 2 * a * b
    f = function([a, b], out, mode=mode)
    np.testing.assert_array_equal(f([0, 1, 2], [1, 2, 3]), [1.0, 9.0, 25.0])


def test_eval():
    x = T.dscalar("x")
    y = T.dscalar("y")
    z = x + y
    assert np.allclose(z.eval({x: 16.3, y: 12.1}), 28.4)


# --------------------------------------------------------------------------- more examples
LOGISTIC_IN = [[0, 1], [-1, -2]]
LOGISTIC_OUT = [[0.5, 0.73105858], [0.26894142, 0.11920292]]  # the tutorial's printout


@pytest.mark.parametrize(
    "form", [lambda x: 1 / (1 + T.exp(-x)), lambda x: (1 + T.tanh(x / 2)) / 2], ids=["exp", "tanh"]
)
def test_logistic_function(mode, form):
    x = T.dmatrix("x")
    logistic = theano.function([x], form(x), mode=mode)
    out = logistic(LOGISTIC_IN)
    np.testing.assert_allclose(out, LOGISTIC_OUT, rtol=1e-7)
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-np.array(LOGISTIC_IN))), rtol=1e-14)


def test_multiple_outputs(mode):
    a, b = T.dmatrices("a", "b")
    diff = a - b
    abs_diff = abs(diff)
    diff_squared = diff**2
    f = theano.function([a, b], [diff, abs_diff, diff_squared], mode=mode)
    out = f([[1, 1], [1, 1]], [[0, 1], [2, 3]])
    assert isinstance(out, list) and len(out) == 3
    np.testing.assert_array_equal(out[0], [[1.0, 0.0], [-1.0, -2.0]])
    np.testing.assert_array_equal(out[1], [[1.0, 0.0], [1.0, 2.0]])
    np.testing.assert_array_equal(out[2], [[1.0, 0.0], [1.0, 4.0]])


def test_default_value_for_an_argument(mode):
    x, y = T.dscalars("x", "y")
    z = x + y
    f = function([x, In(y, value=1)], z, mode=mode)
    assert f(33) == 34.0
    assert f(33, 2) == 35.0


def test_defaults_and_names(mode):
    x, y, w = T.dscalars("x", "y", "w")
    z = (x + y) * w
    f = function([x, In(y, value=1), In(w, value=2, name="w_by_name")], z, mode=mode)
    assert f(33) == 68.0
    assert f(33, 2) == 70.0
    assert f(33, 0, 1) == 33.0
    assert f(33, w_by_name=1) == 34.0
    assert f(33, w_by_name=1, y=0) == 33.0


def test_shared_accumulator(mode):
    state = shared(0)
    inc = T.iscalar("inc")
    accumulator = function([inc], state, updates=[(state, state + inc)], mode=mode)
    assert state.get_value() == 0
    assert accumulator(1) == 0
    assert state.get_value() == 1
    assert accumulator(300) == 1
    assert state.get_value() == 301

    state.set_value(-1)
    assert accumulator(3) == -1
    assert state.get_value() == 2

    decrementor = function([inc], state, updates=[(state, state - inc)], mode=mode)
    assert decrementor(2) == 2
    assert state.get_value() == 0
    assert state.get_value().dtype == np.int64

    fn_of_state = state * 2 + inc
    # The type of foo must match the shared variable we are replacing with the givens.
    foo = T.scalar(dtype=state.dtype)
    skip_shared = function([inc, foo], fn_of_state, givens=[(state, foo)], mode=mode)
    assert skip_shared(1, 3) == 7  # we're using 3 for the state, not state.value
    assert state.get_value() == 0  # old state still there, but we didn't use it


def test_gradient_of_x_squared(mode):
    x = T.dscalar("x")
    y = x**2
    gy = T.grad(y, x)
    f = theano.function([x], gy, mode=mode)
    assert f(4) == 8.0
    assert np.allclose(f(94.2), 188.4)


def test_gradient_of_the_logistic_function(mode):
    x = T.dmatrix("x")
    s = T.sum(1 / (1 + T.exp(-x)))
    gs = T.grad(s, x)
    dlogistic = theano.function([x], gs, mode=mode)
    sig = 1 / (1 + np.exp(-np.array(LOGISTIC_IN, dtype=float)))
    out = dlogistic(LOGISTIC_IN)
    np.testing.assert_allclose(out, [[0.25, 0.19661193], [0.19661193, 0.10499359]], rtol=1e-7)
    np.testing.assert_allclose(out, sig * (1 - sig), rtol=1e-13)


def test_gradient_descent_on_a_shared_variable(mode):
    w = shared(0.0, name="w")
    cost = (w - 3) ** 2
    lr = 0.1
    step = function([], cost, updates=[(w, w - lr * T.grad(cost, w))], mode=mode)
    w_np = 0.0
    for _ in range(25):
        cost_np = (w_np - 3) ** 2
        assert step() == pytest.approx(cost_np, rel=1e-12, abs=1e-15)
        w_np = w_np - lr * 2 * (w_np - 3)
        assert w.get_value() == pytest.approx(w_np, rel=1e-12)
    assert w.get_value() == pytest.approx(3.0, abs=0.02)
