"""x[...]: basic and integer-array indexing with constant or symbolic indices, and
set_subtensor / inc_subtensor, against NumPy."""

import numpy as np
import pytest
from helpers import assert_same, rand, run

import eqsat as theano
import eqsat.tensor as T

# Each index is applied to the symbolic tensor3 and to the NumPy array alike.
BASIC = {
    "x[0]": 0,
    "x[-1]": -1,
    "x[:, 1]": (slice(None), 1),
    "x[1:3]": slice(1, 3),
    "x[::-1]": slice(None, None, -1),
    "x[1:, ::2]": (slice(1, None), slice(None, None, 2)),
    "x[..., 0]": (Ellipsis, 0),
    "x[None, :]": (None, slice(None)),
    "x[0, ..., None]": (0, Ellipsis, None),
    "x[:, None, 1]": (slice(None), None, 1),
    "x[1, 2, 3]": (1, 2, 3),
    "x[-2:, 1, ::-2]": (slice(-2, None), 1, slice(None, None, -2)),
    "x[:, :]": (slice(None), slice(None)),
    "x[5:1:-2]": slice(5, 1, -2),
    "x[10:]": slice(10, None),
    "x[:-1, -3:]": (slice(None, -1), slice(-3, None)),
    "x[np.int64(1)]": np.int64(1),
}


@pytest.mark.parametrize("case", list(BASIC))
def test_basic_indexing(case, mode, rng):
    idx = BASIC[case]
    x = T.dtensor3("x")
    a = rand(rng, (4, 3, 5))
    out = x[idx]
    want = a[idx]
    assert out.ndim == want.ndim
    for axis, b in enumerate(out.broadcastable):
        assert not b or want.shape[axis] == 1
    assert_same(run([x], out, a, mode=mode), want)


@pytest.mark.parametrize("case", list(BASIC))
def test_static_shape_of_basic_index(case):
    """Indexing a tensor of known shape gives the shape NumPy gives."""
    idx = BASIC[case]
    x = T.tensor("float64", shape=(4, 3, 5))
    assert x[idx].type.shape == np.empty((4, 3, 5))[idx].shape


def test_full_slice_is_identity():
    x = T.dmatrix("x")
    assert x[:] is x
    assert x[:, :] is x


SYMBOLIC = {
    "x[i]": (lambda x, i, j: x[i], lambda a, i, j: a[i]),
    "x[-i]": (lambda x, i, j: x[-i], lambda a, i, j: a[-i]),
    "x[i:j]": (lambda x, i, j: x[i:j], lambda a, i, j: a[i:j]),
    "x[i:]": (lambda x, i, j: x[i:], lambda a, i, j: a[i:]),
    "x[:j, i]": (lambda x, i, j: x[:j, i], lambda a, i, j: a[:j, i]),
    "x[::j]": (lambda x, i, j: x[::j], lambda a, i, j: a[::j]),
    "x[j:i:-1]": (lambda x, i, j: x[j:i:-1], lambda a, i, j: a[j:i:-1]),
    "x[i + 1]": (lambda x, i, j: x[i + 1], lambda a, i, j: a[i + 1]),
    "x[x.shape[0]-1]": (lambda x, i, j: x[x.shape[0] - 1], lambda a, i, j: a[a.shape[0] - 1]),
}


@pytest.mark.parametrize("ij", [(0, 2), (1, 3), (2, 1), (-3, 4)], ids=str)
@pytest.mark.parametrize("case", list(SYMBOLIC))
def test_symbolic_indices(case, ij, mode, rng):
    build, ref = SYMBOLIC[case]
    x = T.dmatrix("x")
    i, j = T.lscalars("i", "j")
    a = rand(rng, (5, 4))
    out = build(x, i, j)
    f = theano.function([x, i, j], out, mode=mode, on_unused_input="ignore")
    assert_same(f(a, *ij), ref(a, *ij))


def test_int32_symbolic_index(mode, rng):
    x, i = T.dvector("x"), T.iscalar("i")
    a = rand(rng, (5,))
    assert_same(run([x, i], x[i], a, 3, mode=mode), a[3])


@pytest.mark.parametrize("bad", [1.0, T.dscalar(), T.lvector()[0:1].sum() * 0.5],
                         ids=["float", "dscalar", "float-expr"])  # fmt: skip
def test_non_integer_index_is_type_error(bad):
    with pytest.raises(TypeError):
        T.dvector("x")[bad]


def test_too_many_indices():
    with pytest.raises(IndexError):
        T.dmatrix("x")[0, 0, 0]
    with pytest.raises(IndexError):
        T.dvector("x")[..., 0, ...]


# ------------------------------------------------------------------ integer-array indexing
ADVANCED = {
    "list": (lambda x, v, y: x[[0, 2, 0]], lambda a, v, y: a[[0, 2, 0]]),
    "array": (lambda x, v, y: x[np.array([3, 1])], lambda a, v, y: a[np.array([3, 1])]),
    "negative": (lambda x, v, y: x[[-1, 0]], lambda a, v, y: a[[-1, 0]]),
    "var": (lambda x, v, y: x[v], lambda a, v, y: a[v]),
    "var-trailing-slice": (lambda x, v, y: x[v, :], lambda a, v, y: a[v, :]),
    "arange-pairs": (lambda x, v, y: x[T.arange(x.shape[0]), y],
                     lambda a, v, y: a[np.arange(a.shape[0]), y]),
    "two-lists": (lambda x, v, y: x[[0, 1], [2, 2]], lambda a, v, y: a[[0, 1], [2, 2]]),
    "matrix-index": (lambda x, v, y: x[v.reshape((2, 2))], lambda a, v, y: a[v.reshape(2, 2)]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ADVANCED))
def test_advanced_indexing(case, mode, rng):
    build, ref = ADVANCED[case]
    x, v, y = T.dmatrix("x"), T.lvector("v"), T.lvector("y")
    a = rand(rng, (4, 3))
    vv, yy = np.array([2, 0, 2, 3]), np.array([0, 2, 1, 1])
    out = build(x, v, y)
    want = ref(a, vv, yy)
    assert out.ndim == want.ndim
    f = theano.function([x, v, y], out, mode=mode, on_unused_input="ignore")
    assert_same(f(a, vv, yy), want)


def test_advanced_index_static_shape():
    x = T.dmatrix("x")
    assert x[[0, 2, 0]].type.shape == (3, None)
    assert x[T.lmatrix()].ndim == 3


def test_int32_index_vector(mode, rng):
    x, v = T.dvector("x"), T.ivector("v")
    a = rand(rng, (5,))
    assert_same(run([x, v], x[v], a, np.array([4, 4, 0], "int32"), mode=mode), a[[4, 4, 0]])


@pytest.mark.parametrize(
    "mask",
    [lambda x: x > 0, lambda x: np.array([True, False, True]), lambda x: [True, False, True]],
    ids=["symbolic", "ndarray", "list"],
)
def test_boolean_mask_is_type_error(mask):
    x = T.dvector("x")
    with pytest.raises(TypeError):
        x[mask(x)]


@pytest.mark.parametrize(
    ("build", "args"),
    [
        (lambda x, i: x[i], (5,)),
        (lambda x, i: x[i], (-6,)),
        (lambda x, i: x[1, i], (4,)),
        (lambda x, i: x[[0, 5]], (0,)),
        (lambda x, i: x[T.stack([i])], (7,)),
        (lambda x, i: T.set_subtensor(x[i], 0.0), (9,)),
        (lambda x, i: T.inc_subtensor(x[T.stack([i, i])], 1.0), (-9,)),
    ],
    ids=["x[i]", "x[-i]", "x[1,i]", "x[[0,5]]", "x[idx]", "set", "inc-adv"],
)
def test_out_of_range_at_run_time_is_index_error(build, args, mode):
    x, i = T.dmatrix("x"), T.lscalar("i")
    f = theano.function([x, i], build(x, i), mode=mode, on_unused_input="ignore")
    with pytest.raises(IndexError):
        f(np.zeros((5, 4)), *args)


# ------------------------------------------------------------------ set / inc subtensor
# case -> (index as a function of the scalar i, shape of the value put in); the same index
# tuple is applied to the symbolic matrix (i symbolic) and to the NumPy array (i = 2)
UPDATES = {
    "row": (lambda i: 1, (4,)),
    "slice": (lambda i: slice(1, 3), (2, 4)),
    "column-bcast": (lambda i: (slice(None), 2), ()),
    "strided": (lambda i: (slice(None, None, 2), slice(1, None)), (3,)),
    "symbolic": (lambda i: (i, slice(i, None)), ()),
    "element": (lambda i: (-1, i), ()),
    "adv-list": (lambda i: [0, 3], (2, 4)),
    "adv-pairs": (lambda i: ([0, 1, 4], [3, 2, 0]), (3,)),
}


@pytest.mark.parametrize("case", list(UPDATES))
@pytest.mark.parametrize("kind", ["set", "inc"])
def test_set_and_inc_subtensor(kind, case, mode, rng):
    index, yshape = UPDATES[case]
    x, i = T.dmatrix("x"), T.lscalar("i")
    y = T.tensor("float64", broadcastable=(False,) * len(yshape), name="y")
    a, b = rand(rng, (5, 4)), rand(rng, yshape)
    orig = a.copy()
    fn = T.set_subtensor if kind == "set" else T.inc_subtensor
    out = fn(x[index(i)], y)
    assert out.type == x.type
    want = a.copy()
    if kind == "set":
        want[index(2)] = b
    else:
        want[index(2)] += b
    f = theano.function([x, i, y], out, mode=mode, on_unused_input="ignore")
    assert_same(f(a, 2, b), want)
    np.testing.assert_array_equal(a, orig)  # the input is not modified


def test_inc_subtensor_repeated_indices_accumulate(mode):
    x, v = T.dvector("x"), T.lvector("v")
    a = np.zeros(4)
    idx = np.array([0, 2, 0, 0, 3])
    got = run([x, v], T.inc_subtensor(x[v], 1.0), a, idx, mode=mode)
    np.testing.assert_array_equal(got, [3.0, 0.0, 1.0, 1.0])
    vals = T.dvector("vals")
    got = run([x, v, vals], T.inc_subtensor(x[v], vals), a, idx, np.arange(5.0), mode=mode)
    want = np.zeros(4)
    np.add.at(want, idx, np.arange(5.0))
    np.testing.assert_array_equal(got, want)


def test_set_subtensor_repeated_indices_last_wins(mode):
    x = T.dvector("x")
    got = run([x], T.set_subtensor(x[[1, 1]], T.constant(np.array([5.0, 7.0]))), np.zeros(3),
              mode=mode)  # fmt: skip
    np.testing.assert_array_equal(got, [0.0, 7.0, 0.0])


def test_inc_subtensor_dtypes():
    x = T.ivector("x")
    assert T.inc_subtensor(x[1:], T.bvector()).dtype == "int32"
    assert T.set_subtensor(x[0], 3).dtype == "int32"
    with pytest.raises(TypeError):
        T.set_subtensor(x[0], T.dscalar())
    with pytest.raises(TypeError, match="without loss"):
        T.inc_subtensor(x[0], 1.5)  # a float literal would be truncated


def test_inc_subtensor_needs_an_indexed_variable():
    x = T.dvector("x")
    with pytest.raises(TypeError):
        T.set_subtensor(x, 1.0)
    with pytest.raises(TypeError):
        T.inc_subtensor(x + 1, 1.0)


def test_set_subtensor_value_with_too_many_dims():
    with pytest.raises(ValueError):
        T.set_subtensor(T.dmatrix()[0], T.dmatrix())
