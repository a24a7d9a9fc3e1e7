"""Row passes: a matrix-vector product, an elementwise kernel on its result and the transposed
product with the same matrix, swept in blocks of rows. Every case checks the plan has (or has
not) the pass, and the results against NumPy written by hand."""

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat.codegen import blas, c_rowpass
from eqsat.codegen.compile import compiler
from eqsat.codegen.plan import Kernel
from eqsat.codegen.rowpass import RowPass

BACKEND_INDEPENDENT = True  # compiles in mode "c" and checks against NumPy itself
pytestmark = pytest.mark.skipif(
    compiler() is None or blas.find() is None, reason="needs a C compiler and NumPy's CBLAS"
)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def step(dtype="float64", reg=True, optimizer="default"):
    """A logistic-regression gradient step: (loss, gradient of w, predictions)."""
    x = T.matrix("x", dtype=dtype)
    y = T.vector("y", dtype=dtype)
    w = T.vector("w", dtype=dtype)
    p = T.nnet.sigmoid(T.dot(x, w))
    g = p - y
    grad = T.dot(g, x) + (w * 0.5 if reg else 0)
    loss = (T.nnet.softplus(-T.dot(x, w)) * y).sum()
    f = theano.function([x, y, w], [loss, grad, p > 0.5], mode="c", optimizer=optimizer)
    return f


def expected(x, y, w, reg=True):
    s = x @ w
    p = sigmoid(s)
    grad = (p - y) @ x + (w * 0.5 if reg else 0)
    loss = (np.logaddexp(0, -s) * y).sum()
    return loss, grad, p > 0.5


def passes(f):
    return [s for s in f.thunk.plan.steps if isinstance(s, RowPass)]


def check(f, x, y, w, rtol=1e-12, reg=True):
    loss, grad, pred = f(x, y, w)
    want = expected(x.astype(np.float64), y.astype(np.float64), w.astype(np.float64), reg)
    tol = rtol if x.dtype == np.float64 else 2e-4
    np.testing.assert_allclose(loss, want[0], rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(grad, want[1], rtol=tol, atol=tol * max(1, x.shape[0]))
    np.testing.assert_array_equal(pred, want[2])
    assert grad.dtype == x.dtype


def data(n, k, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, k)).astype(dtype)
    y = rng.integers(0, 2, n).astype(dtype)
    w = (rng.standard_normal(k) * 0.1).astype(dtype)
    return x, y, w


def test_the_step_sweeps_the_matrix_once():
    f = step()
    (rp,) = passes(f)
    assert rp.forward.matrix is rp.backward.matrix
    assert not rp.forward.trans and rp.backward.trans
    blas_calls = [s for s in f.thunk.plan.steps if getattr(s, "kind", None) == "blas"]
    assert blas_calls == []  # both products are inside the pass
    check(f, *data(50, 30))


@pytest.mark.parametrize(
    "n,k",
    [
        (3000, 100),  # in chunks, one block each
        (12000, 100),  # in chunks of several blocks of rows, the last one partial
        (1, 7),
        (7, 1),
        (0, 5),  # no rows: the gradient is the added term alone
        (5, 0),  # no columns: s is 0 and the gradient empty
        (1400, 784),  # the tutorial's size: chunks the pool's threads take
        (200, 100),  # under POOL_MIN: one chunk
    ],
)
def test_shapes(n, k):
    rows = c_rowpass.BLOCK_BYTES // (k * 8) if k else 0
    chunk = -(-n // c_rowpass.CHUNKS)
    assert (n, k) != (12000, 100) or (chunk % rows and chunk // rows >= 2)
    assert (n, k) != (200, 100) or n * k < c_rowpass.POOL_MIN
    check(step(), *data(n, k))


def test_unregularized_gradient_has_no_added_term():
    f = step(reg=False)
    (rp,) = passes(f)
    assert rp.backward.c is None
    check(f, *data(300, 40), reg=False)


def test_float32():
    f = step("float32")
    assert passes(f)
    check(f, *data(600, 50, "float32"))


@pytest.mark.parametrize("layout", ["fortran", "sliced", "transposed"])
def test_matrices_that_are_not_c_contiguous(layout):
    x, y, w = data(120, 33)
    if layout == "fortran":
        x = np.asfortranarray(x)
    elif layout == "sliced":
        x = np.ascontiguousarray(np.hstack([x, x]))[:, ::2]
    else:
        x = np.ascontiguousarray(x.T).T
    assert not x.flags.c_contiguous
    check(step(), x, y, w)


def test_vectors_with_strides():
    x, y, w = data(80, 20)
    wide = np.repeat(w, 3)[::3]
    ys = np.repeat(y, 2)[::2]
    assert wide.strides[0] != 8
    check(step(), x, ys, wide.copy())
    check(step(), x, ys, wide)


def test_rows_that_do_not_match_the_labels_raise():
    x, y, w = data(40, 10)
    f = step()
    with pytest.raises(ValueError, match=r"\(41,\)"):
        f(x, np.zeros(41), w)
    # the pass's own check, behind the function's (the thunk alone, as a plan runs it)
    with pytest.raises(ValueError, match=r"\(41,\)"):
        f.thunk.run(x, np.zeros(41), w)
    with pytest.raises(ValueError, match=r"\(1,\)"):  # y is not declared broadcastable
        f.thunk.run(x, np.zeros(1), w)


def test_inner_dimensions_that_differ_raise():
    x, y, w = data(40, 10)
    f = step()
    with pytest.raises(ValueError, match=r"x.* \(40, 10\).*w.* \(11,\)"):
        f(x, y, np.zeros(11))
    with pytest.raises(ValueError, match=r"inner dimensions differ: shapes \(40, 10\) and \(11,\)"):
        f.thunk.run(x, y, np.zeros(11))


def test_an_added_term_of_another_length_raises():
    x, w, z = T.dmatrix("x"), T.dvector("w"), T.dvector("z")
    f = theano.function([x, w, z], T.dot(T.tanh(T.dot(x, w)), x) + z, mode="c")
    (rp,) = passes(f)
    assert rp.backward.c is not None
    xv, _, wv = data(30, 6)
    zv = np.arange(6.0)
    np.testing.assert_allclose(f(xv, wv, zv), np.tanh(xv @ wv) @ xv + zv, rtol=1e-12)
    with pytest.raises(ValueError, match=r"added term of shape \(5,\).*length 6"):
        f.thunk.run(xv, wv, np.zeros(5))  # (the function's own check says so first)
    with pytest.raises(ValueError, match="z"):
        f(xv, wv, np.zeros(5))


def test_a_kernel_needing_a_reduction_of_the_forward_product_is_not_swept():
    # softmax-like: the kernel reads max(s), made from the whole of s by another step
    x = T.dmatrix("x")
    w = T.dvector("w")
    s = T.dot(x, w)
    g = T.exp(s - s.max())
    out = T.dot(g, x)
    f = theano.function([x, w], out, mode="c")
    assert not passes(f)
    xv, _, wv = data(60, 9)
    sv = xv @ wv
    np.testing.assert_allclose(f(xv, wv), np.exp(sv - sv.max()) @ xv, rtol=1e-12)


def test_a_different_matrix_is_not_swept():
    x, z = T.dmatrices("x", "z")
    w = T.dvector("w")
    out = T.dot(T.tanh(T.dot(x, w)), z)
    f = theano.function([x, z, w], out, mode="c")
    assert not passes(f)
    xv, _, wv = data(30, 8)
    zv = np.random.default_rng(3).standard_normal((30, 5))
    np.testing.assert_allclose(f(xv, zv, wv), np.tanh(xv @ wv) @ zv, rtol=1e-12)


def test_the_tutorial_training_step_agrees_with_the_reference_backend():
    rng = np.random.default_rng(5)
    n, feats = 300, 60
    xv, yv = rng.standard_normal((n, feats)), rng.integers(0, 2, n).astype(float)
    results = {}
    for mode in ("c", "py"):
        x, y = T.dmatrix("x"), T.dvector("y")
        w = theano.shared(rng.standard_normal(feats) * 0 + 0.05, name="w")
        b = theano.shared(0.1, name="b")
        p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
        xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
        cost = xent.mean() + 0.01 * (w**2).sum()
        gw, gb = T.grad(cost, [w, b])
        train = theano.function(
            [x, y], [p_1 > 0.5, cost], updates=((w, w - 0.1 * gw), (b, b - 0.1 * gb)), mode=mode
        )
        if mode == "c":
            (rp,) = passes(train)
            steps, k = train.thunk.plan.steps, train.thunk.plan.steps.index(rp)
            # one C call: the pass, the kernels after it, and the kernel before it that makes
            # its added term (0.02 * w, copied inside the call)
            (run,) = train.thunk.segments.values()
            maker = [j for j in run if isinstance(steps[j], Kernel) and j < k]
            assert k in run and any(rp.backward.c in steps[j].outputs for j in maker)
        outs = [train(xv, yv) for _ in range(3)][-1]
        results[mode] = outs, w.get_value(), b.get_value()
    (pc, cc), wc, bc = results["c"]
    (pp, cp), wp, bp = results["py"]
    np.testing.assert_array_equal(pc, pp)
    np.testing.assert_allclose([cc, bc], [cp, bp], rtol=1e-12)
    np.testing.assert_allclose(wc, wp, rtol=1e-12, atol=1e-15)
