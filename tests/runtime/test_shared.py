"""eqsat.shared: values, copies vs borrowing, set_value checks, dtypes and pinned shapes."""

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T


# --------------------------------------------------------------------------- dtype and type
@pytest.mark.parametrize(
    "value, dtype, ndim",
    [
        (0, "int64", 0),
        (0.5, "float64", 0),
        (True, "bool", 0),
        (np.float32(1.5), "float32", 0),
        (np.zeros(3, dtype=np.float32), "float32", 1),
        (np.arange(6, dtype=np.int32).reshape(2, 3), "int32", 2),
        ([[1.0, 2.0]], "float64", 2),
    ],
)
def test_dtype_and_rank_come_from_the_value(value, dtype, ndim):
    s = theano.shared(value)
    assert s.dtype == dtype
    assert s.ndim == ndim
    assert s.get_value().dtype == dtype
    np.testing.assert_array_equal(s.get_value(), np.asarray(value))


def test_float_shared_ignores_floatx(monkeypatch):
    monkeypatch.setattr(theano.config, "floatX", "float32")
    assert theano.shared(0.5).dtype == "float64"  # as in Theano: the value decides


def test_name():
    assert theano.shared(1.0, name="w").name == "w"
    assert theano.shared(1.0).name is None


def test_no_axis_is_broadcastable_by_default():
    s = theano.shared(np.zeros((1, 3)))
    assert s.broadcastable == (False, False)


def test_shared_value_is_usable_in_a_graph(mode):
    s = theano.shared(np.array([1.0, 2.0]))
    x = T.dvector("x")
    np.testing.assert_array_equal(theano.function([x], x + s, mode=mode)([3.0, 4.0]), [4.0, 6.0])


@pytest.mark.parametrize("value", ["abc", object(), None, 1 + 2j])
def test_non_numeric_value_is_refused(value):
    with pytest.raises(TypeError, match="numeric"):
        theano.shared(value)


# --------------------------------------------------------------------------- copies and borrowing
def test_shared_copies_its_initial_value():
    data = np.array([1.0, 2.0])
    s = theano.shared(data)
    data[0] = 99.0
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])


def test_shared_with_borrow_uses_the_callers_array():
    data = np.array([1.0, 2.0])
    s = theano.shared(data, borrow=True)
    assert np.shares_memory(s.get_value(borrow=True), data)


def test_get_value_returns_a_copy():
    s = theano.shared(np.array([1.0, 2.0]))
    value = s.get_value()
    value[0] = 99.0
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])
    assert not np.shares_memory(s.get_value(), s.get_value())


def test_get_value_borrow_returns_the_internal_array(mode):
    s = theano.shared(np.array([1.0, 2.0]))
    f = theano.function([], s * 1, mode=mode)
    inner = s.get_value(borrow=True)
    assert inner is s.get_value(borrow=True)
    inner[0] = 99.0  # the documented way to change a value in place
    np.testing.assert_array_equal(f(), [99.0, 2.0])


def test_set_value_copies_by_default():
    s = theano.shared(np.zeros(2))
    data = np.array([1.0, 2.0])
    s.set_value(data)
    data[0] = 99.0
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])


def test_set_value_borrow_may_keep_the_callers_array():
    s = theano.shared(np.zeros(2))
    data = np.array([1.0, 2.0])
    s.set_value(data, borrow=True)
    assert np.shares_memory(s.get_value(borrow=True), data)


def test_set_value_is_seen_by_compiled_functions(mode):
    s = theano.shared(np.array([1.0, 2.0]))
    f = theano.function([], s.sum(), mode=mode)
    assert f() == 3.0
    s.set_value(np.array([10.0, 20.0, 30.0]))  # unpinned: the length may change
    assert f() == 60.0


# --------------------------------------------------------------------------- set_value conversion
@pytest.mark.parametrize(
    "initial, new, expected_dtype",
    [
        (np.zeros(2), [1, 2], "float64"),  # Python ints into float64
        (np.zeros(2), np.array([1, 2], dtype=np.int64), "float64"),  # lossless upcast
        (np.zeros(2, dtype=np.float32), [0.5, 1.5], "float32"),  # exact in float32
        (np.zeros(2, dtype=np.int8), [1, 100], "int8"),  # Python ints that fit
        (0, 7, "int64"),
        (0.0, np.float32(2.5), "float64"),
    ],
)
def test_set_value_converts_losslessly(initial, new, expected_dtype):
    s = theano.shared(initial)
    s.set_value(new)
    value = s.get_value()
    assert value.dtype == expected_dtype
    np.testing.assert_array_equal(value, np.asarray(new))


@pytest.mark.parametrize(
    "initial, new",
    [
        (np.zeros(2, dtype=np.int64), np.array([1.5, 2.0])),  # float64 into int64
        (np.zeros(2, dtype=np.float32), np.array([1.0, 2.0])),  # float64 array into float32
        (np.zeros(2, dtype=np.int8), [1, 300]),  # 300 does not fit int8
        (0, 0.5),
    ],
)
def test_set_value_refuses_lossy_dtypes(initial, new):
    s = theano.shared(initial, name="acc")
    with pytest.raises(TypeError, match="acc"):
        s.set_value(new)
    np.testing.assert_array_equal(s.get_value(), initial)


def test_set_value_downcast_when_allowed():
    s = theano.shared(np.zeros(2, dtype=np.float32), allow_downcast=True)
    s.set_value(np.array([0.1, 0.2]))
    assert s.get_value().dtype == np.float32
    np.testing.assert_array_equal(s.get_value(), np.float32([0.1, 0.2]))


def test_strict_shared_needs_the_exact_dtype():
    s = theano.shared(np.zeros(2), strict=True, name="w")
    with pytest.raises(TypeError, match="w"):
        s.set_value(np.array([1, 2], dtype=np.int64))
    s.set_value(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])


# --------------------------------------------------------------------------- pinned shapes
def test_broadcastable_pins_an_axis_to_length_one(mode):
    row = theano.shared(np.array([[1.0, 2.0, 3.0]]), broadcastable=(True, False), name="row")
    assert row.broadcastable == (True, False)
    m = T.dmatrix("m")
    out = theano.function([m], m + row, mode=mode)(np.zeros((2, 3)))
    np.testing.assert_array_equal(out, [[1.0, 2.0, 3.0]] * 2)
    with pytest.raises(ValueError, match="row"):
        row.set_value(np.zeros((2, 3)))
    row.set_value(np.zeros((1, 5)))  # the unpinned axis may change


def test_shape_pins_given_axes():
    s = theano.shared(np.zeros((2, 3)), shape=(None, 3), name="s")
    assert s.broadcastable == (False, False)
    s.set_value(np.ones((4, 3)))
    with pytest.raises(ValueError, match="s"):
        s.set_value(np.ones((4, 2)))
    np.testing.assert_array_equal(s.get_value(), np.ones((4, 3)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"broadcastable": (True,)},  # wrong length for a 2-d value
        {"broadcastable": (False, True)},  # axis 1 has length 3, not 1
        {"shape": (2, 4)},
    ],
)
def test_pins_must_fit_the_initial_value(kwargs):
    with pytest.raises(ValueError):
        theano.shared(np.zeros((2, 3)), **kwargs)


def test_shape_and_broadcastable_together_are_refused():
    with pytest.raises(TypeError):
        theano.shared(np.zeros((1, 3)), shape=(1, 3), broadcastable=(True, False))
