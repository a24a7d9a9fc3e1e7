"""The forms gradients and losses take once optimized, end to end through `eqsat.function`:
softmax cross-entropy (softmax - one_hot), the tutorial's logistic regression, one_hot's label
check, logsumexp, fast_math identities. Expected values come from NumPy implementations of the
same math with stable formulas, or from hand-derived gradients, never from eqsat's output."""

from __future__ import annotations

import math

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T

# --------------------------------------------------------------------------- helpers


def ops_of(f) -> list[str]:
    return [n.op for n in f.maker.fgraph.toposort()]


def optimized(f):
    assert f.optimization is not None, "the default optimizer should have run"
    assert f.optimization.fallback is None, f.optimization.fallback
    return f


def np_logsumexp_rows(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]


def np_softmax_rows(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softplus(t: np.ndarray) -> np.ndarray:
    """log(1 + exp(t)) without overflow."""
    return np.maximum(t, 0) + np.log1p(np.exp(-np.abs(t)))


def sigmoid(t: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(t))
    return np.where(t >= 0, 1 / (1 + e), e / (1 + e))


# --------------------------------------------------------------------------- MLP


N_IN, N_HID, N_OUT, BATCH, LR = 5, 4, 3, 7, 0.1


def mlp_init(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(N_IN, N_HID)),
        rng.normal(size=N_HID) * 0.1,
        rng.normal(size=(N_HID, N_OUT)),
        rng.normal(size=N_OUT) * 0.1,
    ]


def mlp_data(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.array([0, 1, 2, 2, 1, 0, 1], dtype="int32")
    return rng.normal(size=(BATCH, N_IN)), labels


def mlp_graph(init: list[np.ndarray]):
    """x -> tanh(x W1 + b1) -> softmax(h W2 + b2); mean cross-entropy against integer labels."""
    x, labels = T.dmatrix("x"), T.ivector("labels")
    params = [
        theano.shared(v.copy(), name=n) for v, n in zip(init, ["W1", "b1", "W2", "b2"], strict=True)
    ]
    w1, b1, w2, b2 = params
    h = T.tanh(T.dot(x, w1) + b1)
    p = T.nnet.softmax(T.dot(h, w2) + b2)
    cost = T.mean(T.nnet.categorical_crossentropy(p, labels))
    grads = T.grad(cost, params)
    return x, labels, params, cost, grads


def mlp_train(init: list[np.ndarray], **kwargs):
    x, labels, params, cost, grads = mlp_graph(init)
    updates = [(q, q - LR * g) for q, g in zip(params, grads, strict=True)]
    return theano.function([x, labels], cost, updates=updates, **kwargs), params


def np_mlp(x, labels, w1, b1, w2, b2):
    """Cost and gradients by hand: d cost / d logits = (softmax - onehot) / batch."""
    h = np.tanh(x @ w1 + b1)
    z = h @ w2 + b2
    n = len(labels)
    cost = np.mean(np_logsumexp_rows(z) - z[np.arange(n), labels])
    onehot = np.eye(z.shape[1])[labels]
    dz = (np_softmax_rows(z) - onehot) / n
    gw2, gb2 = h.T @ dz, dz.sum(axis=0)
    dz1 = (dz @ w2.T) * (1 - h**2)
    gw1, gb1 = x.T @ dz1, dz1.sum(axis=0)
    return cost, [gw1, gb1, gw2, gb2]


def test_mlp_gradient_is_softmax_minus_one_hot():
    f, _ = mlp_train(mlp_init())
    optimized(f)
    fg = f.maker.fgraph
    nodes = fg.toposort()
    ops = [n.op for n in nodes]

    def producer(v):
        return v.owner.op if v.owner is not None else None

    subs = [n for n in nodes if n.op == "sub"]
    assert any(sorted(producer(i) for i in n.inputs) == ["one_hot", "softmax"] for n in subs), [
        (n.op, [producer(i) for i in n.inputs]) for n in subs
    ]
    sub = next(n for n in subs if producer(n.inputs[0]) == "softmax")
    assert producer(sub.inputs[1]) == "one_hot"  # softmax - onehot, not onehot - softmax
    assert "log_softmax" in ops  # the cost: -sum(onehot * log_softmax(z))
    assert "log" not in ops  # no log(softmax(z)) left, which is -inf for a logit far below
    assert len(nodes) < f.optimization.ops_before, (len(nodes), f.optimization.ops_before)
    assert f.optimization.ops_after == len(nodes)


def test_mlp_values_match_unoptimized_and_numpy():
    init = mlp_init()
    x, labels = mlp_data()
    f_opt, p_opt = mlp_train(init)
    f_ref, p_ref = mlp_train(init, optimizer=None)
    optimized(f_opt)
    assert f_ref.optimization is None
    state = [v.copy() for v in init]
    for step in range(2):
        c_opt, c_ref = f_opt(x, labels), f_ref(x, labels)
        c_np, grads = np_mlp(x, labels, *state)
        state = [v - LR * g for v, g in zip(state, grads, strict=True)]
        np.testing.assert_allclose(c_opt, c_ref, rtol=1e-10, err_msg=f"cost, step {step}")
        np.testing.assert_allclose(c_opt, c_np, rtol=1e-10, err_msg=f"cost, step {step}")
        for q_opt, q_ref, want in zip(p_opt, p_ref, state, strict=True):
            got = q_opt.get_value()
            np.testing.assert_allclose(
                got,
                q_ref.get_value(),
                rtol=1e-10,
                atol=1e-14,
                err_msg=f"{q_opt.name} after step {step}",
            )
            np.testing.assert_allclose(
                got, want, rtol=1e-10, atol=1e-14, err_msg=f"{q_opt.name} after step {step}"
            )
    # the parameters moved: the comparison above is not between initial values
    assert not np.allclose(p_opt[2].get_value(), init[2])


def test_mlp_invalid_label_raises_and_changes_nothing():
    init = mlp_init()
    x, labels = mlp_data()
    f, params = mlp_train(init)
    bad = labels.copy()
    bad[3] = N_OUT
    with pytest.raises(ValueError, match="labels"):
        f(x, bad)
    for q, v in zip(params, init, strict=True):
        np.testing.assert_array_equal(q.get_value(), v)


def test_mlp_large_logits_cost_and_gradient_are_finite():
    """Hidden units saturated at +-1 and W2 of +-250 put logits at 0, +-500 and +-1000: the
    textbook log(softmax) is -inf there, the optimized graph is exact."""
    rng = np.random.default_rng(5)
    w1 = rng.normal(size=(N_IN, N_HID)) * 100.0
    w2 = np.where(rng.random((N_HID, N_OUT)) < 0.5, -250.0, 250.0)
    init = [w1, np.zeros(N_HID), w2, np.zeros(N_OUT)]
    x, labels = mlp_data()
    xv, lab, params, cost, grads = mlp_graph(init)
    f = optimized(theano.function([xv, lab], [cost, *grads]))
    cost_v, *grad_v = f(x, labels)
    c_np, g_np = np_mlp(x, labels, *init)
    z = np.tanh(x @ w1) @ w2
    assert np.abs(z).max() >= 999.0  # the case is the one it claims to be
    assert math.isfinite(cost_v) and cost_v > 100.0, cost_v
    np.testing.assert_allclose(cost_v, c_np, rtol=1e-12)
    for g, want in zip(grad_v, g_np, strict=True):
        assert np.all(np.isfinite(g)), g
        np.testing.assert_allclose(g, want, rtol=1e-9, atol=1e-12)
    with np.errstate(all="ignore"):  # why this is about the optimizer
        c_ref = theano.function([xv, lab], cost, optimizer=None)(x, labels)
    assert not math.isfinite(c_ref)


# --------------------------------------------------------------------------- logistic regression


def test_tutorial_logistic_regression_every_step_is_finite_and_exact():
    """The Theano tutorial verbatim (w = randn(784), N = 400): |x.w| reaches ~80, where
    1 - p_1 rounds to 0 and the unoptimized cost is inf."""
    rng = np.random.RandomState(0)
    n, feats, steps = 400, 784, 50
    X, Y = rng.randn(n, feats), rng.randint(size=n, low=0, high=2)  # noqa: N806
    w0 = rng.randn(feats)
    x, y = T.dmatrix("x"), T.dvector("y")
    w, b = theano.shared(w0.copy(), name="w"), theano.shared(0.0, name="b")
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    prediction = p_1 > 0.5
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w**2).sum()
    gw, gb = T.grad(cost, [w, b])
    train = optimized(
        theano.function([x, y], [prediction, cost], updates=((w, w - 0.1 * gw), (b, b - 0.1 * gb)))
    )
    assert train.optimization.ops_after < train.optimization.ops_before
    assert len(ops_of(train)) < train.optimization.ops_before

    w_np, b_np = w0.copy(), 0.0
    for step in range(steps):
        pred, c = train(X, Y.astype(float))
        z = X @ w_np + b_np
        c_np = np.mean(Y * softplus(-z) + (1 - Y) * softplus(z)) + 0.01 * np.sum(w_np**2)
        d = sigmoid(z) - Y
        w_np, b_np = w_np - 0.1 * (X.T @ d / n + 0.02 * w_np), b_np - 0.1 * d.mean()
        if step == 0:
            assert np.abs(z).max() > 60  # the regime where the textbook form fails
        assert math.isfinite(c), (step, c)
        assert np.all(np.isfinite(w.get_value())) and math.isfinite(b.get_value()), step
        np.testing.assert_allclose(c, c_np, rtol=1e-9, err_msg=f"cost at step {step}")
        np.testing.assert_array_equal(pred, z > 0, err_msg=f"prediction at step {step}")
        np.testing.assert_allclose(
            w.get_value(), w_np, rtol=1e-9, atol=1e-12, err_msg=f"w after step {step}"
        )
        np.testing.assert_allclose(
            b.get_value(), b_np, rtol=1e-9, atol=1e-12, err_msg=f"b after step {step}"
        )


# --------------------------------------------------------------------------- one_hot labels


@pytest.fixture(scope="module")
def xent_fn():
    p, labels = T.dmatrix("p"), T.ivector("labels")
    cost = T.nnet.categorical_crossentropy(T.nnet.softmax(p), labels)
    return optimized(theano.function([p, labels], cost))


@pytest.mark.parametrize("bad", [-1, 3, 4, -100])
def test_one_hot_labels_out_of_range_raise(xent_fn, bad):
    z = np.zeros((3, 3))
    labels = np.array([0, bad, 2], dtype="int32")
    with pytest.raises(ValueError, match="labels") as info:
        xent_fn(z, labels)
    assert f"[{bad}]" in str(info.value)  # the offending label itself


@pytest.mark.parametrize("optimizer", ["default", None])
def test_one_hot_label_equal_to_class_count_raises(optimizer):
    p, labels = T.dmatrix("p"), T.ivector("labels")
    f = theano.function(
        [p, labels],
        T.nnet.categorical_crossentropy(T.nnet.softmax(p), labels).mean(),
        optimizer=optimizer,
    )
    with pytest.raises(ValueError, match=r"labels.*\[2\]"):
        f(np.zeros((2, 2)), np.array([1, 2], dtype="int32"))


def test_one_hot_valid_labels_match_numpy(xent_fn):
    rng = np.random.default_rng(2)
    z = rng.normal(size=(6, 4)) * 3
    z[0] = [1000.0, -1000.0, 0.0, 5.0]
    labels = np.array([1, 0, 3, 2, 3, 0], dtype="int32")
    got = xent_fn(z, labels)
    want = np_logsumexp_rows(z) - z[np.arange(6), labels]
    assert np.all(np.isfinite(got)), got
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


# --------------------------------------------------------------------------- logsumexp


def lse_1d(row) -> float:
    row = [float(v) for v in row]
    if any(math.isnan(v) for v in row):
        return math.nan
    if any(v == math.inf for v in row):
        return math.inf
    if not row or all(v == -math.inf for v in row):
        return -math.inf
    m = max(row)
    return m + math.log(math.fsum(math.exp(v - m) for v in row))


def lse_ref(a: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    axes = tuple(range(a.ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    kept = [i for i in range(a.ndim) if i not in axes]
    moved = np.transpose(a, kept + list(axes))
    flat = moved.reshape(*[a.shape[i] for i in kept], -1)
    out = np.array([lse_1d(r) for r in flat.reshape(-1, flat.shape[-1])]).reshape(flat.shape[:-1])
    if keepdims:
        out = out.reshape([1 if i in axes else a.shape[i] for i in range(a.ndim)])
    return out


INF = np.inf
LSE_MATRICES = {
    "finite": np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1000.0, -999.0], [1.0, 2.0, 3.0]]),
    "special": np.array(
        [
            [1000.0, -1000.0, 0.0],
            [-INF, -INF, -INF],
            [INF, 1.0, 2.0],
            [np.nan, 0.0, 1.0],
            [-1000.0, -1000.0, -1000.0],
            [-INF, 5.0, -INF],
        ]
    ),
    "columns": np.array([[1000.0, -INF, 3.0], [-1000.0, -INF, INF], [999.0, -INF, -INF]]),
}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("name", list(LSE_MATRICES))
def test_logsumexp_matches_stable_numpy(name, axis, keepdims):
    a = LSE_MATRICES[name]
    m = T.dmatrix("m")
    f = theano.function([m], T.logsumexp(m, axis=axis, keepdims=keepdims))
    with np.errstate(all="ignore"):
        got = f(a)
    want = lse_ref(a, axis, keepdims)
    assert np.shape(got) == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0, equal_nan=True)


def test_logsumexp_vector():
    v = T.dvector("v")
    f = theano.function([v], [T.logsumexp(v), T.logsumexp(v, keepdims=True)])
    for a in ([1000.0, 1000.0], [-1000.0, -INF], [INF, -INF], [-INF, -INF], [np.nan, INF]):
        with np.errstate(all="ignore"):
            got, got_kept = f(np.array(a))
        want = lse_1d(a)
        assert np.shape(got) == () and np.shape(got_kept) == (1,)
        np.testing.assert_allclose([got, got_kept[0]], [want, want], rtol=1e-15, equal_nan=True)
    assert f(np.array([1000.0, 1000.0]))[0] == pytest.approx(1000.0 + math.log(2), rel=1e-15)


def test_logsumexp_gradient_is_softmax():
    v = T.dvector("v")
    f = optimized(theano.function([v], T.grad(T.logsumexp(v), v)))
    a = np.array([1000.0, 999.0, -1000.0, 0.0])
    e = np.exp(a - a.max())
    got = f(a)
    assert np.all(np.isfinite(got)), got
    np.testing.assert_allclose(got, e / e.sum(), rtol=1e-13, atol=1e-300)


def test_log_sum_exp_is_rewritten_to_logsumexp():
    x = T.dvector("x")
    f = optimized(theano.function([x], T.log(T.sum(T.exp(x)))))
    assert "logsumexp" in ops_of(f)
    assert "exp" not in ops_of(f)
    got = f(np.array([1000.0]))
    assert math.isfinite(got) and got == pytest.approx(1000.0, rel=1e-15)
    with np.errstate(all="ignore"):
        ref = theano.function([x], T.log(T.sum(T.exp(x))), optimizer=None)(np.array([1000.0]))
    assert ref == INF  # the textbook form overflows


def test_log_sum_exp_rows_is_rewritten_to_logsumexp():
    m = T.dmatrix("m")
    f = optimized(theano.function([m], T.log(T.sum(T.exp(m), axis=1))))
    assert "logsumexp" in ops_of(f)
    a = LSE_MATRICES["finite"]
    np.testing.assert_allclose(f(a), lse_ref(a, 1, False), rtol=1e-14)


# --------------------------------------------------------------------------- fast_math


@pytest.mark.parametrize(
    "make",
    [T.dvector, T.fvector, T.dmatrix, T.fmatrix],
    ids=["dvector", "fvector", "dmatrix", "fmatrix"],
)
def test_fast_math_x_minus_x_plus_one(make):
    x = make("x")
    f = optimized(theano.function([x], x - x + 1, fast_math=True))
    assert "sub" not in ops_of(f)
    assert any(k.startswith("fast_math/") for k in f.optimization.rules_fired), (
        f.optimization.rules_fired
    )
    shape = (4,) if x.ndim == 1 else (2, 3)
    value = np.full(shape, np.inf, dtype=x.dtype)  # fast_math assumes finite: inf - inf = 0
    got = f(value)
    assert got.shape == shape and got.dtype == np.dtype(x.dtype)
    np.testing.assert_array_equal(got, np.ones(shape, dtype=x.dtype))


@pytest.mark.parametrize("make", [T.dvector, T.fmatrix], ids=["dvector", "fmatrix"])
def test_without_fast_math_sub_stays_and_inf_gives_nan(make):
    x = make("x")
    f = optimized(theano.function([x], x - x + 1))
    assert "sub" in ops_of(f)
    assert not any(k.startswith("fast_math/") for k in f.optimization.rules_fired)
    shape = (3,) if x.ndim == 1 else (2, 3)
    value = np.ones(shape, dtype=x.dtype)
    value.flat[0] = np.inf
    with np.errstate(invalid="ignore"):
        got = f(value)
    assert got.dtype == np.dtype(x.dtype) and got.shape == shape
    assert np.isnan(got.flat[0])
    np.testing.assert_array_equal(got.flat[1:], 1)


@pytest.mark.parametrize("form", ["x * 0", "0 * x"])
def test_fast_math_times_zero_keeps_the_matrix_shape(form):
    x = T.dmatrix("x")
    f = optimized(theano.function([x], x * 0 if form == "x * 0" else 0 * x, fast_math=True))
    assert "mul" not in ops_of(f)
    assert any(k.startswith("fast_math/") for k in f.optimization.rules_fired)
    value = np.arange(6.0).reshape(2, 3)
    value[0, 0] = np.inf
    got = f(value)
    assert got.shape == (2, 3) and got.dtype == np.float64
    np.testing.assert_array_equal(got, np.zeros((2, 3)))
    with np.errstate(invalid="ignore"):
        plain = theano.function([x], x * 0)(value)
    assert np.isnan(plain[0, 0])


def test_fast_math_x_over_x_of_a_matrix():
    x = T.fmatrix("x")
    f = optimized(theano.function([x], x / x, fast_math=True))
    assert "true_div" not in ops_of(f)
    got = f(np.zeros((3, 2), dtype="float32"))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.ones((3, 2), dtype="float32"))


# --------------------------------------------------------------------------- regression


@pytest.mark.parametrize("n", [3, 5])
def test_softmax_of_log_gradient_keeps_full_shape(n):
    """cost = sum(softmax(log(|u| + 1)) * w). With a = |u| + 1 and S = sum(a), softmax is a / S,
    so d cost / d w = a / S and d cost / d u = sign(u) (w - cost) / S."""
    rng = np.random.default_rng(n)
    u = T.dvector("u")
    w = theano.shared(rng.normal(size=n), name="w")
    cost = T.sum(T.nnet.softmax(T.log(T.abs(u) + 1)) * w)
    g = T.grad(cost, [u, w])
    f = optimized(theano.function([u], [cost, *g]))
    f_ref = theano.function([u], [cost, *g], optimizer=None)
    uv = rng.normal(size=n) * 2
    got, ref = f(uv), f_ref(uv)
    a = np.abs(uv) + 1
    s = a.sum()
    c_np = float(np.sum(a / s * w.get_value()))
    want = [c_np, np.sign(uv) * (w.get_value() - c_np) / s, a / s]
    for name, gv, rv, wv in zip(["cost", "du", "dw"], got, ref, want, strict=True):
        assert np.shape(gv) == np.shape(wv), (name, np.shape(gv))
        np.testing.assert_allclose(gv, rv, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(gv, wv, rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("n", [3, 5])
@pytest.mark.parametrize("inner", ["u", "log(|u|+1)*w"])
def test_log_of_softmax_gradient_keeps_full_shape(inner, n):
    """The differential test's ('softmax', 'log_of', ...) tree: cost = sum(log(softmax(x))).
    d cost / d x = 1 - n softmax(x). A cancellation rule ((a / s) * s = a) once kept a
    length-1 `a` where the full-shape divisor had made it a vector: wrong gradients."""
    rng = np.random.default_rng(n + 10)
    u = T.dvector("u")
    w = theano.shared(rng.normal(size=n), name="w")
    x = u if inner == "u" else T.log(T.abs(u) + 1) * w
    cost = T.sum(T.log(T.nnet.softmax(x)))
    wrt = [u] if inner == "u" else [u, w]
    g = T.grad(cost, wrt)
    f = optimized(theano.function([u], g))
    f_ref = theano.function([u], g, optimizer=None)
    uv = rng.normal(size=n) * 2
    got, ref = f(uv), f_ref(uv)
    wv = w.get_value()
    xv = uv if inner == "u" else np.log(np.abs(uv) + 1) * wv
    e = np.exp(xv - xv.max())
    dx = 1 - n * e / e.sum()
    if inner == "u":
        want = [dx]
    else:
        want = [dx * wv * np.sign(uv) / (np.abs(uv) + 1), dx * np.log(np.abs(uv) + 1)]
    for k, (gv, rv, ev) in enumerate(zip(got, ref, want, strict=True)):
        assert np.shape(gv) == (n,), (k, np.shape(gv))
        np.testing.assert_allclose(gv, rv, rtol=1e-10, atol=1e-13, err_msg=f"grad {k}")
        np.testing.assert_allclose(gv, ev, rtol=1e-10, atol=1e-13, err_msg=f"grad {k}")
