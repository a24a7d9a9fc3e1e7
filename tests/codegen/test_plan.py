"""The kernel plan: what fuses, what stays a step, and that every plan still computes what the
NumPy reference does (each case runs through mode="c" against mode="py")."""

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat.codegen import c
from eqsat.codegen.plan import Call, Kernel, make_plan

BACKEND_INDEPENDENT = True  # compares the backends itself


def plan_of(outputs, merge=True):
    from eqsat import shapes

    known = shapes.infer(outputs)

    def same(a, b):
        return known.key(a) is not None and known.key(a) == known.key(b)

    return make_plan(outputs, c.fusable, same if merge else None)


def agree(inputs, outputs, *values, **kw):
    """mode c and mode py give the same results (and c compiles a plan with kernels)."""
    fc = theano.function(inputs, outputs, mode="c", optimizer=None, **kw)
    fp = theano.function(inputs, outputs, mode="py", optimizer=None, **kw)
    got, want = fc(*values), fp(*values)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=0)
        assert g.dtype == w.dtype and g.shape == w.shape
    return fc


def test_an_elementwise_chain_is_one_kernel_writing_only_its_end():
    x, y = T.dvectors("x", "y")
    out = T.exp(-x * x) * T.log1p(y * y) + T.tanh(x - y) * 0.5
    plan = plan_of([out])
    assert [type(s) for s in plan.steps] == [Kernel]
    (k,) = plan.kernels
    assert k.outputs == [out] and len(k.computed) == 10


def test_a_value_two_kernels_read_is_written_once():
    x = T.dmatrix("x")
    e = T.exp(x)
    rows = e.sum(axis=1)
    out = e / rows.dimshuffle(0, "x")  # needs the whole row sum first: two loops
    plan = plan_of([out])
    assert len(plan.kernels) == 2
    first, second = plan.kernels
    assert first.reduce is not None and e in first.outputs
    assert second.views and e in second.inputs
    a = np.random.default_rng(0).standard_normal((5, 7))
    agree([x], [out], a)


def test_loops_over_one_shape_merge_into_one_kernel_with_several_outputs():
    x, y = T.dvectors("x", "y")
    outs = [T.exp(x) + y, (x * y).sum(), T.tanh(y) > 0.5]
    plan = plan_of(outs)
    (k,) = plan.kernels
    assert {id(o) for o in outs} <= {id(o) for o in k.outputs}
    assert len(plan_of(outs, merge=False).kernels) == 3
    rng = np.random.default_rng(1)
    agree([x, y], outs, rng.standard_normal(9), rng.standard_normal(9))


def test_loops_over_different_shapes_do_not_merge():
    x, w = T.dvectors("x", "w")
    plan = plan_of([T.exp(x), T.exp(w)])
    assert len(plan.kernels) == 2


def test_a_kernel_after_a_step_that_needs_another_kernel_does_not_merge_with_it():
    x = T.dvector("x")
    a = T.exp(x)
    s = T.dot(a, a)  # a BLAS step between the two loops over x's shape
    b = T.tanh(x) * s
    plan = plan_of([b])
    kinds = [s.kind if isinstance(s, Call) else "kernel" for s in plan.steps]
    assert kinds == ["kernel", "blas", "kernel"]
    agree([x], [b], np.linspace(-1, 1, 6))


def test_dimshuffles_are_strided_reads_not_steps():
    m, v = T.dmatrix("m"), T.dvector("v")
    out = T.exp(m.T) * v.dimshuffle("x", 0)  # transposed matrix, broadcast row
    plan = plan_of([out])
    assert [type(s) for s in plan.steps] == [Kernel]
    assert len(plan.kernels[0].views) == 2
    rng = np.random.default_rng(2)
    agree([m, v], [out], rng.standard_normal((4, 3)), rng.standard_normal(4))


def test_a_view_of_a_view_reads_correctly():
    v = T.dvector("v")
    s = T.dscalar("s")
    twice = s.dimshuffle("x").dimshuffle("x", 0)  # a 1x1 matrix from a scalar, in two steps
    out = T.exp(v.dimshuffle(0, "x")) * twice
    agree([v, s], [out], np.arange(3.0), 2.0)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_logistic_regression_step_is_a_few_kernels(n):
    x, y = T.dmatrix("x"), T.dvector("y")
    w = theano.shared(np.linspace(-1, 1, 4), name="w")
    b = theano.shared(0.0, name="b")
    p = 1 / (1 + T.exp(-T.dot(x, w) - b))
    xent = -y * T.log(p) - (1 - y) * T.log(1 - p)
    cost = xent.mean() + 0.01 * (w**2).sum()
    gw, gb = T.grad(cost, [w, b])
    f = theano.function([x, y], [p > 0.5, xent], updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)],
                        mode="c")  # fmt: skip
    kernels = f.thunk.plan.kernels
    assert len(kernels) <= 6, [[n.op for n in k.nodes] for k in kernels]
    rng = np.random.default_rng(3)
    data = rng.standard_normal((n, 4)), rng.integers(0, 2, n).astype(float)
    got = f(*data) + [w.get_value(), b.get_value()]
    w.set_value(np.linspace(-1, 1, 4))
    b.set_value(0.0)
    fp = theano.function([x, y], [p > 0.5, xent],
                         updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)], mode="py")  # fmt: skip
    want = fp(*data) + [w.get_value(), b.get_value()]
    for g, e in zip(got, want, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-12)


def test_kernels_in_a_row_are_one_call_and_a_mismatch_names_its_kernel():
    from eqsat.runtime.compiled import CThunk

    x, y, z = T.dvectors("x", "y", "z")
    s = T.exp(x).sum()
    out = y + z * s  # a second loop, over another shape: two kernels, one after the other
    thunk = CThunk([s, out])
    assert len(thunk.plan.kernels) == 2 and list(thunk.segments.values()) == [[0, 1]]
    assert thunk.source.count("code = ") == 1  # one C call runs both
    a, b, cc = np.linspace(0, 1, 4), np.arange(3.0), np.arange(3.0) + 1
    got = thunk({id(x): a, id(y): b, id(z): cc})
    np.testing.assert_allclose(got[0], np.exp(a).sum(), rtol=1e-14)
    np.testing.assert_allclose(got[1], b + cc * np.exp(a).sum(), rtol=1e-14)
    with pytest.raises(ValueError, match=r"^mul, add: input shapes .* do not match"):
        thunk({id(x): a, id(y): b, id(z): np.arange(5.0)})
