"""The optimizer is bounded and fails safe: a graph built to blow up under commutativity and
associativity compiles within the configured limits and stays correct; lowering a limit makes
that limit the reported reason to stop; a graph over `config.opt_max_graph` is left as it is;
and an egglog failure falls back to the unoptimized graph with a warning. Nothing is timed:
the time limit is tested by setting it to zero."""

from __future__ import annotations

import numpy as np
import pytest

import eqsat as theano
import eqsat.optimizer
import eqsat.tensor as T
from eqsat.config import config
from eqsat.graph import toposort

N_INPUTS = 10
LENGTH = 5  # entries of each input vector


@pytest.fixture
def limits():
    """config's optimizer settings, restored after the test whatever it changed."""
    names = ("opt_nodes", "opt_iterations", "opt_seconds", "opt_max_graph", "optimizer")
    saved = {n: getattr(config, n) for n in names}
    yield config
    for n, v in saved.items():
        setattr(config, n, v)


def _product(xs, idx: list[int], built: dict):
    """The product of xs[i] for i in idx, left to right, equal prefixes built once."""
    t = None
    for k in range(1, len(idx) + 1):
        key = tuple(idx[:k])
        if key not in built:
            built[key] = xs[idx[0]] if t is None else t * xs[idx[k - 1]]
        t = built[key]
    return t


def _sum(terms):
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def products_sum(n_terms: int, n_factors: int = 10, seed: int = 0):
    """Inputs, the sum of `n_terms` products of `n_factors` inputs each drawn at random (a
    product's factors sorted, equal prefixes built once), and each product's factor indices
    for the NumPy reference. Under commutativity and associativity every product has
    n_factors! orders, and many are equal to parts of others."""
    rng = np.random.default_rng(seed)
    xs = [T.dvector(f"x{i}") for i in range(N_INPUTS)]
    built: dict[tuple, object] = {}
    factors = [sorted(int(i) for i in rng.integers(0, N_INPUTS, n_factors)) for _ in range(n_terms)]
    return xs, _sum([_product(xs, idx, built) for idx in factors]), factors


def pathological_graph(seed: int = 0):
    """The sum of 200 products of 10 factors each over 10 input vectors, each product
    (l1 * ... * l5) * (r1 * ... * r5) for one of 20 left and one of 10 right halves: ~500 ops,
    small enough to be optimized, in which reassociation can regroup any product's factors."""
    rng = np.random.default_rng(seed)
    xs = [T.dvector(f"x{i}") for i in range(N_INPUTS)]
    built: dict[tuple, object] = {}
    halves = [sorted(int(i) for i in rng.integers(0, N_INPUTS, 5)) for _ in range(30)]
    left, right = halves[:20], halves[20:]
    products = [_product(xs, idx, built) for idx in halves]
    terms = [products[k // 10] * products[20 + k % 10] for k in range(200)]
    factors = [left[k // 10] + right[k % 10] for k in range(200)]
    return xs, _sum(terms), factors


def reference(values: list[np.ndarray], factors: list[list[int]]) -> np.ndarray:
    total = np.zeros(LENGTH)
    for idx in factors:
        p = values[idx[0]].copy()
        for i in idx[1:]:
            p = p * values[i]
        total = total + p
    return total


def input_values(seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 1.5, LENGTH) for _ in range(N_INPUTS)]


def check_values(f, factors) -> None:
    values = input_values()
    np.testing.assert_allclose(f(*values), reference(values, factors), rtol=1e-12)


@pytest.fixture(scope="module")
def pathological():
    """The 200 x 10 graph, compiled once under the default limits."""
    xs, out, factors = pathological_graph()
    assert len(toposort([out])) <= config.opt_max_graph, "the test graph must be optimized"
    return theano.function(xs, out), factors


def test_pathological_graph_within_limits(pathological):
    f, _ = pathological
    record = f.optimization
    assert record.fallback is None
    bounds = ("saturated", "e-node limit", "iteration limit", "time limit")
    assert record.stopped_by.startswith(bounds), record.stopped_by
    sizes = [step.enodes for step in record.steps]
    assert sizes, "no saturation step was recorded"
    # The bounds are checked between iterations: every step but the last is within the node
    # limit, and the last one overshoots by at most one step's growth (bounded here by 2x).
    assert all(n <= config.opt_nodes for n in sizes[:-1]), sizes
    assert max(sizes) <= 2 * config.opt_nodes, sizes
    assert len(sizes) <= config.opt_iterations
    assert record.cost_after <= record.cost_before
    assert record.enodes >= record.eclasses >= 1


def test_pathological_graph_values(pathological):
    f, factors = pathological
    check_values(f, factors)


@pytest.mark.parametrize(
    "setting, value, reason",
    [
        ("opt_nodes", 50, "e-node limit"),
        ("opt_iterations", 1, "iteration limit (1)"),
        ("opt_seconds", 0.0, "time limit"),
    ],
)
def test_lowered_limit_is_the_reported_stop(limits, setting, value, reason):
    setattr(limits, setting, value)
    xs, out, factors = products_sum(30)
    f = theano.function(xs, out)
    record = f.optimization
    assert record.fallback is None
    assert record.stopped_by.startswith(reason), record.stopped_by
    sizes = [step.enodes for step in record.steps]
    if setting == "opt_nodes":
        assert f"> {value})" in record.stopped_by
        assert len(sizes) == 1  # the inserted graph is already over 50 e-nodes
    if setting in ("opt_iterations", "opt_seconds"):
        assert len(sizes) == 1  # stopped after the first iteration
    assert record.cost_after <= record.cost_before
    check_values(f, factors)


def test_stopping_early_still_optimizes_what_it_found(limits):
    """Stopped by the iteration limit after one step, the optimizer still extracts from what
    that step found: x * 1 is gone."""
    limits.opt_iterations = 1
    x = T.dvector("x")
    f = theano.function([x], T.exp(x * 1.0))
    assert f.optimization.stopped_by == "iteration limit (1)"
    assert f.optimization.ops_after < f.optimization.ops_before
    xv = np.array([0.0, 1.0, -2.5])
    np.testing.assert_allclose(f(xv), np.exp(xv), rtol=1e-15)


def test_graph_over_max_graph_is_left_unoptimized(limits):
    xs, out, factors = products_sum(10)
    ops = len(toposort([out]))
    limits.opt_max_graph = ops - 1
    f = theano.function(xs, out)
    record = f.optimization
    assert record.stopped_by == f"graph too large to insert ({ops} > {ops - 1} ops)"
    assert record.fallback is None
    assert record.steps == [] and record.ops_after == record.ops_before == ops
    check_values(f, factors)


def test_graph_at_max_graph_is_optimized(limits):
    xs, out, factors = products_sum(10)
    limits.opt_max_graph = len(toposort([out]))
    f = theano.function(xs, out)
    assert not f.optimization.stopped_by.startswith("graph too large")
    assert f.optimization.steps
    check_values(f, factors)


class FakePanic(BaseException):
    """Stands for egglog's PanicException, which is a BaseException, not an Exception."""


def softplus_graph():
    x = T.dvector("x")
    return x, T.log(1 + T.exp(x))


@pytest.mark.parametrize("error", [FakePanic("egglog panicked"), RuntimeError("egglog said no")])
def test_insertion_failure_falls_back(monkeypatch, error):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(eqsat.optimizer, "to_egraph", failing)
    x, y = softplus_graph()
    with pytest.warns(UserWarning, match="unoptimized graph"):
        f = theano.function([x], y)
    record = f.optimization
    assert record.fallback is not None
    assert type(error).__name__ in record.fallback and str(error) in record.fallback
    xv = np.array([-3.0, 0.0, 2.0])
    np.testing.assert_allclose(f(xv), np.log(1 + np.exp(xv)), rtol=1e-15)
    assert [a.op for a in toposort(f.maker.fgraph.outputs)] == ["exp", "add", "log"]


def test_saturation_failure_falls_back_and_recovers(monkeypatch):
    """A failure inside the e-graph's context (after the graph went in) falls back too, and the
    next compilation starts from a clean e-graph and optimizes as usual."""

    def failing(self):
        raise FakePanic("panic during saturation")

    x, y = softplus_graph()
    with monkeypatch.context() as m:
        m.setattr(eqsat.optimizer._Saturator, "run", failing)
        with pytest.warns(UserWarning, match="panic during saturation"):
            f = theano.function([x], y)
    assert "FakePanic" in f.optimization.fallback
    xv = np.array([-800.0, -3.0, 0.0, 2.0])
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(f(xv), np.log(1 + np.exp(xv)), rtol=1e-15)

    g = theano.function([x], y)  # no warning: the optimizer works again
    assert g.optimization.fallback is None
    assert "stability/softplus" in g.optimization.rules_fired
    big = np.array([800.0, 1000.0])
    np.testing.assert_allclose(g(big), big, rtol=1e-15)  # softplus(x) = x for large x


def test_keyboard_interrupt_is_not_swallowed(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(eqsat.optimizer, "to_egraph", interrupted)
    x, y = softplus_graph()
    with pytest.raises(KeyboardInterrupt):
        theano.function([x], y)
