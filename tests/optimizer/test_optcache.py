"""The optimizer's on-disk cache: a warm compile reuses the optimized graph, and anything that
could change the result (graph, constants, shared sizes, settings) changes the key."""

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat import optcache
from eqsat.config import config
from eqsat.graph import toposort
from eqsat.optimizer import Limits


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "compiledir", str(tmp_path))
    monkeypatch.setattr(config, "opt_cache", True)
    return tmp_path


def softplus_graph():
    x = T.dvector("x")
    return x, T.log(1 + T.exp(x)).sum()


def test_a_warm_compile_reuses_the_optimized_graph(cache, monkeypatch):
    x, y = softplus_graph()
    cold = theano.function([x], y)
    assert not cold.optimization.cached and list(cache.glob("opt-*.pkl"))
    ops = sorted(n.op for n in toposort(cold.maker.fgraph.outputs))
    assert "softplus" in ops

    def no_saturation(*args, **kwargs):
        raise AssertionError("the optimizer ran on a warm compile")

    monkeypatch.setattr("eqsat.optimizer._optimize", no_saturation)
    x2, y2 = softplus_graph()  # a new graph of the same structure
    warm = theano.function([x2], y2)
    assert warm.optimization.cached
    assert sorted(n.op for n in toposort(warm.maker.fgraph.outputs)) == ops
    a = np.array([-800.0, 0.0, 3.0, 800.0])
    np.testing.assert_allclose(warm(a), np.logaddexp(0, a).sum(), rtol=1e-15)
    assert warm.optimization.cost_after == cold.optimization.cost_after


def test_what_can_change_the_result_changes_the_key(cache):
    x, y = softplus_graph()
    base = optcache.key([y], (Limits(), False))
    assert base == optcache.key([softplus_graph()[1]], (Limits(), False))
    assert base != optcache.key([y], (Limits(), True))  # fast_math
    assert base != optcache.key([y], (Limits(iterations=3), False))
    assert base != optcache.key([T.log(2 + T.exp(x)).sum()], (Limits(), False))  # a constant
    assert base != optcache.key([T.log(1 + T.exp(T.fvector("x"))).sum()], (Limits(), False))
    w = theano.shared(np.zeros(3), name="w")
    v = theano.shared(np.zeros(4), name="w")
    assert optcache.key([w * 2], (Limits(), False)) != optcache.key([v * 2], (Limits(), False))


def test_a_corrupt_entry_is_a_miss_and_is_rewritten(cache):
    x, y = softplus_graph()
    theano.function([x], y)
    (entry,) = cache.glob("opt-*.pkl")
    entry.write_bytes(b"not a pickle")
    x2, y2 = softplus_graph()
    f = theano.function([x2], y2)
    assert not f.optimization.cached
    np.testing.assert_allclose(f(np.array([1.0])), np.log1p(np.e), rtol=1e-15)
    x3, y3 = softplus_graph()
    assert theano.function([x3], y3).optimization.cached


def test_off_means_off(cache, monkeypatch):
    monkeypatch.setattr(config, "opt_cache", False)
    x, y = softplus_graph()
    theano.function([x], y)
    assert not list(cache.glob("opt-*.pkl"))
