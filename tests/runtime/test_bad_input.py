"""Bad data and bad calls: each is a clear exception naming the input and what was expected.

The message checks look for the input's name and for the expected and actual rank or dtype,
which is what a user needs to fix the call.
"""

import re

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T


def mentions(*fragments: str) -> str:
    """A `match=` pattern that requires every fragment, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments)


# --------------------------------------------------------------------------- rank
@pytest.mark.parametrize(
    "make, data, expected, actual",
    [
        (T.dvector, [[1.0, 2.0]], "1-d", "2-d"),
        (T.dvector, 3.0, "1-d", "0-d"),
        (T.dmatrix, [1.0, 2.0], "2-d", "1-d"),
        (T.dscalar, np.zeros(2), "0-d", "1-d"),
    ],
)
def test_wrong_rank(mode, make, data, expected, actual):
    x = make("speed")
    f = theano.function([x], x * 2, mode=mode)
    with pytest.raises(TypeError, match=mentions("speed", expected, actual)):
        f(data)


# --------------------------------------------------------------------------- dtype
@pytest.mark.parametrize(
    "make, data, dtype",
    [
        (T.fvector, np.array([0.1, 0.2]), "float32"),
        (T.ivector, np.array([1.0, 2.0]), "int32"),
        (T.lscalar, 1.5, "int64"),
        (T.fvector, [0.1, 0.2], "float32"),  # not floatX: judged by value, 0.1 is inexact
        (T.bscalar, 300, "int8"),
        (T.ivector, np.array([1, 2], dtype=np.int64), "int32"),
    ],
)
def test_lossy_dtype_is_refused(mode, make, data, dtype):
    x = make("speed")
    f = theano.function([x], x * 1, mode=mode)
    with pytest.raises(TypeError, match=mentions("speed", dtype, str(np.asarray(data).dtype))):
        f(data)


@pytest.mark.parametrize("where", ["function", "In"])
def test_lossy_dtype_accepted_with_allow_input_downcast(mode, where):
    x = T.fvector("x")
    data = np.array([0.1, 0.2])
    if where == "function":
        f = theano.function([x], x * 2, allow_input_downcast=True, mode=mode)
    else:
        f = theano.function([theano.In(x, allow_downcast=True)], x * 2, mode=mode)
    out = f(data)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, data.astype(np.float32) * 2)


def test_python_floats_into_a_floatx_input(mode, monkeypatch):
    monkeypatch.setattr(theano.config, "floatX", "float32")
    x = T.vector("x")
    assert x.dtype == "float32"
    out = theano.function([x], x * 2, mode=mode)([0.1, 0.2])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.float32([0.1, 0.2]) * 2)


@pytest.mark.parametrize(
    "make, data",
    [
        (T.dvector, np.array([1, 2], dtype=np.int64)),
        (T.dvector, np.array([1, 2], dtype=np.float32)),
        (T.lvector, np.array([1, 2], dtype=np.int8)),
        (T.fvector, [0.5, 1.25]),  # Python floats exact in float32
        (T.bvector, [1, -100]),  # Python ints that fit int8
        (T.ivector, [1.0, 2.0]),  # integral Python floats
    ],
)
def test_lossless_conversion_accepted(mode, make, data):
    x = make("speed")
    out = theano.function([x], x, mode=mode)(data)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, np.asarray(data))


# --------------------------------------------------------------------------- call signature
@pytest.fixture
def f_alpha_beta(mode):
    alpha, beta = T.dscalars("alpha", "beta")
    return theano.function([alpha, beta], alpha - beta, mode=mode)


def test_too_many_arguments(f_alpha_beta):
    with pytest.raises(TypeError, match=mentions("2", "3")):
        f_alpha_beta(1.0, 2.0, 3.0)


def test_missing_argument(f_alpha_beta):
    with pytest.raises(TypeError, match=mentions("beta")):
        f_alpha_beta(1.0)


def test_unknown_keyword(f_alpha_beta):
    with pytest.raises(TypeError, match=mentions("gamma")):
        f_alpha_beta(1.0, gamma=2.0)


def test_two_values_for_one_input(f_alpha_beta):
    with pytest.raises(TypeError, match=mentions("alpha")):
        f_alpha_beta(1.0, 2.0, alpha=3.0)


def test_call_errors_name_the_function(mode):
    x = T.dscalar("x")
    f = theano.function([x], x * 2, name="double_it", mode=mode)
    with pytest.raises(TypeError, match=mentions("double_it", "x")):
        f()


# --------------------------------------------------------------------------- non-numeric data
@pytest.mark.parametrize("data", ["abc", object(), None, [1.0, "a"], 1 + 2j])
def test_non_numeric_data(mode, data):
    x = T.dvector("speed") if isinstance(data, list) else T.dscalar("speed")
    f = theano.function([x], x * 2, mode=mode)
    with pytest.raises(TypeError, match=mentions("speed")):
        f(data)


def test_symbolic_variable_as_data(mode):
    x = T.dscalar("speed")
    f = theano.function([x], x * 2, mode=mode)
    with pytest.raises(TypeError, match=mentions("speed", "other")):
        f(T.dscalar("other"))


@pytest.mark.parametrize("data", [[[1.0, 2.0], [3.0]], [1.0, [2.0, 3.0]]])
def test_ragged_lists(mode, data):
    x = T.dmatrix("speed")
    f = theano.function([x], x * 2, mode=mode)
    with pytest.raises(ValueError, match=mentions("speed")):
        f(data)


# --------------------------------------------------------------------------- compile-time errors
def test_missing_graph_input_is_reported_at_compile_time():
    x, offset = T.dscalars("x", "offset")
    with pytest.raises(theano.MissingInputError, match=mentions("offset")):
        theano.function([x], x + offset)


def test_missing_input_behind_givens_replacement():
    x, y, offset = T.dscalars("x", "y", "offset")
    with pytest.raises(theano.MissingInputError, match=mentions("offset")):
        theano.function([x], x + y, givens=[(y, offset * 2)])


def test_bad_default_is_refused_at_compile_time():
    x = T.dvector("speed")
    with pytest.raises(TypeError, match=mentions("speed", "2-d")):
        theano.function([theano.In(x, value=[[1.0]])], x * 2)


def test_shared_variable_as_explicit_input():
    s = theano.shared(1.0, name="state")
    with pytest.raises(TypeError, match=mentions("state")):
        theano.function([s], s * 2)


def test_duplicate_input():
    x = T.dscalar("speed")
    with pytest.raises(ValueError, match=mentions("speed")):
        theano.function([x, x], x * 2)


def test_set_value_with_wrong_rank():
    s = theano.shared(np.zeros(3), name="weights")
    with pytest.raises(TypeError, match=mentions("weights", "1-d", "2-d")):
        s.set_value(np.zeros((3, 1)))
    np.testing.assert_array_equal(s.get_value(), np.zeros(3))


@pytest.mark.parametrize(
    "initial, target_dtype",
    [(0, "int64"), (np.zeros(2, dtype=np.float32), "float32"), (np.int32(1), "int32")],
)
def test_update_that_cannot_be_cast_losslessly(initial, target_dtype):
    s = theano.shared(initial, name="counter")
    x = T.dscalar("x")
    with pytest.raises(TypeError, match=mentions("counter", target_dtype, "float64")):
        theano.function([x], [], updates=[(s, s + x)])


def test_update_with_wrong_rank():
    s = theano.shared(np.zeros(2), name="weights")
    m = T.dmatrix("m")
    with pytest.raises(TypeError, match=mentions("weights")):
        theano.function([m], [], updates=[(s, m)])


# --------------------------------------------------------------------------- runtime shapes
@pytest.mark.parametrize(
    "make, a, b",
    [
        (T.dvector, np.ones(3), np.ones(4)),
        (T.dmatrix, np.ones((2, 3)), np.ones((2, 4))),
        (T.dmatrix, np.ones((1, 3)), np.ones((2, 3))),  # length 1 but not declared broadcastable
    ],
)
def test_elementwise_shape_mismatch(mode, make, a, b):
    x, y = make("x"), make("y")
    f = theano.function([x, y], x + y, mode=mode)
    with pytest.raises(ValueError, match=mentions(str(a.shape), str(b.shape))):
        f(a, b)


def test_dot_shape_mismatch(mode):
    m, v = T.dmatrix("m"), T.dvector("v")
    f = theano.function([m, v], T.dot(m, v), mode=mode)
    with pytest.raises(ValueError, match=mentions("(2, 3)", "(4,)")):
        f(np.ones((2, 3)), np.ones(4))


@pytest.mark.parametrize(
    "make, data",
    [
        (lambda: T.tensor("float64", shape=(None, 3), name="speed"), np.ones((2, 4))),
        (lambda: T.drow("speed"), np.ones((2, 3))),  # a row's first axis has length 1
    ],
)
def test_input_that_breaks_a_static_shape(mode, make, data):
    x = make()
    f = theano.function([x], x * 2, mode=mode)
    with pytest.raises(ValueError, match=mentions("speed", str(data.shape))):
        f(data)


def test_failed_call_changes_no_shared_variable(mode):
    a = theano.shared(1.0, name="a")
    b = theano.shared(np.array([1.0, 2.0]), name="b")
    x, y = T.dvectors("x", "y")
    f = theano.function(
        [x, y], [x * 2, x + y], updates=[(a, a + 1), (b, b + (x + y).sum())], mode=mode
    )
    with pytest.raises(ValueError):
        f(np.ones(2), np.ones(3))
    assert a.get_value() == 1.0
    np.testing.assert_array_equal(b.get_value(), [1.0, 2.0])
    f(np.ones(2), np.ones(2))  # the function still works afterwards
    assert a.get_value() == 2.0
    np.testing.assert_array_equal(b.get_value(), [5.0, 6.0])


def test_update_of_wrong_shape_for_a_pinned_shared_changes_nothing(mode):
    a = theano.shared(0.0, name="a")
    pinned = theano.shared(np.zeros(2), shape=(2,), name="pinned")
    x = T.dvector("x")
    f = theano.function([x], [], updates=[(a, a + 1), (pinned, x)], mode=mode)
    with pytest.raises(ValueError, match=mentions("pinned")):
        f(np.ones(3))
    assert a.get_value() == 0.0
    np.testing.assert_array_equal(pinned.get_value(), [0.0, 0.0])
