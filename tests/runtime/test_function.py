"""eqsat.function: outputs, inputs, defaults, updates, givens, unused inputs and modes."""

import warnings

import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat import In


# --------------------------------------------------------------------------- outputs
def test_single_output_is_one_array(mode):
    x = T.dvector("x")
    out = theano.function([x], x * 2, mode=mode)([1.0, 2.0, 3.0])
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, [2.0, 4.0, 6.0])


@pytest.mark.parametrize("container", [list, tuple])
def test_list_of_outputs_is_a_list(mode, container):
    x = T.dvector("x")
    out = theano.function([x], container([x + 1, x.sum()]), mode=mode)([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 2
    np.testing.assert_array_equal(out[0], [2.0, 3.0])
    assert out[1] == 3.0


def test_one_element_list_gives_a_list(mode):
    x = T.dscalar("x")
    out = theano.function([x], [x + 1], mode=mode)(1.0)
    assert isinstance(out, list) and len(out) == 1
    assert out[0] == 2.0


def test_empty_outputs_give_an_empty_list(mode):
    s = theano.shared(1.0)
    f = theano.function([], [], updates=[(s, s * 3)], mode=mode)
    assert f() == []
    assert s.get_value() == 3.0


@pytest.mark.parametrize(
    "make, dtype",
    [(T.dscalar, "float64"), (T.fscalar, "float32"), (T.iscalar, "int32"), (T.lscalar, "int64")],
)
def test_scalar_outputs_are_0d_arrays_of_the_variable_dtype(mode, make, dtype):
    x = make("x")
    out = theano.function([x], x + x, mode=mode)(3)
    assert type(out) is np.ndarray
    assert out.shape == () and out.dtype == dtype
    assert out == 6


def test_reduction_to_scalar_is_a_0d_array(mode):
    m = T.dmatrix("m")
    out = theano.function([m], m.sum(), mode=mode)(np.arange(6.0).reshape(2, 3))
    assert type(out) is np.ndarray and out.shape == ()
    assert out == 15.0


def test_output_is_not_aliased_to_its_input(mode):
    x = T.dvector("x")
    data = np.array([1.0, 2.0, 3.0])
    out = theano.function([x], x, mode=mode)(data)
    assert not np.shares_memory(out, data)
    out[0] = 100.0
    np.testing.assert_array_equal(data, [1.0, 2.0, 3.0])


def test_output_is_not_aliased_to_a_shared_value(mode):
    s = theano.shared(np.array([1.0, 2.0]))
    f = theano.function([], s, mode=mode)
    out = f()
    assert not np.shares_memory(out, s.get_value(borrow=True))
    out[:] = -1.0
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])
    np.testing.assert_array_equal(f(), [1.0, 2.0])


def test_two_calls_return_independent_arrays(mode):
    x = T.dvector("x")
    f = theano.function([x], x + 1, mode=mode)
    first = f([1.0, 2.0])
    second = f([5.0, 6.0])
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, [2.0, 3.0])


def test_same_variable_twice_in_outputs_gives_independent_arrays(mode):
    x = T.dvector("x")
    y = x * 3
    a, b = theano.function([x], [y, y], mode=mode)([1.0, 2.0])
    np.testing.assert_array_equal(a, [3.0, 6.0])
    a[0] = 0.0
    np.testing.assert_array_equal(b, [3.0, 6.0])


def test_constant_output(mode):
    out = theano.function([], T.constant(np.array([1, 2, 3])), mode=mode)()
    np.testing.assert_array_equal(out, [1, 2, 3])
    out[0] = 7  # writeable: the caller owns it
    assert out[0] == 7


# --------------------------------------------------------------------------- inputs
def test_inputs_by_position_and_by_variable_name(mode):
    x, y = T.dscalars("x", "y")
    f = theano.function([x, y], x - y, mode=mode)
    assert f(5.0, 3.0) == 2.0
    assert f(y=3.0, x=5.0) == 2.0
    assert f(5.0, y=3.0) == 2.0


def test_input_by_in_name_and_in_default(mode):
    x, y = T.dscalars("x", "y")
    f = theano.function([x, In(y, name="other", value=10.0)], x - y, mode=mode)
    assert f(1.0) == -9.0
    assert f(1.0, 2.0) == -1.0
    assert f(1.0, other=4.0) == -3.0
    assert f(other=4.0, x=1.0) == -3.0


def test_in_default_is_converted_to_the_input_dtype(mode):
    x = T.dvector("x")
    f = theano.function([In(x, value=[1, 2])], x / 4, mode=mode)
    out = f()
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [0.25, 0.5])


def test_in_default_is_not_changed_by_a_call(mode):
    x = T.dvector("x")
    f = theano.function([In(x, value=np.array([1.0, 2.0]))], x * 2, mode=mode)
    f()[:] = 0.0
    np.testing.assert_array_equal(f(), [2.0, 4.0])


def test_unnamed_inputs_are_positional(mode):
    x, y = T.dvector(), T.dvector()
    f = theano.function([x, y], x * y, mode=mode)
    np.testing.assert_array_equal(f([1.0, 2.0], [3.0, 4.0]), [3.0, 8.0])


def test_inputs_must_be_a_list():
    x = T.dscalar("x")
    with pytest.raises(TypeError, match="list"):
        theano.function(x, x * 2)


def test_computed_expression_is_not_an_input():
    x = T.dscalar("x")
    with pytest.raises(TypeError, match="free symbolic variable"):
        theano.function([x + 1], x * 2)


# --------------------------------------------------------------------------- updates
@pytest.mark.parametrize("as_dict", [True, False])
def test_updates_dict_or_list_of_pairs(mode, as_dict):
    a = theano.shared(1.0, name="a")
    b = theano.shared(np.array([1.0, 2.0]), name="b")
    x = T.dscalar("x")
    pairs = [(a, a + x), (b, b * x)]
    f = theano.function([x], a * 10, updates=dict(pairs) if as_dict else pairs, mode=mode)
    assert f(2.0) == 10.0  # outputs see the old value
    assert a.get_value() == 3.0
    np.testing.assert_array_equal(b.get_value(), [2.0, 4.0])
    assert f(2.0) == 30.0
    assert a.get_value() == 5.0


def test_updates_computed_from_old_values_swap(mode):
    a = theano.shared(np.array([1.0, 2.0]), name="a")
    b = theano.shared(np.array([3.0, 4.0]), name="b")
    swap = theano.function([], [], updates=[(a, b), (b, a)], mode=mode)
    swap()
    np.testing.assert_array_equal(a.get_value(), [3.0, 4.0])
    np.testing.assert_array_equal(b.get_value(), [1.0, 2.0])
    swap()
    np.testing.assert_array_equal(a.get_value(), [1.0, 2.0])
    np.testing.assert_array_equal(b.get_value(), [3.0, 4.0])


def test_updates_read_each_others_old_values(mode):
    # Fibonacci: (a, b) <- (b, a + b), both from the values before the call.
    a, b = theano.shared(0, name="a"), theano.shared(1, name="b")
    step = theano.function([], a, updates=[(a, b), (b, a + b)], mode=mode)
    seen = [int(step()) for _ in range(8)]
    assert seen == [0, 1, 1, 2, 3, 5, 8, 13]


def test_update_with_a_python_number(mode):
    s = theano.shared(np.float32(4.0))
    reset = theano.function([], s, updates=[(s, 0)], mode=mode)
    assert reset() == 4.0
    assert s.get_value() == 0.0 and s.get_value().dtype == np.float32


def test_update_keeps_the_shared_dtype_under_lossless_upcast(mode):
    s = theano.shared(np.zeros(2))  # float64
    x = T.fvector("x")
    theano.function([x], [], updates=[(s, s + x)], mode=mode)(np.float32([0.5, 1.5]))
    assert s.get_value().dtype == np.float64
    np.testing.assert_array_equal(s.get_value(), [0.5, 1.5])


def test_update_of_float32_shared_with_python_float_stays_float32(mode):
    s = theano.shared(np.ones(3, dtype=np.float32))
    theano.function([], [], updates=[(s, s - 0.1 * s)], mode=mode)()
    value = s.get_value()
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, np.float32(0.9), rtol=1e-6)


def test_update_value_is_not_aliased_to_an_output(mode):
    s = theano.shared(np.array([1.0, 2.0]))
    new = s * 2
    out = theano.function([], new, updates=[(s, new)], mode=mode)()
    out[:] = 0.0
    np.testing.assert_array_equal(s.get_value(), [2.0, 4.0])


def test_update_value_is_not_aliased_to_the_callers_data(mode):
    s = theano.shared(np.zeros(2))
    x = T.dvector("x")
    data = np.array([1.0, 2.0])
    theano.function([x], [], updates=[(s, x)], mode=mode)(data)
    data[:] = -5.0
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])


def test_update_may_change_an_unpinned_shape(mode):
    s = theano.shared(np.array([1.0, 2.0]))
    x = T.dvector("x")
    theano.function([x], [], updates=[(s, x)], mode=mode)([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0, 3.0])


def test_update_target_must_be_shared():
    x = T.dscalar("x")
    with pytest.raises(TypeError, match="shared"):
        theano.function([x], x, updates=[(x, x + 1)])


def test_one_shared_variable_updated_twice_is_refused():
    s = theano.shared(0.0, name="s")
    with pytest.raises(ValueError, match="s"):
        theano.function([], [], updates=[(s, s + 1), (s, s + 2)])


# --------------------------------------------------------------------------- givens
def test_givens_replace_inputs_by_an_expression_and_a_number(mode):
    x, y, c = T.dscalars("x", "y", "c")
    f = theano.function([c], x + y, givens=[(x, c * 10), (y, 5)], mode=mode)
    out = f(2.0)
    assert out.dtype == np.float64
    assert out == 25.0


@pytest.mark.parametrize("as_dict", [True, False])
def test_givens_replace_a_shared_variable_by_an_input(mode, as_dict):
    s = theano.shared(np.array([1.0, 2.0]), name="s")
    v = T.dvector("v")
    pairs = [(s, v)]
    f = theano.function([v], s * 2, givens=dict(pairs) if as_dict else pairs, mode=mode)
    np.testing.assert_array_equal(f([5.0, 6.0, 7.0]), [10.0, 12.0, 14.0])
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])


def test_givens_with_a_numpy_array(mode):
    x = T.dvector("x")
    y = T.dscalar("y")
    f = theano.function([y], x * y, givens={x: np.array([1, 2, 3])}, mode=mode)
    out = f(2.0)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [2.0, 4.0, 6.0])


def test_givens_apply_to_update_expressions(mode):
    s = theano.shared(1.0, name="s")
    x, c = T.dscalars("x", "c")
    f = theano.function([c], [], updates=[(s, s + x)], givens=[(x, c * 2)], mode=mode)
    f(3.0)
    assert s.get_value() == 7.0


def test_givens_replacement_upcast_losslessly(mode):
    x = T.dvector("x")
    i = T.ivector("i")
    out = theano.function([i], x / 2, givens=[(x, i)], mode=mode)([1, 3])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [0.5, 1.5])


@pytest.mark.parametrize(
    "target, replacement",
    [(T.iscalar, 2.5), (T.iscalar, T.dscalar), (T.fvector, T.dvector), (T.dvector, T.dmatrix)],
)
def test_givens_refuse_lossy_or_wrong_rank_replacements(target, replacement):
    x = target("x")
    new = replacement("new") if callable(replacement) else replacement
    inputs = [new] if callable(replacement) else []
    with pytest.raises(TypeError, match=r"\bx\b"):
        theano.function(inputs, x * 1, givens=[(x, new)])


# --------------------------------------------------------------------------- unused inputs
def _unused_input_function(mode, policy):
    x, unused = T.dscalars("x", "unused")
    return theano.function([x, unused], x * 2, on_unused_input=policy, mode=mode)


@pytest.mark.parametrize("policy", [None, "raise"])
def test_unused_input_raises_by_default(mode, policy):
    with pytest.raises(theano.UnusedInputError, match="unused"):
        _unused_input_function(mode, policy)


def test_unused_input_warn(mode):
    with pytest.warns(UserWarning, match="unused"):
        f = _unused_input_function(mode, "warn")
    assert f(3.0, 99.0) == 6.0


def test_unused_input_ignore(mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = _unused_input_function(mode, "ignore")
    assert f(3.0, unused=99.0) == 6.0


def test_unknown_on_unused_input_policy():
    x = T.dscalar("x")
    with pytest.raises(ValueError, match="on_unused_input"):
        theano.function([x], x, on_unused_input="sometimes")


def test_input_used_only_by_an_update_is_used(mode):
    s = theano.shared(0.0)
    x = T.dscalar("x")
    f = theano.function([x], [], updates=[(s, x)], mode=mode)  # no UnusedInputError
    f(4.0)
    assert s.get_value() == 4.0


# --------------------------------------------------------------------------- modes
def test_cuda_mode_is_not_built_yet():
    x = T.dscalar("x")
    with pytest.raises(NotImplementedError, match="py"):
        theano.function([x], x + 1, mode="cuda")


def test_unknown_mode():
    x = T.dscalar("x")
    with pytest.raises(ValueError, match="FAST_AND_LOOSE"):
        theano.function([x], x + 1, mode="FAST_AND_LOOSE")


# --------------------------------------------------------------------------- fgraph
def test_fgraph_toposort_lists_nodes_after_their_inputs(mode):
    x = T.dvector("x")
    s = theano.shared(np.ones(3), name="s")
    out = T.exp(x) * s + 1
    f = theano.function([x], out, updates=[(s, s * 2)], mode=mode)
    nodes = f.maker.fgraph.toposort()
    assert nodes
    computed: set[int] = set()
    for node in nodes:
        for inp in node.inputs:
            assert inp.owner is None or id(inp) in computed, f"{node} comes before its input {inp}"
        computed.update(id(o) for o in node.outputs)
    assert all(id(o) in computed for o in f.maker.fgraph.outputs)
    np.testing.assert_allclose(f([0.0, 1.0, 2.0]), np.exp([0.0, 1.0, 2.0]) + 1, rtol=1e-15)
