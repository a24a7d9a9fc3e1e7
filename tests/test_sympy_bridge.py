"""eqsat.sympy_bridge: to_sympy against sympy written by hand, from_sympy against sympy's own
numeric evaluation, and the errors for what has no counterpart."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import eqsat as theano
import eqsat.tensor as T
from eqsat.sympy_bridge import from_sympy, symbols_for, to_sympy

# exact sympy evaluation vs float64 NumPy/eqsat evaluation of a few operations
RTOL = 1e-12


def real(name):
    return sympy.Symbol(name, real=True)


def at(expr, point):
    """float(s) of a sympy expression or object array at `point` {symbol: float}."""
    exact = {s: sympy.Float(float(v)) for s, v in point.items()}
    values = [
        float(sympy.sympify(e).xreplace(exact)) for e in np.ravel(np.asarray(expr, dtype=object))
    ]
    return np.array(values).reshape(np.shape(expr))


def point_for(var, value):
    return dict(zip(symbols_for(var, np.shape(value)).ravel(), np.ravel(value), strict=True))


# ----------------------------------------------------------------------------- to_sympy
def test_symbols_for_names_elements():
    v = T.dvector("v")
    assert list(symbols_for(v, (3,))) == [real("v_0"), real("v_1"), real("v_2")]
    m = T.tensor("float64", shape=(2, 2), name="m")
    assert symbols_for(m)[1, 0] == real("m_1_0")
    assert symbols_for(T.dscalar("s")).item() == real("s")


def test_symbols_for_needs_a_shape():
    with pytest.raises(ValueError):
        symbols_for(T.dvector("v"))


@pytest.mark.parametrize(
    "build, by_hand",
    [
        (lambda x, y: T.exp(x) * 2, lambda x, y: 2 * sympy.exp(x)),
        (lambda x, y: x + y * 3, lambda x, y: x + 3 * y),
        (lambda x, y: T.sqr(x) - y, lambda x, y: x**2 - y),
        (lambda x, y: x / y, lambda x, y: x / y),
        (lambda x, y: T.sin(x) * T.cos(y), lambda x, y: sympy.sin(x) * sympy.cos(y)),
        (lambda x, y: T.tanh(-x), lambda x, y: sympy.tanh(-x)),
        (lambda x, y: T.maximum(x, y), lambda x, y: sympy.Max(x, y)),
        (lambda x, y: abs(x), lambda x, y: sympy.Abs(x)),
        (lambda x, y: x**y, lambda x, y: x**y),
        (lambda x, y: T.log(x), lambda x, y: sympy.log(x)),
    ],
)
def test_to_sympy_scalar_structure(build, by_hand):
    x, y = T.dscalar("x"), T.dscalar("y")
    assert to_sympy(build(x, y)) == by_hand(real("x"), real("y"))


def test_to_sympy_of_a_list_gives_a_list():
    x = T.dscalar("x")
    assert to_sympy([x + 1, T.exp(x)]) == [real("x") + 1, sympy.exp(real("x"))]


def test_to_sympy_vector_structure():
    v = T.tensor("float64", shape=(3,), name="v")
    v0, v1, v2 = (real(f"v_{i}") for i in range(3))
    assert to_sympy(T.sum(v)) == v0 + v1 + v2
    assert to_sympy(T.dot(v, v)) == v0**2 + v1**2 + v2**2
    assert to_sympy(v[1]) == v1
    assert list(to_sympy(v[::-1])) == [v2, v1, v0]
    assert list(to_sympy(T.exp(v) * 2)) == [2 * sympy.exp(s) for s in (v0, v1, v2)]


def test_to_sympy_given_symbols():
    x = T.dscalar("x")
    t = real("t")
    assert to_sympy(T.exp(x) + x, symbols={x: t**2}) == sympy.exp(t**2) + t**2


# Scalar ops whose sympy form is less literal: compared numerically at a point.
# fmt: off
SCALAR_FORMS = [
    ("log1p", lambda x, y: T.log1p(x), lambda x, y: sympy.log(1 + x)),
    ("expm1", lambda x, y: T.expm1(x), lambda x, y: sympy.exp(x) - 1),
    ("log2", lambda x, y: T.log2(x), lambda x, y: sympy.log(x) / sympy.log(2)),
    ("log10", lambda x, y: T.log10(x), lambda x, y: sympy.log(x) / sympy.log(10)),
    ("sqrt", lambda x, y: T.sqrt(x), lambda x, y: sympy.sqrt(x)),
    ("tan", lambda x, y: T.tan(x), lambda x, y: sympy.sin(x) / sympy.cos(x)),
    ("sigmoid", lambda x, y: T.nnet.sigmoid(x), lambda x, y: 1 / (1 + sympy.exp(-x))),
    ("softplus", lambda x, y: T.nnet.softplus(x), lambda x, y: sympy.log(1 + sympy.exp(x))),
    ("erf", lambda x, y: T.erf(x), lambda x, y: sympy.erf(x)),
    ("minimum", lambda x, y: T.minimum(x, y), lambda x, y: sympy.Min(x, y)),
    ("mod", lambda x, y: x % y, lambda x, y: x - y * sympy.floor(x / y)),
    ("int_div", lambda x, y: x // y, lambda x, y: sympy.floor(x / y)),
    ("switch", lambda x, y: T.switch(T.gt(x, y), x * y, x - y),
     lambda x, y: sympy.Piecewise((x * y, x > y), (x - y, True))),
    ("clip", lambda x, y: T.clip(x, 0.5, 1.0), lambda x, y: sympy.Min(sympy.Max(x, 0.5), 1)),
    ("floor", lambda x, y: T.floor(x * 3), lambda x, y: sympy.floor(3 * x)),
    ("ceil", lambda x, y: T.ceil(x * 3), lambda x, y: sympy.ceiling(3 * x)),
    ("sgn", lambda x, y: T.sgn(x - y), lambda x, y: sympy.sign(x - y)),
    ("cast-int", lambda x, y: T.cast(-x * 3, "int64") * 1.0, lambda x, y: -sympy.floor(3 * x)),
]
# fmt: on


@pytest.mark.parametrize(
    "build, by_hand", [c[1:] for c in SCALAR_FORMS], ids=[c[0] for c in SCALAR_FORMS]
)
@pytest.mark.parametrize("xv, yv", [(0.7, 0.4), (1.9, 2.6)])
def test_to_sympy_scalar_numeric(build, by_hand, xv, yv, mode):
    x, y = T.dscalar("x"), T.dscalar("y")
    out = build(x, y)
    point = {real("x"): xv, real("y"): yv}
    got = at(to_sympy(out), point)
    np.testing.assert_allclose(got, at(by_hand(real("x"), real("y")), point), rtol=RTOL)
    # and the bridge agrees with what eqsat computes
    f = theano.function([x, y], out, mode=mode, on_unused_input="ignore")
    np.testing.assert_allclose(got, f(xv, yv), rtol=RTOL)


def test_to_sympy_cast_to_bool():
    x = T.dscalar("x")
    assert to_sympy(T.cast(x, "bool")) == sympy.Ne(real("x"), 0)


def test_to_sympy_cast_between_floats_is_identity():
    x = T.dscalar("x")
    assert to_sympy(T.cast(x, "float32")) == real("x")


@pytest.mark.parametrize("xv, want", [(0.7, 0.7), (-0.5, 0.0)])
def test_to_sympy_cast_bool_to_number(xv, want):
    x = T.dscalar("x")
    expr = to_sympy(T.cast(T.gt(x, 0), "float64") * x)
    assert float(sympy.sympify(expr).subs(real("x"), xv)) == want


def softmax_rows(m):
    e = np.frompyfunc(sympy.exp, 1, 1)(m)
    return e / e.sum(axis=1, keepdims=True)


# Tensor graphs over a (2, 3) matrix m and a length-3 vector v, against sympy by hand on the
# object arrays of their element symbols (M, V).
# fmt: off
TENSOR_FORMS = [
    ("sum-axis0", lambda m, v: T.sum(m, axis=0), lambda M, V: M[0] + M[1]),
    ("sum-keepdims", lambda m, v: T.sum(m, axis=1, keepdims=True),
     lambda M, V: np.array([[M[0].sum()], [M[1].sum()]])),
    ("prod", lambda m, v: T.prod(m, axis=1),
     lambda M, V: np.array([M[i, 0] * M[i, 1] * M[i, 2] for i in range(2)])),
    ("max", lambda m, v: T.max(m, axis=0),
     lambda M, V: np.array([sympy.Max(M[0, j], M[1, j]) for j in range(3)])),
    ("min", lambda m, v: T.min(m), lambda M, V: sympy.Min(*M.ravel())),
    ("mean", lambda m, v: T.mean(m), lambda M, V: M.sum() / 6),
    ("dot-mv", lambda m, v: T.dot(m, v),
     lambda M, V: np.array([sum(M[i] * V) for i in range(2)])),
    ("dot-mm", lambda m, v: T.dot(m, m.T),
     lambda M, V: np.array([[sum(M[i] * M[j]) for j in range(2)] for i in range(2)])),
    ("transpose", lambda m, v: m.T, lambda M, V: M.T),
    ("row-broadcast", lambda m, v: m + v, lambda M, V: M + V[None, :]),
    ("reshape", lambda m, v: m.reshape((3, 2)),
     lambda M, V: np.array([[M[0, 0], M[0, 1]], [M[0, 2], M[1, 0]], [M[1, 1], M[1, 2]]])),
    ("subtensor", lambda m, v: m[1, ::-1],
     lambda M, V: np.array([M[1, 2], M[1, 1], M[1, 0]])),
    ("advanced", lambda m, v: v[[2, 0, 2]], lambda M, V: np.array([V[2], V[0], V[2]])),
    ("advanced-labels", lambda m, v: m[T.arange(2), [2, 0]],
     lambda M, V: np.array([M[0, 2], M[1, 0]])),
    ("inc_subtensor", lambda m, v: T.inc_subtensor(m[0], v),
     lambda M, V: np.array([M[0] + V, M[1]])),
    ("set_subtensor", lambda m, v: T.set_subtensor(v[1:], 0.0),
     lambda M, V: np.array([V[0], 0, 0])),
    ("advanced-inc", lambda m, v: T.inc_subtensor(v[[0, 0]], 1.0),
     lambda M, V: np.array([V[0] + 2, V[1], V[2]])),
    ("concatenate", lambda m, v: T.concatenate([v, m[0]]),
     lambda M, V: np.concatenate([V, M[0]])),
    ("alloc", lambda m, v: T.alloc(v, 2, 3), lambda M, V: np.array([V, V])),
    ("softmax", lambda m, v: T.nnet.softmax(m), lambda M, V: softmax_rows(M)),
    ("log_softmax", lambda m, v: T.nnet.log_softmax(m),
     lambda M, V: np.frompyfunc(sympy.log, 1, 1)(softmax_rows(M))),
]
# fmt: on


@pytest.mark.parametrize(
    "build, by_hand", [c[1:] for c in TENSOR_FORMS], ids=[c[0] for c in TENSOR_FORMS]
)
def test_to_sympy_tensor_numeric(build, by_hand, mode):
    m, v = T.dmatrix("m"), T.dvector("v")
    rng = np.random.default_rng(7)
    mv, vv = rng.uniform(-2, 2, (2, 3)), rng.uniform(-2, 2, 3)
    out = build(m, v)
    got_expr = to_sympy(out, shapes={m: (2, 3), v: (3,)})
    want_expr = by_hand(symbols_for(m, (2, 3)), symbols_for(v, (3,)))
    point = {**point_for(m, mv), **point_for(v, vv)}
    got = at(got_expr, point)
    assert got.shape == np.shape(want_expr)
    np.testing.assert_allclose(got, at(want_expr, point), rtol=RTOL, atol=1e-15)
    eqsat_value = theano.function([m, v], out, mode=mode, on_unused_input="ignore")(mv, vv)
    np.testing.assert_allclose(got, eqsat_value, rtol=RTOL, atol=1e-15)


def test_to_sympy_static_shapes_need_no_shapes_argument():
    m = T.tensor("float64", shape=(2, 2), name="m")
    M = symbols_for(m)
    assert to_sympy(T.sum(m * m)) == sum(M.ravel() ** 2)


# ----------------------------------------------------------------------------- from_sympy
X, Y = real("x"), real("y")
FROM_SYMPY = [
    sympy.exp(X) * sympy.sin(Y) + X**2 / (1 + Y**2),
    sympy.log(X**2 + 1) - sympy.sqrt(Y**2 + 1),
    X**3 - 2 * X * Y + sympy.pi,
    sympy.Rational(3, 7) * X + sympy.E,
    sympy.Max(X, Y) - sympy.Min(X, 2, Y),
    sympy.Piecewise((X, X > Y), (2 * Y, X < 0), (X * Y, True)),
    sympy.Abs(X - Y) * sympy.sign(Y),
    sympy.floor(3 * X) + sympy.ceiling(2 * Y),
    sympy.erf(X) + sympy.tanh(Y) + sympy.tan(X / 2) + sympy.cos(X * Y),
    1 / (X * Y) + X ** (-2),
]
POINTS = [(0.8, -0.3), (-1.3, 0.45), (0.25, 1.7)]


@pytest.mark.parametrize("expr", FROM_SYMPY, ids=[str(i) for i in range(len(FROM_SYMPY))])
def test_from_sympy_matches_sympy_numerically(expr, mode):
    x, y = T.dscalar("x"), T.dscalar("y")
    f = theano.function([x, y], from_sympy(expr, {X: x, Y: y}), mode=mode, on_unused_input="ignore")
    for xv, yv in POINTS:
        want = at(expr, {X: xv, Y: yv})
        np.testing.assert_allclose(f(xv, yv), want, rtol=RTOL, err_msg=f"{expr} at {xv}, {yv}")


def test_from_sympy_boolean_expression(mode):
    x, y = T.dscalar("x"), T.dscalar("y")
    expr = sympy.And(X > 0, sympy.Or(Y < 1, sympy.Eq(X, Y)), sympy.Not(X > 5))
    f = theano.function([x, y], from_sympy(expr, {X: x, Y: y}), mode=mode)
    for xv, yv in [(1.0, 0.5), (1.0, 2.0), (2.0, 2.0), (-1.0, 0.0), (6.0, 0.0)]:
        want = bool(expr.subs({X: xv, Y: yv}))
        assert bool(f(xv, yv)) == want, (xv, yv)


def test_from_sympy_elementwise_on_vectors(mode):
    v = T.dvector("v")
    expr = sympy.exp(X) / (1 + X**2) + 3
    f = theano.function([v], from_sympy(expr, {"x": v}), mode=mode)  # mapping by name
    vv = np.array([-1.0, 0.0, 0.5, 2.0])
    want = [float(expr.subs(X, e)) for e in vv]
    np.testing.assert_allclose(f(vv), want, rtol=RTOL)


def test_from_sympy_symbol_mapped_to_number(mode):
    x = T.dscalar("x")
    f = theano.function([x], from_sympy(X * Y + Y, {X: x, Y: 2.5}), mode=mode)
    np.testing.assert_allclose(f(4.0), 12.5, rtol=RTOL)


def test_round_trip_structure():
    x = T.dscalar("x")
    for expr in [2 * sympy.exp(X), X**2 + sympy.sin(X), sympy.log(X) * sympy.cos(X)]:
        assert to_sympy(from_sympy(expr, {X: x})) == expr


def test_round_trip_numeric():
    x, y = T.dscalar("x"), T.dscalar("y")
    for expr in FROM_SYMPY:
        back = to_sympy(from_sympy(expr, {X: x, Y: y}))
        for xv, yv in POINTS:
            point = {X: xv, Y: yv}
            np.testing.assert_allclose(at(back, point), at(expr, point), rtol=RTOL)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "build", [lambda x: T.argmax(x), lambda x: T.argmin(x, axis=0), lambda x: T.round(x)]
)
def test_to_sympy_op_without_sympy_form(build):
    x = T.dvector("x")
    with pytest.raises(NotImplementedError):
        to_sympy(build(x), shapes={x: (3,)})


def test_from_sympy_unknown_symbol():
    x = T.dscalar("x")
    with pytest.raises(KeyError, match="y"):
        from_sympy(X + Y, {X: x})


def test_from_sympy_function_without_eqsat_form():
    x = T.dscalar("x")
    with pytest.raises(NotImplementedError):
        from_sympy(sympy.gamma(X), {X: x})
