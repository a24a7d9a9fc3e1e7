"""Numerical stability the optimizer buys: textbook formulas that overflow or cancel come out
finite and accurate once optimized. Expected values are computed with `math` from hand-derived
stable forms (softplus, log-sum-exp with the maximum factored out), never with eqsat."""

from __future__ import annotations

import math

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T

Z = np.array(
    [-800, -710, -100, -40, -30, -20, -5, -1, -1e-3, 0, 1e-3, 1, 5, 20, 30, 40, 100, 710, 800.0]
)


def softplus(x: float) -> float:
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


def cross_entropy(z, y):
    """The tutorial's -y*log(p) - (1-y)*log(1-p) with p = 1/(1+exp(-z))."""
    p = 1 / (1 + T.exp(-z))
    return -y * T.log(p) - (1 - y) * T.log(1 - p)


def compiled(inputs, outputs, **kwargs):
    f = theano.function(inputs, outputs, **kwargs)
    assert f.optimization is not None and f.optimization.fallback is None
    return f


@pytest.mark.parametrize("y", [0.0, 1.0])
def test_cross_entropy_is_finite_and_accurate(y):
    z, t = T.dvector("z"), T.dvector("y")
    f = compiled([z, t], cross_entropy(z, t))
    got = f(Z, np.full_like(Z, y))
    # y = 1: -log(sigmoid(z)) = softplus(-z); y = 0: -log(1 - sigmoid(z)) = softplus(z)
    want = np.array([softplus(-v) if y == 1 else softplus(v) for v in Z])
    assert np.all(np.isfinite(got)), got
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


def test_cross_entropy_unoptimized_overflows():
    """The reason the test above is about the optimizer: without it the form is inf/nan."""
    z, t = T.dvector("z"), T.dvector("y")
    f = theano.function([z, t], cross_entropy(z, t), optimizer=None)
    with np.errstate(all="ignore"):
        got = f(np.array([-800.0, 800.0]), np.array([1.0, 0.0]))
    assert not np.all(np.isfinite(got))


def test_tutorial_logistic_regression_cost_is_finite():
    """The tutorial's own graph, p_1 = 1/(1+exp(-dot(x, w) - b)), with weights that drive
    the logits to +-800: the mean cross-entropy is still the exact one."""
    x, t = T.dmatrix("x"), T.dvector("y")
    w = theano.shared(np.array([400.0, -400.0]), name="w")
    b = theano.shared(0.0, name="b")
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    xent = -t * T.log(p_1) - (1 - t) * T.log(1 - p_1)
    f = compiled([x, t], [xent.mean(), p_1 > 0.5])
    xv = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]])  # logits 800, -800
    yv = np.array([0.0, 1.0, 1.0, 0.0])
    cost, prediction = f(xv, yv)
    logits = xv @ w.get_value()
    want = np.mean([softplus(-v) if y else softplus(v) for v, y in zip(logits, yv, strict=True)])
    assert math.isclose(cost, want, rel_tol=1e-13), (cost, want)
    np.testing.assert_array_equal(prediction, logits > 0)


def test_cross_entropy_gradient_moderate_logits():
    """d xent / dz = sigmoid(z) - y, where the textbook chain rule does not cancel yet."""
    z, t = T.dvector("z"), T.dvector("y")
    g = T.grad(cross_entropy(z, t).sum(), z)
    f = compiled([z, t], g)
    zs = np.linspace(-5, 5, 21)
    for y in (0.0, 1.0):
        want = np.array([sigmoid(v) - y for v in zs])
        np.testing.assert_allclose(f(zs, np.full_like(zs, y)), want, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("y", [0.0, 1.0])
def test_cross_entropy_gradient_is_finite_and_accurate(y):
    z, t = T.dvector("z"), T.dvector("y")
    g = T.grad(cross_entropy(z, t).sum(), z)
    f = compiled([z, t], g)
    with np.errstate(all="ignore"):
        got = f(Z, np.full_like(Z, y))
    # sigmoid(z) - y without the cancellation: y = 1 gives -(1 - sigmoid(z)) = -sigmoid(-z)
    want = np.array([-sigmoid(-v) if y else sigmoid(v) for v in Z])
    assert np.all(np.isfinite(got)), got
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("form", ["1 + x", "x + 1"])
def test_log_one_plus_tiny(form):
    x = T.dvector("x")
    f = compiled([x], T.log(1 + x) if form == "1 + x" else T.log(x + 1))
    xs = np.array([1e-20, -1e-20, 1e-10, 3e-300, 0.5])
    want = np.array([math.log1p(v) for v in xs])
    got = f(xs)
    assert got[0] == 1e-20 and got[1] == -1e-20
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)


# log_softmax rounds x - max(x) - log(sum(...)) near |x| = 1000, whose ulp is 1.1e-13
LOGIT_ATOL = 1e-12


def exact_log_softmax(row: list[float]) -> list[float]:
    m = max(row)
    lse = m + math.log(math.fsum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


def test_log_softmax_vector_of_large_logits():
    x = T.dvector("x")
    f = compiled([x], T.log(T.nnet.softmax(x)))
    xs = np.array([1000.0, -1000.0, 0.0, 999.0])
    got = f(xs)
    assert np.all(np.isfinite(got)), got
    np.testing.assert_allclose(got, exact_log_softmax(list(xs)), rtol=1e-14, atol=LOGIT_ATOL)


def test_log_softmax_matrix_rows_of_large_logits():
    x = T.dmatrix("x")
    f = compiled([x], T.log(T.nnet.softmax(x)))
    xs = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0], [1.0, 2.0, 3.0]])
    got = f(xs)
    assert np.all(np.isfinite(got)), got
    want = [exact_log_softmax(list(r)) for r in xs]
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=LOGIT_ATOL)


def test_log_sum_exp_moderate():
    x = T.dvector("x")
    f = compiled([x], T.log(T.sum(T.exp(x))))
    xs = np.array([-3.0, 0.5, 2.0, 1.0])
    want = math.log(math.fsum(math.exp(v) for v in xs))
    assert math.isclose(f(xs), want, rel_tol=1e-14)


def test_log_sum_exp_large():
    x = T.dvector("x")
    f = compiled([x], T.log(T.sum(T.exp(x))))
    xs = np.array([1000.0, -1000.0, 0.0, 999.0])
    with np.errstate(all="ignore"):
        got = float(f(xs))
    want = 1000.0 + math.log1p(math.exp(-1.0) + math.exp(-1000.0) + math.exp(-2000.0))
    assert math.isfinite(got), got
    assert math.isclose(got, want, rel_tol=1e-14), (got, want)
