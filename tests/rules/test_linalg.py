"""The linalg rules inside eqsat.function: matrix chains reassociated by cost, transposes
cancelled, GEMM/GEMV formed with transposes as flags, and the gemm/gemv ops' own semantics
and gradients. Expected values come from NumPy (and sympy / finite differences for the
gradients), never from the optimizer's own output; each optimized function is also compared
with the same graph compiled with optimizer=None."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import eqsat
import eqsat.tensor as T
from eqsat.extract import op_cost
from eqsat.ops import apply
from eqsat.rules import linalg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gradcheck import check_grad, sample  # noqa: E402

RTOL = 1e-12


def compiled(inputs, outputs, **kwargs):
    f = eqsat.function(inputs, outputs, **kwargs)
    assert f.optimization is not None and f.optimization.fallback is None
    return f


def nodes(f):
    return f.maker.fgraph.toposort()


def ops(f):
    return [n.op for n in nodes(f)]


def check_values(f, inputs, outputs, values, expected, rtol=RTOL):
    """f's values equal NumPy's `expected`, and those of the unoptimized graph."""
    got = f(*values)
    plain = eqsat.function(inputs, outputs, optimizer=None)(*values)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(got, plain, rtol=rtol, atol=1e-12)
    return got


def matrix(name, shape=(None, None), dtype="float64"):
    return T.tensor(dtype, shape=shape, name=name)


# ------------------------------------------------------------------------------- transposes
def test_transpose_param_string_is_what_the_rules_match():
    """The rules match Dimshuffle by its params string: it must be repr(node.params) of x.T."""
    a, b = T.dmatrix("a"), T.dmatrix("b")
    expected = linalg.T.strip('"')
    assert repr(a.T.owner.params) == expected
    assert repr(T.dot(a.T, b).owner.inputs[0].owner.params) == expected


def test_double_transpose_is_the_input(rng):
    a = T.dmatrix("a")
    f = compiled([a], a.T.T)
    assert ops(f) == []
    av = rng.normal(size=(3, 4))
    np.testing.assert_array_equal(f(av), av)


def test_transpose_of_a_product_of_transposes(rng):
    """(BᵀAᵀ)ᵀ = AB: one dot, no transposes left."""
    a, b = T.dmatrix("a"), T.dmatrix("b")
    out = T.dot(b.T, a.T).T
    f = compiled([a, b], out)
    assert ops(f) == ["dot"]
    assert nodes(f)[0].inputs == (a, b)
    av, bv = rng.normal(size=(3, 4)), rng.normal(size=(4, 5))
    check_values(f, [a, b], out, [av, bv], av @ bv)


# ------------------------------------------------------------------------------ dot chains
def chain_cost(*dims_of_products):
    """What op_cost charges for a sequence of dots given as (m, k, n) triples."""
    return sum(op_cost("dot", m * n, [m * k, k * n]) for m, k, n in dims_of_products)


def test_dot_cost_is_multiply_adds_plus_the_result():
    assert op_cost("dot", 1000 * 1000, [1000 * 10, 10 * 1000]) == 2 * 1000 * 10 * 1000 + 2e6
    assert op_cost("dot", 1000, [1000 * 10, 10]) == 2 * 1000 * 10 + 2 * 1000


def test_matrix_chain_reassociates_right(rng):
    """(1000x10)(10x1000)(1000x1): (AB)C makes a 1000x1000 intermediate (2e7 multiply-adds),
    A(BC) a 10x1 one (4e4): the cost model must see the difference."""
    a = matrix("a", (1000, 10))
    b = matrix("b", (10, 1000))
    c = matrix("c", (1000, 1))
    out = T.dot(T.dot(a, b), c)
    f = compiled([a, b, c], out)
    assert f.optimization.rules_fired.get("linalg/dot_assoc_right", 0) > 0
    first, second = nodes(f)
    assert (first.op, first.inputs) == ("dot", (b, c))
    assert (second.op, second.inputs) == ("dot", (a, first.out))
    left = chain_cost((1000, 10, 1000), (1000, 1000, 1))
    right = chain_cost((10, 1000, 1), (1000, 10, 1))
    assert f.optimization.cost_before == pytest.approx(left)
    assert f.optimization.cost_after == pytest.approx(right)
    assert right < left / 100
    av, bv, cv = (
        rng.normal(size=(1000, 10)),
        rng.normal(size=(10, 1000)),
        rng.normal(size=(1000, 1)),
    )
    check_values(f, [a, b, c], out, [av, bv, cv], av @ (bv @ cv), rtol=1e-10)


def test_matrix_chain_reassociates_left(rng):
    """A(BC) with A 10x1000, B 1000x10, C 10x1000: (AB)C has a 10x10 intermediate."""
    a = matrix("a", (10, 1000))
    b = matrix("b", (1000, 10))
    c = matrix("c", (10, 1000))
    out = T.dot(a, T.dot(b, c))
    f = compiled([a, b, c], out)
    first, second = nodes(f)
    assert (first.op, first.inputs) == ("dot", (a, b))
    assert (second.op, second.inputs) == ("dot", (first.out, c))
    assert f.optimization.cost_after == pytest.approx(chain_cost((10, 1000, 10), (10, 10, 1000)))
    av, bv, cv = (
        rng.normal(size=(10, 1000)),
        rng.normal(size=(1000, 10)),
        rng.normal(size=(10, 1000)),
    )
    check_values(f, [a, b, c], out, [av, bv, cv], (av @ bv) @ cv, rtol=1e-10)


def test_best_chain_order_is_kept(rng):
    a = matrix("a", (10, 1000))
    b = matrix("b", (1000, 10))
    c = matrix("c", (10, 1000))
    out = T.dot(T.dot(a, b), c)
    f = compiled([a, b, c], out)
    first, second = nodes(f)
    assert first.inputs == (a, b) and second.inputs == (first.out, c)


def test_matrix_times_matrix_times_vector_becomes_two_matrix_vector_products(rng):
    """Shapes unknown: (AB)v costs a matrix product, A(Bv) two matrix-vector products."""
    a, b, v = T.dmatrix("a"), T.dmatrix("b"), T.dvector("v")
    out = T.dot(T.dot(a, b), v)
    f = compiled([a, b, v], out)
    first, second = nodes(f)
    assert first.inputs == (b, v) and second.inputs == (a, first.out)
    av, bv, vv = rng.normal(size=(4, 5)), rng.normal(size=(5, 6)), rng.normal(size=6)
    check_values(f, [a, b, v], out, [av, bv, vv], av @ bv @ vv)


# ------------------------------------------------------------------------------------- gemm
def gemm_nodes(f):
    return [n for n in nodes(f) if n.op == "gemm"]


def test_alpha_dot_plus_beta_c_is_one_gemm(rng):
    a, b, c = T.dmatrix("a"), T.dmatrix("b"), T.dmatrix("c")
    alpha, beta = T.dscalar("alpha"), T.dscalar("beta")
    out = alpha * T.dot(a, b) + beta * c
    f = compiled([a, b, c, alpha, beta], out)
    assert ops(f) == ["gemm"]
    (g,) = gemm_nodes(f)
    assert g.inputs == (c, alpha, a, b, beta)
    assert g.p == {"trans_a": False, "trans_b": False}
    av, bv, cv = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    check_values(f, [a, b, c, alpha, beta], out, [av, bv, cv, 1.5, -0.5], 1.5 * av @ bv - 0.5 * cv)


# Each form is written once over `dot`: T.dot builds the graph, np.dot the expected value.
GEMM_FORMS = {
    "dot*s+c*2": lambda dot, a, b, c, s: dot(a, b) * s + c * 2.0,
    "c+s*dot": lambda dot, a, b, c, s: c + s * dot(a, b),
    "2c+dot*s": lambda dot, a, b, c, s: 2.0 * c + dot(a, b) * s,
    "dot+c": lambda dot, a, b, c, s: dot(a, b) + c,
    "c+dot": lambda dot, a, b, c, s: c + dot(a, b),
    "c-dot": lambda dot, a, b, c, s: c - dot(a, b),
    "dot(s*a,b)+c": lambda dot, a, b, c, s: dot(s * a, b) + c,
    "dot(a,b*3)+c": lambda dot, a, b, c, s: dot(a, b * 3.0) + c,
    "s*c-dot*2": lambda dot, a, b, c, s: s * c - dot(a, b) * 2.0,
}


@pytest.mark.parametrize("form", list(GEMM_FORMS), ids=list(GEMM_FORMS))
def test_gemm_forms(form, rng):
    build = GEMM_FORMS[form]
    a, b, c, s = T.dmatrix("a"), T.dmatrix("b"), T.dmatrix("c"), T.dscalar("s")
    out = build(T.dot, a, b, c, s)
    used = {id(v) for v in eqsat.graph.graph_inputs([out])}
    inputs = [v for v in (a, b, c, s) if id(v) in used]
    f = compiled(inputs, out)
    assert ops(f) == ["gemm"], ops(f)  # alpha and beta folded in, literals included
    av, bv, cv = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    values = {id(a): av, id(b): bv, id(c): cv, id(s): 0.75}
    expected = build(np.dot, av, bv, cv, 0.75)
    check_values(f, inputs, out, [values[id(v)] for v in inputs], expected)


def test_transposed_operands_become_flags(rng):
    a, b, c = T.dmatrix("a"), T.dmatrix("b"), T.dmatrix("c")
    out = 2.0 * T.dot(a.T, b.T) + c
    f = compiled([a, b, c], out)
    assert ops(f) == ["gemm"]
    (g,) = gemm_nodes(f)
    assert g.p == {"trans_a": True, "trans_b": True}
    assert g.inputs[2:4] == (a, b)
    av, bv, cv = rng.normal(size=(4, 3)), rng.normal(size=(5, 4)), rng.normal(size=(3, 5))
    check_values(f, [a, b, c], out, [av, bv, cv], 2.0 * av.T @ bv.T + cv)


@pytest.mark.parametrize("ta, tb", [(True, False), (False, True)])
def test_one_transposed_operand(ta, tb, rng):
    a, b, c = T.dmatrix("a"), T.dmatrix("b"), T.dmatrix("c")
    out = T.dot(a.T if ta else a, b.T if tb else b) + c
    f = compiled([a, b, c], out)
    assert ops(f) == ["gemm"]
    assert gemm_nodes(f)[0].p == {"trans_a": ta, "trans_b": tb}
    av = rng.normal(size=(4, 3) if ta else (3, 4))
    bv = rng.normal(size=(5, 4) if tb else (4, 5))
    cv = rng.normal(size=(3, 5))
    expected = (av.T if ta else av) @ (bv.T if tb else bv) + cv
    check_values(f, [a, b, c], out, [av, bv, cv], expected)


def test_gradient_step_is_one_gemm(rng):
    """w - lr * dot(x.T, g): gemm with alpha = -lr and x transposed by flag."""
    w, x, g = T.dmatrix("w"), T.dmatrix("x"), T.dmatrix("g")
    lr = T.dscalar("lr")
    out = w - lr * T.dot(x.T, g)
    f = compiled([w, x, g, lr], out)
    assert "gemm" in ops(f) and "dot" not in ops(f) and "sub" not in ops(f), ops(f)
    assert gemm_nodes(f)[0].p["trans_a"] is True
    wv, xv, gv = rng.normal(size=(4, 5)), rng.normal(size=(6, 4)), rng.normal(size=(6, 5))
    check_values(f, [w, x, g, lr], out, [wv, xv, gv, 0.1], wv - 0.1 * xv.T @ gv)


def test_mlp_layer_dot_plus_bias(rng):
    """dot(x, W) + b with a batch x: the bias row broadcast as gemm's accumulator."""
    x, w, b = T.dmatrix("x"), T.dmatrix("w"), T.dvector("b")
    out = T.dot(x, w) + b
    f = compiled([x, w, b], out)
    assert "gemm" in ops(f) and "dot" not in ops(f) and "add" not in ops(f), ops(f)
    xv, wv, bv = rng.normal(size=(8, 3)), rng.normal(size=(3, 4)), rng.normal(size=4)
    check_values(f, [x, w, b], out, [xv, wv, bv], xv @ wv + bv)
    # and through a nonlinearity, as a layer is used
    out = T.tanh(T.dot(x, w) + b)
    f = compiled([x, w, b], out)
    assert "gemm" in ops(f) and "dot" not in ops(f)
    check_values(f, [x, w, b], out, [xv, wv, bv], np.tanh(xv @ wv + bv))


def test_dot_shared_with_another_output_is_not_recomputed(rng):
    """The product is needed anyway: adding C to it is cheaper than a second product."""
    a, b, c = T.dmatrix("a"), T.dmatrix("b"), T.dmatrix("c")
    f = compiled([a, b, c], [T.dot(a, b) + c, T.dot(a, b)])
    assert sorted(ops(f)) == ["add", "dot"]


def test_mixed_dtypes_form_no_gemm(rng):
    a, b = matrix("a", dtype="float32"), matrix("b", dtype="float32")
    c = T.dmatrix("c")
    out = T.dot(a, b) + c
    f = compiled([a, b, c], out)
    assert "gemm" not in ops(f)
    av = rng.normal(size=(3, 4)).astype("float32")
    bv = rng.normal(size=(4, 5)).astype("float32")
    cv = rng.normal(size=(3, 5))
    got = check_values(f, [a, b, c], out, [av, bv, cv], (av @ bv).astype("float64") + cv, 1e-6)
    assert got.dtype == np.float64


def test_float32_gemm_stays_float32(rng):
    a, b, c = (matrix(n, dtype="float32") for n in "abc")
    out = 0.5 * T.dot(a, b) + c
    f = compiled([a, b, c], out)
    assert ops(f) == ["gemm"]
    vals = [rng.normal(size=s).astype("float32") for s in ((3, 4), (4, 5), (3, 5))]
    got = f(*vals)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, 0.5 * vals[0] @ vals[1] + vals[2], rtol=1e-5)


# ------------------------------------------------------------------------------------- gemv
def test_alpha_dot_plus_beta_y_is_one_gemv(rng):
    a, x, y = T.dmatrix("a"), T.dvector("x"), T.dvector("y")
    alpha, beta = T.dscalar("alpha"), T.dscalar("beta")
    out = alpha * T.dot(a, x) + beta * y
    f = compiled([a, x, y, alpha, beta], out)
    assert ops(f) == ["gemv"]
    assert nodes(f)[0].p == {"trans_a": False}
    av, xv, yv = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)
    check_values(f, [a, x, y, alpha, beta], out, [av, xv, yv, 2.0, -1.5], 2 * av @ xv - 1.5 * yv)


def test_vector_times_matrix_plus_bias_is_a_transposed_gemv(rng):
    x, w, b = T.dvector("x"), T.dmatrix("w"), T.dvector("b")
    out = T.dot(x, w) + b
    f = compiled([x, w, b], out)
    assert ops(f) == ["gemv"]
    g = nodes(f)[0]
    assert g.p == {"trans_a": True} and g.inputs[2:4] == (w, x)
    xv, wv, bv = rng.normal(size=3), rng.normal(size=(3, 4)), rng.normal(size=4)
    check_values(f, [x, w, b], out, [xv, wv, bv], xv @ wv + bv)


def test_transposed_matrix_times_vector_is_a_transposed_gemv(rng):
    a, x, y = T.dmatrix("a"), T.dvector("x"), T.dvector("y")
    out = y - T.dot(a.T, x)
    f = compiled([a, x, y], out)
    assert ops(f) == ["gemv"] and nodes(f)[0].p == {"trans_a": True}
    av, xv, yv = rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=3)
    check_values(f, [a, x, y], out, [av, xv, yv], yv - av.T @ xv)


# ------------------------------------------------------------------------ the ops themselves
def test_gemm_and_gemv_reference_values(rng):
    c, a, b = T.dmatrix("c"), T.dmatrix("a"), T.dmatrix("b")
    s, t = T.dscalar("s"), T.dscalar("t")
    cv, av, bv = rng.normal(size=(3, 5)), rng.normal(size=(4, 3)), rng.normal(size=(5, 4))
    out = apply("gemm", [c, s, a, b, t], trans_a=True, trans_b=True)
    f = eqsat.function([c, s, a, b, t], out, optimizer=None)
    np.testing.assert_allclose(f(cv, 2.0, av, bv, 3.0), 2 * av.T @ bv.T + 3 * cv, rtol=RTOL)
    y, x = T.dvector("y"), T.dvector("x")
    out = apply("gemv", [y, s, a, x, t], trans_a=True)
    f = eqsat.function([y, s, a, x, t], out, optimizer=None)
    yv, xv = rng.normal(size=3), rng.normal(size=4)
    np.testing.assert_allclose(f(yv, 2.0, av, xv, 3.0), 2 * av.T @ xv + 3 * yv, rtol=RTOL)


def test_gemm_type_errors():
    c, a, b, s = T.dmatrix("c"), T.dmatrix("a"), T.dmatrix("b"), T.dscalar("s")
    flags = {"trans_a": False, "trans_b": False}
    with pytest.raises(TypeError, match="alpha must be a scalar"):
        apply("gemm", [c, a, a, b, s], **flags)
    with pytest.raises(TypeError, match="b must have ndim 2"):
        apply("gemm", [c, s, a, T.dvector("v"), s], **flags)
    with pytest.raises(TypeError, match="trans_a must be given as a bool"):
        apply("gemm", [c, s, a, b, s], trans_b=False)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        apply("gemm", [c, s, matrix("p", (2, 3)), matrix("q", (2, 3)), s], **flags)
    with pytest.raises(ValueError, match="accumulator"):
        apply("gemm", [matrix("r", (4, 4)), s, matrix("p", (2, 3)), matrix("q", (3, 4)), s],
              **flags)  # fmt: skip
    with pytest.raises(TypeError, match="x must have ndim 1"):
        apply("gemv", [T.dvector("y"), s, a, b, s], trans_a=False)


def test_gemm_cost_is_below_the_expression_it_replaces():
    m, k, n = 1000, 1000, 1000
    dot = op_cost("dot", m * n, [m * k, k * n])
    gemm = op_cost("gemm", m * n, [m * n, 1, m * k, k * n, 1])
    assert gemm < dot + op_cost("add", m * n, [m * n, m * n])
    gemv = op_cost("gemv", m, [m, 1, m * n, n, 1])
    assert gemv < op_cost("dot", m, [m * n, n]) + op_cost("add", m, [m, m])


# -------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_gradient_matches_sympy_and_finite_differences(ta, tb, mode):
    rng = np.random.default_rng(7 + 2 * ta + tb)
    c, s, a, b, t = T.dmatrix("c"), T.dscalar("s"), T.dmatrix("a"), T.dmatrix("b"), T.dscalar("t")
    out = apply("gemm", [c, s, a, b, t], trans_a=ta, trans_b=tb)
    w = T.constant(sample(rng, (2, 4)))
    cost = T.sum(T.tanh(out) * w)
    values = {
        c: sample(rng, (2, 4)),
        s: np.float64(rng.uniform(-1, 1)),
        a: sample(rng, (3, 2) if ta else (2, 3)),
        b: sample(rng, (4, 3) if tb else (3, 4)),
        t: np.float64(rng.uniform(-1, 1)),
    }
    check_grad(cost, [c, s, a, b, t], values, mode)


@pytest.mark.parametrize("ta", [False, True])
def test_gemv_gradient_matches_sympy_and_finite_differences(ta, mode):
    rng = np.random.default_rng(11 + ta)
    y, s, a, x, t = T.dvector("y"), T.dscalar("s"), T.dmatrix("a"), T.dvector("x"), T.dscalar("t")
    out = apply("gemv", [y, s, a, x, t], trans_a=ta)
    cost = T.sum(T.sqr(out))
    values = {
        y: sample(rng, (3,)),
        s: np.float64(rng.uniform(-1, 1)),
        a: sample(rng, (4, 3) if ta else (3, 4)),
        x: sample(rng, (4,)),
        t: np.float64(rng.uniform(-1, 1)),
    }
    check_grad(cost, [y, s, a, x, t], values, mode)


def test_gradient_of_an_mlp_layer_optimized_with_gemm(rng):
    """The gradient graph of tanh(dot(x, W) + b) is optimized too (forward gemm, backward
    products): values equal the unoptimized graph's and NumPy's hand-derived gradient."""
    x, w, b = T.dmatrix("x"), T.dmatrix("w"), T.dvector("b")
    h = T.tanh(T.dot(x, w) + b)
    cost = T.sum(T.sqr(h))
    gw, gb = T.grad(cost, [w, b])
    f = compiled([x, w, b], [cost, gw, gb])
    assert "gemm" in ops(f)
    xv, wv, bv = rng.normal(size=(6, 3)), rng.normal(size=(3, 4)), rng.normal(size=4)
    hv = np.tanh(xv @ wv + bv)
    dz = 2 * hv * (1 - hv**2)
    got = f(xv, wv, bv)
    plain = eqsat.function([x, w, b], [cost, gw, gb], optimizer=None)(xv, wv, bv)
    for g, p, e in zip(got, plain, [np.sum(hv**2), xv.T @ dz, dz.sum(0)], strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-10)
        np.testing.assert_allclose(g, p, rtol=1e-10)
