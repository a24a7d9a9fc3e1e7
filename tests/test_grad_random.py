"""Gradients of random composite expressions, against sympy and finite differences.

Hypothesis draws an expression tree over two scalars a, b and a vector v of length 3 from a
small grammar whose every production has a safe domain (denominators >= 0.5, exp of bounded
things, log/sqrt of sqr(x) + 1). The tree is built twice, independently: as an eqsat graph and
as a sympy expression (vectors as object arrays of three entries), so the reference does not go
through eqsat.sympy_bridge. The gradient of the eqsat graph must match sympy's derivative and
central finite differences at a random point away from every kink (maximum, max, switch).
"""

from __future__ import annotations

import numpy as np
import sympy
from gradcheck import FD_RTOL, SYMPY_ATOL, SYMPY_RTOL, derivatives_at, finite_difference_grad
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import eqsat as theano
import eqsat.tensor as T

N = 3  # length of the vector input
KINK_MARGIN = 1e-3  # finite differences step 1e-6; ties within 1e-3 are rejected


def ew(fn, *args):
    """fn applied elementwise to sympy scalars or object arrays (with broadcasting)."""
    return np.asarray(np.frompyfunc(fn, len(args), 1)(*args), dtype=object)


def sym_sigmoid(x):
    return 1 / (1 + sympy.exp(-x))


def sym_softplus(x):
    return sympy.log(1 + sympy.exp(x))


# name: (eqsat builder, sympy scalar rule); each keeps its operand's kind (scalar or vector)
UNARY = {
    "neg": (lambda x: -x, lambda x: -x),
    "tanh": (T.tanh, sympy.tanh),
    "sin": (T.sin, sympy.sin),
    "cos": (T.cos, sympy.cos),
    "sigmoid": (T.nnet.sigmoid, sym_sigmoid),
    "softplus": (T.nnet.softplus, sym_softplus),
    "exp_tanh": (lambda x: T.exp(T.tanh(x)), lambda x: sympy.exp(sympy.tanh(x))),
    "log_sqr1": (lambda x: T.log(T.sqr(x) + 1), lambda x: sympy.log(x**2 + 1)),
    "sqrt_sqr1": (lambda x: T.sqrt(T.sqr(x) + 1), lambda x: sympy.sqrt(x**2 + 1)),
    "sqr": (T.sqr, lambda x: x**2),
    "pow2": (lambda x: x**2, lambda x: x**2),
    "pow3": (lambda x: x**3, lambda x: x**3),
}
# elementwise binary ops, broadcasting scalars against vectors
BINARY = {
    "add": (lambda x, y: x + y, lambda x, y: x + y),
    "sub": (lambda x, y: x - y, lambda x, y: x - y),
    "mul": (lambda x, y: x * y, lambda x, y: x * y),
    "div": (lambda x, y: x / (T.sqr(y) + 0.5), lambda x, y: x / (y**2 + sympy.Rational(1, 2))),
    "maximum": (T.maximum, sympy.Max),
    "minimum": (T.minimum, sympy.Min),
}
KINKED = {"maximum", "minimum"}
# vector -> scalar
REDUCE = {
    "sum": (T.sum, lambda v: sum(v)),
    "mean": (T.mean, lambda v: sum(v) / N),
    "max": (T.max, lambda v: sympy.Max(*v)),
}
CONSTANTS = [0.5, -1.5, 2.0, 3.0]


@st.composite
def trees(draw, kind: str, depth: int, forced: int = 0):
    """A tree ("leaf", name) | ("const", size) | (op, children...) whose value has `kind`, with
    ops (not leaves) on its first `forced` levels."""
    if depth == 0 or (forced <= 0 and draw(st.integers(0, 3)) == 0):
        if kind == "v":
            return draw(st.sampled_from([("leaf", "v"), ("leaf", "v"), ("const", N)]))
        return draw(st.sampled_from([("leaf", "a"), ("leaf", "b"), ("const", 1)]))
    choices = ["unary", "binary", "switch"] + (["reduce", "dot"] if kind == "s" else [])
    form = draw(st.sampled_from(choices))
    sub, f = depth - 1, forced - 1
    if form == "unary":
        return (draw(st.sampled_from(sorted(UNARY))), draw(trees(kind, sub, f)))
    if form == "binary":
        op = draw(st.sampled_from(sorted(BINARY)))
        # a vector result needs at least one vector operand
        kinds = draw(
            st.sampled_from([("s", "s")] if kind == "s" else [("v", "v"), ("v", "s"), ("s", "v")])
        )
        return (op, draw(trees(kinds[0], sub, f)), draw(trees(kinds[1], sub, f)))
    if form == "switch":
        return (
            "switch",
            draw(trees(kind, sub, f)),
            draw(trees(kind, sub, f)),
            draw(trees(kind, sub, f)),
        )
    if form == "reduce":
        return (draw(st.sampled_from(sorted(REDUCE))), draw(trees("v", sub, f)))
    return ("dot", draw(trees("v", sub, f)), draw(trees("v", sub, f)))


class Builder:
    """Builds one tree as an eqsat graph and a sympy expression, collecting kink expressions."""

    def __init__(self, rng):
        self.vars = {"a": T.dscalar("a"), "b": T.dscalar("b"), "v": T.dvector("v")}
        self.syms = {
            "a": np.array(sympy.Symbol("a", real=True), dtype=object),
            "b": np.array(sympy.Symbol("b", real=True), dtype=object),
            "v": np.array([sympy.Symbol(f"v{i}", real=True) for i in range(N)], dtype=object),
        }
        self.rng = rng
        self.kinks = []  # sympy expressions that must stay away from 0 at the test point

    def build(self, tree):
        op, *args = tree
        if op == "leaf":
            return self.vars[args[0]], self.syms[args[0]]
        if op == "const":  # args: how many entries (1: a scalar)
            c = self.rng.choice(CONSTANTS, size=args[0])
            c = c if args[0] > 1 else float(c[0])
            return T.constant(c), ew(sympy.Float, np.asarray(c, dtype=object))
        children = [self.build(a) for a in args]
        xs = [c[0] for c in children]
        ss = [c[1] for c in children]
        if op in UNARY:
            fn, rule = UNARY[op]
            return fn(xs[0]), ew(rule, ss[0])
        if op in BINARY:
            fn, rule = BINARY[op]
            if op in KINKED:
                self.kinks += list(np.ravel(ew(lambda x, y: x - y, *ss)))
            return fn(*xs), ew(rule, *ss)
        if op == "switch":
            self.kinks += list(np.ravel(ss[0]))
            piece = ew(lambda c, t, f: sympy.Piecewise((t, c > 0), (f, True)), *ss)
            return T.switch(T.gt(xs[0], 0), xs[1], xs[2]), piece
        if op in REDUCE:
            fn, rule = REDUCE[op]
            if op == "max":
                v = list(ss[0])
                self.kinks += [v[i] - v[j] for i in range(N) for j in range(i)]
            return fn(xs[0]), np.array(rule(list(ss[0])), dtype=object)
        assert op == "dot"
        return T.dot(*xs), np.array(sum(ss[0] * ss[1]), dtype=object)


def depth_of(tree) -> int:
    return 0 if tree[0] in ("leaf", "const") else 1 + max(depth_of(t) for t in tree[1:])


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tree=trees("s", 4, forced=2), seed=st.integers(0, 2**32 - 1))
def test_random_expression_gradient(tree, seed, mode):
    rng = np.random.default_rng(seed)
    builder = Builder(rng)
    cost, expr = builder.build(tree)
    expr = sympy.sympify(expr.item())
    values = {
        builder.vars["a"]: rng.uniform(-1.2, 1.2),
        builder.vars["b"]: rng.uniform(-1.2, 1.2),
        builder.vars["v"]: rng.uniform(-1.2, 1.2, N),
    }
    point = {}
    for name, var in builder.vars.items():
        point.update(zip(np.ravel(builder.syms[name]), np.ravel(values[var]), strict=True))
    exact = {s: sympy.Float(v) for s, v in point.items()}
    assume(all(abs(float(k.xreplace(exact))) > KINK_MARGIN for k in builder.kinks))

    wrt = list(builder.vars.values())
    grads = T.grad(cost, wrt, disconnected_inputs="ignore")
    f = theano.function(wrt, [cost, *grads], mode=mode, on_unused_input="ignore")
    value, *got = f(*values.values())
    want_value = float(expr.xreplace(exact))
    np.testing.assert_allclose(value, want_value, rtol=SYMPY_RTOL, atol=SYMPY_ATOL)

    want = derivatives_at(expr, [builder.syms[n] for n in builder.vars], point)
    fd = finite_difference_grad(cost, wrt, values, mode)
    fd_atol = FD_RTOL * max(1.0, abs(want_value))  # rounding error of f(x±h) scales with |f|
    for name, g, w, d in zip(builder.vars, got, want, fd, strict=True):
        assert g.shape == np.shape(w), name
        np.testing.assert_allclose(
            g, w, rtol=SYMPY_RTOL, atol=SYMPY_ATOL, err_msg=f"{tree} d/d{name}"
        )
        np.testing.assert_allclose(g, d, rtol=FD_RTOL, atol=fd_atol, err_msg=f"{tree} d/d{name} fd")
    assert depth_of(tree) >= 2
