"""Compiled functions pickle as graph + options (to ship them to Dask or Ray workers)."""

import pickle

import numpy as np

import eqsat as theano
import eqsat.tensor as T


def test_pickled_function_computes_and_updates_its_own_shared_copy(mode):
    x = T.dvector("x")
    w = theano.shared(np.array([1.0, 2.0, 3.0]), name="w")
    f = theano.function([x], T.dot(x, w), updates=[(w, w * 2)], mode=mode)
    g = pickle.loads(pickle.dumps(f))
    assert g([1.0, 1.0, 1.0]) == 6.0  # 1 + 2 + 3
    assert g([1.0, 1.0, 1.0]) == 12.0  # w doubled by the first call
    np.testing.assert_array_equal(w.get_value(), [1.0, 2.0, 3.0])  # the original is untouched
    assert f(x=[1.0, 0.0, 0.0]) == 1.0  # inputs keep their names


def test_deep_graph_pickles_without_recursion(mode):
    x = T.dvector("x")
    y = x
    for _ in range(3000):
        y = y + 1
    f = pickle.loads(pickle.dumps(theano.function([x], y, mode=mode)))
    np.testing.assert_array_equal(f([0.0, 1.0]), [3000.0, 3001.0])
