"""The tutorial's logistic regression, checked step by step against the same math in NumPy,
and the example script that shows it off."""

import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "logistic_regression.py"
RTOL = 1e-10


def numpy_cost_and_grads(X, y, w, b):  # noqa: N803
    """cost = mean cross-entropy of sigmoid(Xw + b) + 0.01 |w|^2, and its gradient by hand:
    d xent / dz = p - y for z = Xw + b."""
    p = 1 / (1 + np.exp(-(X @ w) - b))
    xent = -y * np.log(p) - (1 - y) * np.log(1 - p)
    cost = xent.mean() + 0.01 * (w**2).sum()
    gw = X.T @ (p - y) / len(y) + 0.02 * w
    gb = (p - y).mean()
    return cost, gw, gb, p > 0.5


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("logistic_regression_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_training_step_matches_numpy(mode):
    rng = np.random.RandomState(3)
    X, y, w0 = rng.randn(60, 12), rng.randint(size=60, low=0, high=2), rng.randn(12)  # noqa: N806
    x_var, y_var = T.dmatrix("x"), T.dvector("y")
    w, b = theano.shared(w0, name="w"), theano.shared(0.0, name="b")
    p_1 = 1 / (1 + T.exp(-T.dot(x_var, w) - b))
    xent = -y_var * T.log(p_1) - (1 - y_var) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w**2).sum()
    gw, gb = T.grad(cost, [w, b])
    train = theano.function(
        [x_var, y_var],
        [cost, gw, gb, p_1 > 0.5],
        updates=((w, w - 0.1 * gw), (b, b - 0.1 * gb)),
        mode=mode,
    )

    w_np, b_np = w0.copy(), 0.0
    for step in range(10):
        got = train(X, y)
        expected = numpy_cost_and_grads(X, y, w_np, b_np)
        for name, g, e in zip(["cost", "gw", "gb"], got[:3], expected[:3], strict=True):
            np.testing.assert_allclose(g, e, rtol=RTOL, err_msg=f"{name} at step {step}")
        np.testing.assert_array_equal(got[3], expected[3], err_msg=f"prediction at step {step}")
        w_np, b_np = w_np - 0.1 * expected[1], b_np - 0.1 * expected[2]
        np.testing.assert_allclose(w.get_value(), w_np, rtol=RTOL, err_msg=f"w after step {step}")
        np.testing.assert_allclose(b.get_value(), b_np, rtol=RTOL, err_msg=f"b after step {step}")


def test_example_main_matches_numpy(mode, example):
    steps, seed, n, feats = 5, 7, 40, 8
    results = example.main(steps, seed, N=n, feats=feats, mode=mode, verbose=False)
    (X, y), w_np = example.make_data(seed, n, feats)  # noqa: N806
    b_np = 0.0
    initial_cost = numpy_cost_and_grads(X, y, w_np, b_np)[0]
    for _ in range(steps):
        _, gw, gb, _ = numpy_cost_and_grads(X, y, w_np, b_np)
        w_np, b_np = w_np - 0.1 * gw, b_np - 0.1 * gb
    final_cost, _, _, prediction = numpy_cost_and_grads(X, y, w_np, b_np)

    assert results["steps"] == steps
    np.testing.assert_allclose(results["w"], w_np, rtol=RTOL)
    assert results["b"] == pytest.approx(b_np, rel=RTOL)
    assert results["initial_cost"] == pytest.approx(initial_cost, rel=RTOL)
    assert results["final_cost"] == pytest.approx(final_cost, rel=RTOL)
    assert results["accuracy"] == np.mean(prediction == y)


def test_example_script_runs():
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--steps", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "5 steps" in out
    costs = re.search(r"cost:\s*(\S+)\s*->\s*(\S+)", out)
    assert costs, out
    initial, final = float(costs[1]), float(costs[2])
    assert math.isfinite(initial) and math.isfinite(final), out
    assert 0 < final < initial, out
    accuracy = re.search(r"accuracy:\s*([\d.]+)%", out)
    assert accuracy and 0 <= float(accuracy[1]) <= 100, out
    assert re.search(r"time:.*\d s", out), out
