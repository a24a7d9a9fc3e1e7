"""T.grad for every op with a VJP row, checked against sympy and finite differences, plus
broadcasting, accumulation, shared variables, dtypes, consider_constant, errors, jacobian and
hessian.

Each case of the op table builds `out = build(*inputs)`; the cost is sum(out * W) for fixed
random weights W, so every output element reaches the gradient with its own weight.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import sympy
from gradcheck import (
    FD_RTOL,
    FD_STEP,
    check_grad,
    evaluate,
    sample,
    weighted_cost,
)

import eqsat as theano
import eqsat.tensor as T
from eqsat.grad import VJP, DisconnectedInputError
from eqsat.graph import toposort
from eqsat.ops import apply
from eqsat.sympy_bridge import symbols_for, to_sympy


# ----------------------------------------------------------------------------- the case table
@dataclass
class Arg:
    """A float input (sampled in [lo, hi)) or, with `value`, a fixed input (integer indices)."""

    shape: tuple
    lo: float = -2.0
    hi: float = 2.0
    distinct: bool = False
    broadcastable: tuple | None = None  # default: no axis broadcastable (dmatrix, dvector, ...)
    value: np.ndarray | None = None
    dtype: str = "float64"

    def variable(self, name: str):
        pattern = self.broadcastable or (False,) * len(self.shape)
        return T.tensor(self.dtype, broadcastable=pattern, name=name)

    def draw(self, rng):
        if self.value is not None:
            return np.asarray(self.value, dtype=self.dtype)
        return sample(rng, self.shape, self.lo, self.hi, self.distinct).astype(self.dtype)


def Int(value):  # noqa: N802 - reads like a type in the table
    return Arg(np.shape(value), value=np.asarray(value), dtype="int64")


POS = {"lo": 0.3, "hi": 3.0}


def frac(x):
    return x - np.floor(x)


def away_from_integers(x, margin=0.1):
    return bool(np.all((frac(x) > margin) & (frac(x) < 1 - margin)))


def apart(x, y, margin=0.05):
    return bool(np.all(np.abs(x - y) > margin))


@dataclass
class Case:
    id: str
    op: str  # the op under test; it must appear in the built graph
    build: Callable
    inputs: list
    valid: Callable | None = None  # predicate on the drawn values (kinks, ties)
    options: dict = field(default_factory=dict)  # passed on to check_grad


def unary(op, lo=-2.0, hi=2.0, valid=None, **options):
    fn = getattr(T, op)
    return Case(op, op, fn, [Arg((2, 3), lo, hi)], valid, options)


def binary(op, a=None, b=None, valid=None, shapes=((2, 3), (2, 3))):
    fn = getattr(T, op)
    a, b = a or {}, b or {}
    return Case(op, op, fn, [Arg(shapes[0], **a), Arg(shapes[1], **b)], valid)


def reduction(op, shape, axis, keepdims=False, **input_options):
    def build(x):
        return getattr(T, op)(x, axis=axis, keepdims=keepdims)

    return Case(f"{op}-axis={axis}-keepdims={keepdims}", op, build, [Arg(shape, **input_options)])


X45 = Arg((4, 5))
PROD_ZEROS = np.array([[0.0, 1.5, -2.0], [0.5, 0.0, 0.0], [1.0, 2.0, -0.7]])

# fmt: off
CASES = [
    # elementwise unary
    unary("neg"),
    unary("abs", valid=lambda x: bool(np.all(np.abs(x) > 0.05))),
    unary("exp"),
    unary("log", **POS),
    unary("log1p", -0.5, 2.0),
    unary("expm1"),
    unary("log2", **POS),
    unary("log10", **POS),
    unary("sqrt", **POS),
    unary("sqr"),
    unary("sin"),
    unary("cos"),
    unary("tan", -1.2, 1.2),
    unary("tanh"),
    unary("sigmoid", -4.0, 4.0),
    unary("softplus", -4.0, 4.0),
    unary("erf"),
    unary("sgn", valid=lambda x: bool(np.all(np.abs(x) > 0.05))),
    unary("floor", valid=away_from_integers),
    unary("ceil", valid=away_from_integers),
    # round has no sympy form (half-to-even); finite differences only
    unary("round", valid=lambda x: away_from_integers(x + 0.5), use_sympy=False),
    # float64 -> float32 rounds by ~6e-8 relative, forward and backward (the gradient of a
    # float32 value is float32): sympy within 1e-6; the cost is linear in x, so a wide finite
    # difference step is exact up to that rounding, which the step divides down to ~1e-5
    Case("cast-float32", "cast", lambda x: T.cast(x, "float32"), [Arg((2, 3))],
         options={"fd_step": 1e-2, "fd_tol": 1e-4, "sympy_rtol": 1e-6}),
    # elementwise binary
    binary("add"),
    binary("sub"),
    binary("mul"),
    binary("true_div", b={"lo": 0.5, "hi": 2.0}),
    binary("int_div", a={"lo": 0.1, "hi": 5.0}, b={"lo": 0.7, "hi": 1.5},
           valid=lambda x, y: away_from_integers(x / y, 0.05)),
    binary("mod", a={"lo": 0.1, "hi": 5.0}, b={"lo": 0.7, "hi": 1.5},
           valid=lambda x, y: away_from_integers(x / y, 0.05)),
    binary("pow", a=POS),
    binary("maximum", valid=apart),
    binary("minimum", valid=apart),
    Case("switch-compare", "switch", lambda a, b: T.switch(T.gt(a, b), a * b, a - 2 * b),
         [Arg((2, 3)), Arg((2, 3))], apart),
    Case("switch-const-cond", "switch",
         lambda a, b: T.switch(np.array([[True, False, True], [False, True, False]]), a, b),
         [Arg((2, 3)), Arg((2, 3))]),
    Case("switch-broadcast", "switch", lambda a, s: T.switch(T.gt(a, 0), a, s),
         [Arg((2, 3)), Arg(())], lambda a, s: bool(np.all(np.abs(a) > 0.05))),
    # reductions
    reduction("sum", (3, 4), None),
    reduction("sum", (3, 4), 0),
    reduction("sum", (3, 4), 1),
    reduction("sum", (3, 4), -1),
    reduction("sum", (3, 4), (0, 1)),
    reduction("sum", (3, 4), 0, keepdims=True),
    reduction("sum", (3, 4), None, keepdims=True),
    reduction("sum", (2, 3, 4), (0, 2)),
    reduction("sum", (2, 3, 4), 1, keepdims=True),
    reduction("prod", (3, 4), None, lo=0.5, hi=1.5),
    reduction("prod", (3, 4), 1),
    reduction("prod", (3, 4), 0, keepdims=True),
    reduction("prod", (2, 3, 2), (0, 2)),
    # exact zeros: row 0 has one, row 1 two, row 2 none (the VJP's three branches)
    Case("prod-zeros-axis=1", "prod", lambda x: T.prod(x, axis=1), [Arg((3, 3), value=PROD_ZEROS)]),
    Case("prod-one-zero-all", "prod", T.prod, [Arg((2, 2), value=[[1.5, 0.0], [-2.0, 0.5]])]),
    reduction("max", (3, 4), None, distinct=True),
    reduction("max", (3, 4), 0, distinct=True),
    reduction("max", (3, 4), 1, keepdims=True, distinct=True),
    reduction("max", (2, 3, 4), (0, 2), distinct=True),
    reduction("min", (3, 4), None, distinct=True),
    reduction("min", (3, 4), 1, distinct=True),
    reduction("min", (3, 4), 0, keepdims=True, distinct=True),
    Case("mean-axis=0", "sum", lambda x: T.mean(x, axis=0), [Arg((3, 4))]),
    # dot in its four vector/matrix combinations
    Case("dot-vv", "dot", T.dot, [Arg((4,)), Arg((4,))]),
    Case("dot-mv", "dot", T.dot, [Arg((3, 4)), Arg((4,))]),
    Case("dot-vm", "dot", T.dot, [Arg((3,)), Arg((3, 4))]),
    Case("dot-mm", "dot", T.dot, [Arg((2, 3)), Arg((3, 4))]),
    # gemm/gemv (beta*c + alpha*op(a)op(b)), every input differentiated, each transpose flag
    *[Case(f"gemm-{'t' if ta else 'n'}{'t' if tb else 'n'}", "gemm",
           lambda c, s, a, b, t, ta=ta, tb=tb: apply("gemm", [c, s, a, b, t], trans_a=ta,
                                                     trans_b=tb),
           [Arg((2, 4)), Arg(()), Arg((3, 2) if ta else (2, 3)), Arg((4, 3) if tb else (3, 4)),
            Arg(())])
      for ta in (False, True) for tb in (False, True)],
    Case("gemm-row-accumulator", "gemm",
         lambda c, s, a, b, t: apply("gemm", [c, s, a, b, t], trans_a=False, trans_b=False),
         [Arg((1, 4), broadcastable=(True, False)), Arg(()), Arg((2, 3)), Arg((3, 4)), Arg(())]),
    *[Case(f"gemv-{'t' if ta else 'n'}", "gemv",
           lambda y, s, a, x, t, ta=ta: apply("gemv", [y, s, a, x, t], trans_a=ta),
           [Arg((3,)), Arg(()), Arg((4, 3) if ta else (3, 4)), Arg((4,)), Arg(())])
      for ta in (False, True)],
    # dimshuffle
    Case("transpose", "dimshuffle", lambda x: x.T, [Arg((3, 4))]),
    Case("dimshuffle-x01", "dimshuffle", lambda x: x.dimshuffle("x", 0, 1), [Arg((3, 4))]),
    Case("dimshuffle-1x0", "dimshuffle", lambda x: x.dimshuffle(1, "x", 0), [Arg((3, 4))]),
    Case("dimshuffle-drop", "dimshuffle", lambda x: x.dimshuffle(1),
         [Arg((1, 4), broadcastable=(True, False))]),
    Case("dimshuffle-3d", "dimshuffle", lambda x: x.dimshuffle(2, 0, 1), [Arg((2, 3, 4))]),
    # reshape
    Case("reshape-flat", "reshape", lambda x: x.reshape((12,)), [Arg((3, 4))]),
    Case("reshape-minus1", "reshape", lambda x: x.reshape((2, -1)), [Arg((3, 4))]),
    Case("reshape-3d", "reshape", lambda x: x.reshape((2, 3, 2)), [Arg((3, 4))]),
    Case("reshape-symbolic", "reshape", lambda x: x.reshape((x.shape[1], x.shape[0])),
         [Arg((3, 4))]),
    Case("flatten", "reshape", T.flatten, [Arg((2, 3, 2))]),
    # alloc
    Case("alloc-scalar", "alloc", lambda s: T.alloc(s, 2, 3), [Arg(())]),
    Case("alloc-vector", "alloc", lambda v: T.alloc(v, 4, 3), [Arg((3,))]),
    Case("alloc-row", "alloc", lambda r: T.alloc(r, 4, 3),
         [Arg((1, 3), broadcastable=(True, False))]),
    Case("alloc-symbolic", "alloc", lambda v, x: T.alloc(v, x.shape[0], 3) * x,
         [Arg((3,)), Arg((2, 3))]),
    # concatenate
    Case("concatenate-axis0", "concatenate", lambda a, b, c: T.concatenate([a, b, c], axis=0),
         [Arg((2, 3)), Arg((1, 3)), Arg((3, 3))]),
    Case("concatenate-axis-1", "concatenate", lambda a, b: T.concatenate([a, b], axis=-1),
         [Arg((2, 3)), Arg((2, 2))]),
    Case("concatenate-vectors", "concatenate", lambda a, b: T.concatenate([a, b, a]),
         [Arg((3,)), Arg((2,))]),
    Case("stack", "concatenate", lambda a, b: T.stack([a, b], axis=1), [Arg((3,)), Arg((3,))]),
    # basic indexing
    Case("subtensor-int", "subtensor", lambda x: x[1], [X45]),
    Case("subtensor-negative-int", "subtensor", lambda x: x[-1], [X45]),
    Case("subtensor-slice", "subtensor", lambda x: x[1:3], [X45]),
    Case("subtensor-reverse", "subtensor", lambda x: x[::-1], [X45]),
    Case("subtensor-step-2", "subtensor", lambda x: x[::-2], [X45]),
    Case("subtensor-3:0:-2", "subtensor", lambda x: x[3:0:-2], [X45]),
    Case("subtensor-2d-negative", "subtensor", lambda x: x[1:, ::-1], [X45]),
    Case("subtensor-column", "subtensor", lambda x: x[:, 2], [X45]),
    Case("subtensor-newaxis", "subtensor", lambda x: x[None, 1:3], [X45]),
    Case("subtensor-mixed", "subtensor", lambda x: x[1:-1, -2], [X45]),
    Case("subtensor-symbolic", "subtensor", lambda x, i: x[i, i:], [X45, Int(2)]),
    Case("inc_subtensor-slice", "inc_subtensor", lambda x, y: T.inc_subtensor(x[1:3], y),
         [X45, Arg((2, 5))]),
    Case("set_subtensor-slice", "inc_subtensor", lambda x, y: T.set_subtensor(x[1:3], y),
         [X45, Arg((2, 5))]),
    Case("inc_subtensor-negative-step", "inc_subtensor",
         lambda x, y: T.inc_subtensor(x[::-2], y), [X45, Arg((2, 5))]),
    Case("set_subtensor-negative-step", "inc_subtensor",
         lambda x, y: T.set_subtensor(x[1:, ::-1], y), [X45, Arg((3, 5))]),
    Case("set_subtensor-column", "inc_subtensor", lambda x, v: T.set_subtensor(x[:, 0], v),
         [X45, Arg((4,))]),
    Case("set_subtensor-broadcast-scalar", "inc_subtensor",
         lambda x, s: T.set_subtensor(x[1:], s), [X45, Arg(())]),
    Case("inc_subtensor-broadcast-vector", "inc_subtensor",
         lambda x, v: T.inc_subtensor(x[1:3], v), [X45, Arg((5,))]),
    Case("inc_subtensor-int", "inc_subtensor", lambda x, v: T.inc_subtensor(x[-2], v),
         [X45, Arg((5,))]),
    # integer-array indexing
    Case("advanced-repeated", "advanced_subtensor", lambda x: x[[0, 2, 0]], [Arg((4, 3))]),
    Case("advanced-vector", "advanced_subtensor", lambda v: v[[4, 0, 4, 1]], [Arg((5,))]),
    Case("advanced-arange-labels", "advanced_subtensor",
         lambda x, y: x[T.arange(x.shape[0]), y], [Arg((4, 3)), Int([2, 0, 1, 1])]),
    Case("advanced-2-arrays", "advanced_subtensor", lambda x: x[[0, 3, 0], [1, 2, 1]],
         [Arg((4, 3))]),
    Case("advanced-inc-repeated", "advanced_inc_subtensor",
         lambda x, y: T.inc_subtensor(x[[0, 2, 0]], y), [Arg((4, 3)), Arg((3, 3))]),
    Case("advanced-set", "advanced_inc_subtensor",
         lambda x, y: T.set_subtensor(x[[3, 1]], y), [Arg((4, 3)), Arg((2, 3))]),
    Case("advanced-set-broadcast", "advanced_inc_subtensor",
         lambda x, s: T.set_subtensor(x[[1, 3]], s), [Arg((4, 3)), Arg(())]),
    Case("advanced-inc-arange-labels", "advanced_inc_subtensor",
         lambda x, y, v: T.inc_subtensor(x[T.arange(x.shape[0]), y], v),
         [Arg((4, 3)), Int([2, 0, 1, 1]), Arg((4,))]),
    # nnet
    Case("softmax-rows", "softmax", T.nnet.softmax, [Arg((3, 4))]),
    Case("softmax-axis0", "softmax", lambda x: T.nnet.softmax(x, axis=0), [Arg((3, 4))]),
    Case("softmax-vector", "softmax", T.nnet.softmax, [Arg((5,))]),
    Case("log_softmax-rows", "log_softmax", T.nnet.log_softmax, [Arg((3, 4))]),
    Case("log_softmax-axis0", "log_softmax", lambda x: T.nnet.log_softmax(x, axis=0),
         [Arg((3, 4))]),
    Case("log_softmax-vector", "log_softmax", T.nnet.log_softmax, [Arg((5,))]),
    Case("logsumexp-all", "logsumexp", T.logsumexp, [Arg((3, 4))]),
    Case("logsumexp-rows", "logsumexp", lambda x: T.logsumexp(x, axis=1), [Arg((3, 4))]),
    Case("logsumexp-keepdims", "logsumexp", lambda x: T.logsumexp(x, axis=0, keepdims=True),
         [Arg((3, 4))]),
    # make_vector of float scalars (T.stack builds concatenate; make_vector comes from the table)
    Case("make_vector", "make_vector",
         lambda a, b: apply("make_vector", [a, b, a * b, a], dtype="float64"),
         [Arg(()), Arg(())]),
]
# fmt: on


def draw_values(case, variables, rng):
    for _ in range(100):
        values = {v: spec.draw(rng) for v, spec in zip(variables, case.inputs, strict=True)}
        if case.valid is None or case.valid(*values.values()):
            return values
    raise AssertionError(f"{case.id}: no valid point found")


def seeded(name: str):
    return np.random.default_rng(zlib.crc32(name.encode()))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_op_gradient(case, mode):
    rng = seeded(case.id)
    variables = [spec.variable(name) for spec, name in zip(case.inputs, "abcde", strict=False)]
    out = case.build(*variables)
    assert case.op in {node.op for node in toposort([out])}, f"{case.id} does not use {case.op}"
    values = draw_values(case, variables, rng)
    cost = weighted_cost(out, values, mode, rng)
    wrt = [v for v in variables if v.dtype.startswith("float")]
    check_grad(cost, wrt, values, mode, **case.options)


def test_every_vjp_row_has_a_case():
    assert set(VJP) <= {case.op for case in CASES}


# ----------------------------------------------------------------------------- broadcasting
# fmt: off
BROADCAST_CASES = [
    # (id, input specs, build, expected gradients from W and the values, in NumPy)
    ("row+matrix", [Arg((1, 4), broadcastable=(True, False)), Arg((3, 4))], lambda r, m: r + m,
     lambda W, r, m: [W.sum(0, keepdims=True), W]),
    ("scalar*matrix", [Arg(()), Arg((3, 4))], lambda s, m: s * m,
     lambda W, s, m: [np.sum(W * m), s * W]),
    ("vector+matrix", [Arg((4,)), Arg((3, 4))], lambda v, m: v + m,
     lambda W, v, m: [W.sum(0), W]),
    ("col*row",
     [Arg((3, 1), broadcastable=(False, True)), Arg((1, 4), broadcastable=(True, False))],
     lambda c, r: c * r,
     lambda W, c, r: [(W * r).sum(1, keepdims=True), (W * c).sum(0, keepdims=True)]),
    ("scalar-vector-div", [Arg((3,), lo=0.5, hi=2.0), Arg(())], lambda v, s: s / v,
     lambda W, v, s: [-W * s / v**2, np.sum(W / v)]),
]
# fmt: on


@pytest.mark.parametrize(
    "specs, build, expected", [c[1:] for c in BROADCAST_CASES], ids=[c[0] for c in BROADCAST_CASES]
)
def test_gradient_through_broadcasting(specs, build, expected, mode):
    rng = seeded("broadcast")
    variables = [spec.variable(name) for spec, name in zip(specs, "ab", strict=True)]
    values = {v: spec.draw(rng) for v, spec in zip(variables, specs, strict=True)}
    W = rng.normal(size=np.shape(evaluate(build(*variables), values, mode)))
    cost = T.sum(build(*variables) * W)
    got = check_grad(cost, variables, values, mode)
    for g, want in zip(got, expected(W, *values.values()), strict=True):
        assert g.shape == np.shape(want)
        np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- accumulation
def test_variable_used_twice_accumulates(mode):
    x = T.dvector("x")
    values = {x: np.array([0.3, -1.2, 0.8])}
    got = check_grad(T.sum(x * x), [x], values, mode)
    np.testing.assert_allclose(got[0], 2 * values[x], rtol=1e-14)


def test_accumulation_over_many_paths(mode):
    x, y = T.dmatrix("x"), T.dvector("y")
    rng = seeded("paths")
    values = {x: rng.normal(size=(3, 3)), y: rng.normal(size=3)}
    cost = T.sum(T.dot(x, x.T) * T.sin(x)) + T.sum(x[0] * y) + T.dot(T.dot(y, x), y) + x[1, 2]
    check_grad(cost, [x, y], values, mode)


def test_same_expression_in_two_costs(mode):
    x = T.dvector("x")
    h = T.tanh(x)
    values = {x: np.array([0.1, -0.4, 1.1])}
    check_grad(T.sum(h) * T.sum(h * x) + T.max(h), [x], values, mode)


def test_crossentropy_with_integer_labels(mode):
    m, y = T.dmatrix("m"), T.lvector("y")
    rng = seeded("xent")
    values = {m: rng.normal(size=(3, 4)), y: np.array([0, 3, 1])}
    cost = T.mean(T.nnet.categorical_crossentropy(T.nnet.softmax(m), y))
    (g,) = check_grad(cost, [m], values, mode)
    p = np.exp(values[m]) / np.exp(values[m]).sum(1, keepdims=True)
    np.testing.assert_allclose(g, (p - np.eye(4)[values[y]]) / 3, rtol=1e-12, atol=1e-15)


def test_gradient_wrt_intermediate_variable(mode):
    x = T.dvector("x")
    h = T.tanh(x)
    w = np.array([1.0, -2.0, 3.0])
    xv = np.array([0.1, 0.2, -0.3])
    gh, gx = evaluate(T.grad(T.sum(h * w) + T.sum(x), [h, x]), {x: xv}, mode)
    np.testing.assert_allclose(gh, w, rtol=1e-14)
    np.testing.assert_allclose(gx, w * (1 - np.tanh(xv) ** 2) + 1, rtol=1e-14)


def test_gradient_of_variable_wrt_itself(mode):
    s = T.dscalar("s")
    (g,) = evaluate([T.grad(s, s)], {s: 2.5}, mode)
    assert g == 1.0


def test_max_with_ties_follows_theano(mode):
    # Theano's rule: every position equal to the maximum receives the whole gradient
    x = T.dmatrix("x")
    xv = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])
    (g,) = evaluate([T.grad(T.sum(T.max(x, axis=1) * np.array([1.0, 2.0])), x)], {x: xv}, mode)
    np.testing.assert_array_equal(g, [[0.0, 1.0, 1.0], [2.0, 2.0, 0.0]])


# ----------------------------------------------------------------------------- shared variables
def test_gradient_wrt_shared_variable(mode):
    rng = seeded("shared")
    w = theano.shared(rng.normal(size=3), name="w")
    X, y = T.dmatrix("X"), T.dvector("y")
    Xv, yv = rng.normal(size=(5, 3)), rng.normal(size=5)
    cost = T.mean(T.sqr(T.dot(X, w) - y))
    got = check_grad(cost, [w], {X: Xv, y: yv, w: w.get_value()}, mode)
    wv = w.get_value()
    np.testing.assert_allclose(got[0], 2 / 5 * Xv.T @ (Xv @ wv - yv), rtol=1e-12)


def test_gradient_descent_step_on_shared(mode):
    rng = seeded("sgd")
    w0 = rng.normal(size=3)
    w, b = theano.shared(w0.copy(), name="w"), theano.shared(0.5, name="b")
    X, y = T.dmatrix("X"), T.dvector("y")
    cost = T.sum(T.sqr(T.dot(X, w) + b - y))
    gw, gb = T.grad(cost, [w, b])
    step = theano.function([X, y], cost, updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)], mode=mode)
    Xv, yv = rng.normal(size=(4, 3)), rng.normal(size=4)
    step(Xv, yv)
    r = Xv @ w0 + 0.5 - yv
    np.testing.assert_allclose(w.get_value(), w0 - 0.1 * 2 * Xv.T @ r, rtol=1e-12)
    np.testing.assert_allclose(b.get_value(), 0.5 - 0.1 * 2 * r.sum(), rtol=1e-12)


# ----------------------------------------------------------------------------- dtypes
def test_float32_graph_gives_float32_gradients(mode):
    rng = seeded("float32")
    x, v = T.fmatrix("x"), T.fvector("v")
    values = {x: rng.normal(size=(2, 3)).astype("float32"), v: rng.normal(size=3).astype("float32")}
    W = T.constant(rng.normal(size=(2, 3)).astype("float32"))
    cost = T.sum(T.tanh(x) * v * W) + 2.0 * T.sum(T.exp(v))
    assert cost.dtype == "float32"
    gx, gv = T.grad(cost, [x, v])
    assert gx.dtype == gv.dtype == "float32"
    # float32 rounding (eps 6e-8) over a handful of operations: 1e-5 relative is ample
    check_grad(cost, [x, v], values, mode, use_fd=False, sympy_rtol=1e-5, sympy_atol=1e-5)


def test_float32_input_in_float64_cost_gets_float32_gradient(mode):
    x = T.fvector("x")
    cost = T.sum(T.sqr(x) * np.array([1.0, 2.0, 3.0]))  # float64 weights: float64 cost
    assert cost.dtype == "float64"
    xv = np.array([0.5, -1.5, 2.0], dtype="float32")
    (g,) = evaluate([T.grad(cost, x)], {x: xv}, mode)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * xv * [1.0, 2.0, 3.0], rtol=1e-6)


def test_integer_path_contributes_no_gradient(mode):
    x = T.dvector("x")
    w = np.array([0.5, -1.0, 2.0])
    cost = T.sum(x * w) + T.sum(T.cast(T.cast(x, "int64"), "float64"))
    (g,) = evaluate([T.grad(cost, x)], {x: np.array([1.3, -0.4, 2.6])}, mode)
    np.testing.assert_array_equal(g, w)


# ----------------------------------------------------------------------------- consider_constant
def test_consider_constant(mode):
    x = T.dvector("x")
    y = T.exp(x)
    cost = T.sum(y * x)
    xv = np.array([0.2, -0.7, 1.1])
    blocked, full = evaluate(
        [T.grad(cost, x, consider_constant=[y]), T.grad(cost, x)], {x: xv}, mode
    )
    np.testing.assert_allclose(blocked, np.exp(xv), rtol=1e-14)
    np.testing.assert_allclose(full, np.exp(xv) * (1 + xv), rtol=1e-14)


def test_consider_constant_on_one_of_two_inputs(mode):
    x, y = T.dscalar("x"), T.dscalar("y")
    z = x * y
    cost = z * x + y
    gx, gy = T.grad(cost, [x, y], consider_constant=[z], disconnected_inputs="ignore")
    got = evaluate([gx, gy], {x: 2.0, y: 3.0}, mode)
    np.testing.assert_allclose(got, [6.0, 1.0])  # z is held at 6: d/dx = z, d/dy = 1


# ----------------------------------------------------------------------------- errors
def test_non_scalar_cost_is_a_type_error():
    x = T.dvector("x")
    with pytest.raises(TypeError, match="scalar"):
        T.grad(x * 2, x)


def test_integer_cost_is_a_type_error():
    i, x = T.lvector("i"), T.dvector("x")
    with pytest.raises(TypeError):
        T.grad(T.sum(i), x)
    with pytest.raises(TypeError):
        T.grad(T.argmax(x), x)


def test_wrt_must_be_a_variable():
    x = T.dvector("x")
    with pytest.raises(TypeError, match="wrt"):
        T.grad(T.sum(x), [x, np.ones(3)])
    with pytest.raises(TypeError):
        T.grad(T.sum(x), 1.0)


def test_wrt_integer_variable_is_a_type_error():
    x, i = T.dvector("x"), T.lscalar("i")
    with pytest.raises(TypeError):
        T.grad(T.sum(x * i), i)


def test_disconnected_input_raises():
    x, y = T.dvector("x"), T.dvector("y")
    with pytest.raises(DisconnectedInputError):
        T.grad(T.sum(x**2), y)
    with pytest.raises(DisconnectedInputError):
        T.grad(T.sum(x**2), [x, y], disconnected_inputs="raise")


def test_disconnected_input_warns_and_gives_zeros(mode):
    x, y = T.dvector("x"), T.dmatrix("y")
    with pytest.warns(UserWarning, match="does not depend"):
        gx, gy = T.grad(T.sum(x**2), [x, y], disconnected_inputs="warn")
    values = {x: np.array([1.0, 2.0]), y: np.ones((2, 3))}
    got_x, got_y = evaluate([gx, gy], values, mode)
    np.testing.assert_array_equal(got_x, [2.0, 4.0])
    np.testing.assert_array_equal(got_y, np.zeros((2, 3)))


def test_disconnected_input_ignored_gives_zeros(mode, recwarn):
    x, y = T.dvector("x"), T.dvector("y")
    gy = T.grad(T.sum(T.exp(x)), y, disconnected_inputs="ignore")
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    (got,) = evaluate([gy], {x: np.zeros(2), y: np.ones(4)}, mode)
    np.testing.assert_array_equal(got, np.zeros(4))


# Theano: an input reached only through comparisons, integer casts or argmax is connected; its
# gradient is 0 (LogicalComparison.grad, Switch's condition gradient, Cast and Argmax give zeros).
INTEGER_PATHS = [
    ("comparison", lambda x, y: T.sum(T.switch(T.gt(y, 0), x, 2 * x))),
    ("int-cast", lambda x, y: T.sum(T.cast(T.cast(y, "int64"), "float64")) + T.sum(x)),
    ("argmax", lambda x, y: T.cast(T.argmax(y), "float64") + T.sum(x)),
]


@pytest.mark.parametrize("build", [c[1] for c in INTEGER_PATHS], ids=[c[0] for c in INTEGER_PATHS])
def test_input_reached_only_through_integer_ops_gets_zeros(build, mode):
    x, y = T.dvector("x"), T.dvector("y")
    gy = T.grad(build(x, y), y)  # the default policy, 'raise', must not raise
    (got,) = evaluate([gy], {x: np.ones(3), y: np.array([0.5, -1.5, 2.5])}, mode)
    np.testing.assert_array_equal(got, np.zeros(3))


def test_bad_disconnected_inputs_policy():
    x = T.dvector("x")
    with pytest.raises(ValueError):
        T.grad(T.sum(x), x, disconnected_inputs="sometimes")


# ----------------------------------------------------------------------------- jacobian, hessian
def sympy_at(matrix, point):
    return np.array(matrix.subs(point).evalf(), dtype=float)


def point_of(var, value):
    return dict(zip(symbols_for(var, np.shape(value)).ravel(), np.ravel(value), strict=True))


def test_jacobian_static_length_matches_sympy(mode):
    v = T.tensor("float64", shape=(3,), name="v")
    expr = T.exp(v) * T.sum(v * v) + v[::-1]
    vv = np.array([0.3, -0.5, 1.2])
    (J,) = evaluate([T.jacobian(expr, v)], {v: vv}, mode)
    syms = symbols_for(v)
    want = sympy.Matrix(list(to_sympy(expr))).jacobian(list(syms))
    assert J.shape == (3, 3)
    np.testing.assert_allclose(J, sympy_at(want, point_of(v, vv)), rtol=1e-10, atol=1e-12)


def test_jacobian_with_length_and_two_inputs(mode):
    x, y = T.dvector("x"), T.dvector("y")
    expr = T.tanh(x * y) + T.dot(x, y)
    xv, yv = np.array([0.2, -0.9]), np.array([1.5, 0.4])
    Jx, Jy = evaluate(T.jacobian(expr, [x, y], length=2), {x: xv, y: yv}, mode)
    e = sympy.Matrix(list(to_sympy(expr, shapes={x: (2,), y: (2,)})))
    point = {**point_of(x, xv), **point_of(y, yv)}
    want_x = sympy_at(e.jacobian(list(symbols_for(x, (2,)))), point)
    want_y = sympy_at(e.jacobian(list(symbols_for(y, (2,)))), point)
    np.testing.assert_allclose(Jx, want_x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Jy, want_y, rtol=1e-10, atol=1e-12)


def test_jacobian_of_scalar_is_gradient(mode):
    x = T.dvector("x")
    xv = np.array([0.5, 2.0])
    (J,) = evaluate([T.jacobian(T.sum(T.sin(x)), x)], {x: xv}, mode)
    np.testing.assert_allclose(J, np.cos(xv), rtol=1e-14)


def test_jacobian_wrt_matrix(mode):
    m, v = T.dmatrix("m"), T.tensor("float64", shape=(2,), name="v")
    mv, vv = seeded("jac-m").normal(size=(3, 2)), np.array([0.3, -0.7])
    (J,) = evaluate([T.jacobian(T.dot(m, v), m, length=3)], {m: mv, v: vv}, mode)
    # d (m v)_i / d m_rc = [r == i] v_c
    np.testing.assert_allclose(J, np.einsum("ir,c->irc", np.eye(3), vv), rtol=1e-14)


def test_jacobian_unknown_length_is_an_error():
    x = T.dvector("x")
    with pytest.raises(ValueError, match="length"):
        T.jacobian(T.exp(x), x)


def test_jacobian_of_matrix_is_an_error():
    x = T.dmatrix("x")
    with pytest.raises(TypeError):
        T.jacobian(x * 2, x, length=2)


def test_hessian_matches_sympy(mode):
    v = T.tensor("float64", shape=(3,), name="v")
    cost = T.sum(T.exp(v) * v[0]) + T.sqr(T.dot(v, v)) + T.prod(v) + T.log(T.sum(T.sqr(v)) + 1)
    vv = np.array([0.4, -0.8, 0.6])
    (H,) = evaluate([T.hessian(cost, v)], {v: vv}, mode)
    syms = symbols_for(v)
    want = sympy_at(sympy.hessian(to_sympy(cost), list(syms)), point_of(v, vv))
    np.testing.assert_allclose(H, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H, H.T, rtol=1e-12)


def test_hessian_with_length_and_finite_differences_of_gradient(mode):
    x = T.dvector("x")
    cost = T.sum(T.nnet.softplus(x) * T.sin(x[::-1]))
    xv = np.array([0.3, -1.1, 0.9, 0.2])
    (H,) = evaluate([T.hessian(cost, x, length=4)], {x: xv}, mode)
    grad = theano.function([x], T.grad(cost, x), mode=mode)
    h = FD_STEP
    fd = np.array([(grad(xv + h * e) - grad(xv - h * e)) / (2 * h) for e in np.eye(4)])
    np.testing.assert_allclose(H, fd, rtol=FD_RTOL, atol=FD_RTOL)


def test_hessian_of_matrix_wrt_is_an_error():
    x = T.dmatrix("x")
    with pytest.raises(TypeError):
        T.hessian(T.sum(x**2), x)


def test_hessian_unknown_length_is_an_error():
    x = T.dvector("x")
    with pytest.raises(ValueError, match="length"):
        T.hessian(T.sum(x**2), x)
