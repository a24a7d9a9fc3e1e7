"""Shape and view operations, contractions, allocation, joining, and T.nnet against NumPy."""

import numpy as np
import pytest
from helpers import assert_same, rand, run

import eqsat as theano
import eqsat.tensor as T

# ------------------------------------------------------------------ transpose and dimshuffle
TRANSPOSES = {
    "vector.T": (T.dvector, (4,), lambda v: v.T, lambda a: a.T),
    "matrix.T": (T.dmatrix, (2, 3), lambda v: v.T, lambda a: a.T),
    "tensor3.T": (T.dtensor3, (2, 3, 4), lambda v: v.T, lambda a: a.T),
    "transpose(axes)": (T.dtensor3, (2, 3, 4), lambda v: T.transpose(v, (1, 0, 2)),
                        lambda a: a.transpose(1, 0, 2)),
    "method(*axes)": (T.dtensor3, (2, 3, 4), lambda v: v.transpose(2, 0, 1),
                      lambda a: a.transpose(2, 0, 1)),
    "method(list)": (T.dtensor3, (2, 3, 4), lambda v: v.transpose([0, 2, 1]),
                     lambda a: a.transpose(0, 2, 1)),
    "matrix(1,0)": (T.dmatrix, (2, 3), lambda v: v.dimshuffle(1, 0), lambda a: a.T),
    "matrix('x',0,1)": (T.dmatrix, (2, 3), lambda v: v.dimshuffle("x", 0, 1),
                        lambda a: a[None]),
    "matrix(0,'x',1)": (T.dmatrix, (2, 3), lambda v: v.dimshuffle((0, "x", 1)),
                        lambda a: a[:, None]),
    "vector(0,'x')": (T.dvector, (4,), lambda v: v.dimshuffle(0, "x"), lambda a: a[:, None]),
    "scalar('x','x')": (T.dscalar, (), lambda v: v.dimshuffle("x", "x"),
                        lambda a: np.reshape(a, (1, 1))),
    "row(1)": (T.drow, (1, 5), lambda v: v.dimshuffle(1), lambda a: a[0]),
    "col(0)": (T.dcol, (5, 1), lambda v: v.dimshuffle(0), lambda a: a[:, 0]),
    "col('x',0)": (T.dcol, (5, 1), lambda v: v.dimshuffle("x", 0), lambda a: a[:, 0][None]),
    "col(1,0)": (T.dcol, (5, 1), lambda v: v.dimshuffle(1, 0), lambda a: a.T),
    "tensor3(2,0,1)": (T.dtensor3, (2, 3, 4), lambda v: v.dimshuffle(2, 0, 1),
                       lambda a: a.transpose(2, 0, 1)),
    "bcast3(2,'x',0)": (lambda n: T.tensor("float64", (False, True, False), n), (2, 1, 4),
                        lambda v: v.dimshuffle(2, "x", 0), lambda a: a[:, 0].T[:, None]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(TRANSPOSES))
def test_transpose_and_dimshuffle(case, mode, rng):
    ctor, shape, build, ref = TRANSPOSES[case]
    x = ctor("x")
    a = rand(rng, shape)
    out = build(x)
    want = ref(a)
    assert out.ndim == want.ndim
    got = run([x], out, a, mode=mode)
    assert_same(got, want)
    for axis, b in enumerate(out.broadcastable):
        assert not b or want.shape[axis] == 1


def test_dimshuffle_broadcastable_pattern():
    assert T.dmatrix().dimshuffle("x", 1, 0).broadcastable == (True, False, False)
    assert T.drow().dimshuffle(1, "x").broadcastable == (False, True)
    assert T.drow().T.broadcastable == (False, True)
    assert T.dcol().T.broadcastable == (True, False)
    m = T.dmatrix()
    assert m.dimshuffle(0, 1) is m


@pytest.mark.parametrize(
    ("ctor", "pattern"),
    [(T.dmatrix, (1,)), (T.dmatrix, (0,)), (T.drow, (0,)), (T.dmatrix, (0, 0)),
     (T.dmatrix, (0, 2)), (T.dvector, (1,)), (T.dvector, (-1,))],
    ids=["matrix(1)", "matrix(0)", "row(0)", "repeat", "out-of-range", "vector(1)", "negative"],
)  # fmt: skip
def test_dimshuffle_errors(ctor, pattern):
    """Dropping an axis not known to have length 1 is refused at build time, like Theano."""
    with pytest.raises(ValueError):
        ctor("x").dimshuffle(*pattern)


# ------------------------------------------------------------------ reshape and flatten
RESHAPES = {
    "ints": ((2, 3, 4), lambda v: v.reshape((6, 4)), (6, 4)),
    "varargs": ((2, 3, 4), lambda v: v.reshape(4, 6), (4, 6)),
    "minus-one": ((2, 3, 4), lambda v: v.reshape((-1, 2)), (12, 2)),
    "to-vector": ((2, 3, 4), lambda v: v.reshape(-1), (24,)),
    "list": ((2, 3, 4), lambda v: T.reshape(v, [3, -1, 2]), (3, 4, 2)),
    "symbolic": ((2, 3, 4), lambda v: v.reshape((v.shape[0], -1)), (2, 12)),
    "symbolic-last": ((2, 3, 4), lambda v: v.reshape((v.shape[-1], v.shape[0] * 3)), (4, 6)),
    "add-axis": ((2, 3, 4), lambda v: v.reshape((v.shape[0], 1, 12)), (2, 1, 12)),
    "shape-vector": ((2, 3, 4), lambda v: v.reshape(v.shape[::-1], ndim=3), (4, 3, 2)),
    "flatten": ((2, 3, 4), lambda v: v.flatten(), (24,)),
    "flatten(2)": ((2, 3, 4), lambda v: v.flatten(2), (2, 12)),
    "flatten(3)": ((2, 3, 4), lambda v: T.flatten(v, ndim=3), (2, 3, 4)),
}


@pytest.mark.parametrize("case", list(RESHAPES))
def test_reshape(case, mode, rng):
    shape, build, want_shape = RESHAPES[case]
    x = T.dtensor3("x")
    a = rand(rng, shape)
    out = build(x)
    assert out.ndim == len(want_shape)
    assert_same(run([x], out, a, mode=mode), a.reshape(want_shape))


def test_reshape_static_shape():
    x = T.dtensor3("x")
    assert x.reshape((6, 4)).type.shape == (6, 4)
    assert x.reshape((x.shape[0], -1, 1)).broadcastable == (False, False, True)


def test_reshape_symbolic_shape_tracks_run_time_shape(mode, rng):
    x = T.dmatrix("x")
    f = theano.function([x], x.reshape((x.shape[0] * x.shape[1],)), mode=mode)
    for shape in ((2, 3), (5, 1)):
        a = rand(rng, shape)
        assert_same(f(a), a.ravel())


@pytest.mark.parametrize(
    "build",
    [lambda v: v.reshape((-1, -1)), lambda v: v.reshape((2, -2)), lambda v: v.reshape((2.0, 3)),
     lambda v: v.flatten(0), lambda v: v.flatten(3), lambda v: v.reshape((2, 3), ndim=3)],
    ids=["two-minus-ones", "minus-two", "float-dim", "flatten0", "flatten3", "ndim-mismatch"],
)  # fmt: skip
def test_reshape_build_errors(build):
    with pytest.raises((ValueError, TypeError)):
        build(T.dmatrix("x"))


def test_reshape_wrong_size_at_run_time(mode):
    x = T.dmatrix("x")
    f = theano.function([x], x.reshape((4, -1)), mode=mode)
    with pytest.raises(ValueError):
        f(np.ones((2, 3)))


# ------------------------------------------------------------------ shape
@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 5, 2), (0, 2, 7)])
def test_shape_at_run_time(shape, mode):
    x = T.dtensor3("x")
    outs = [x.shape, x.shape[0], x.shape[-1], x.shape[1], T.shape(x), x.size]
    got = run([x], outs, np.zeros(shape), mode=mode)
    assert_same(got[0], np.array(shape, dtype="int64"))
    assert_same(got[1], np.int64(shape[0]))
    assert_same(got[2], np.int64(shape[-1]))
    assert_same(got[3], np.int64(shape[1]))
    assert_same(got[4], np.array(shape, dtype="int64"))
    assert int(got[5]) == int(np.prod(shape))


def test_shape_types():
    x = T.dmatrix("x")
    assert x.shape.dtype == "int64" and x.shape.ndim == 1
    assert x.shape[0].dtype == "int64" and x.shape[0].ndim == 0
    with pytest.raises(IndexError):
        x.shape[2]


def test_shape_in_arithmetic(mode, rng):
    x = T.dmatrix("x")
    a = rand(rng, (3, 5))
    out = x / x.shape[1] + x.shape[0]
    assert_same(run([x], out, a, mode=mode), a / 5 + 3)


# ------------------------------------------------------------------ dot and outer
DOTS = {
    "vv": ((4,), (4,)),
    "mv": ((3, 4), (4,)),
    "vm": ((3,), (3, 5)),
    "mm": ((2, 3), (3, 4)),
}


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
@pytest.mark.parametrize("case", list(DOTS))
def test_dot(case, dtype, mode, rng):
    sa, sb = DOTS[case]
    x = T.tensor(dtype, broadcastable=(False,) * len(sa), name="x")
    y = T.tensor(dtype, broadcastable=(False,) * len(sb), name="y")
    a, b = rand(rng, sa, dtype, -3, 3), rand(rng, sb, dtype, -3, 3)
    want = np.dot(a, b)
    rtol = 1e-5 if dtype == "float32" else None
    for out in (T.dot(x, y), x.dot(y), x @ y):
        assert out.dtype == want.dtype
        assert_same(run([x, y], out, a, b, mode=mode), want, rtol=rtol)


def test_dot_with_scalar_is_elementwise(mode, rng):
    s, v = T.dscalar("s"), T.dvector("v")
    a = rand(rng, (3,))
    assert_same(run([s, v], T.dot(s, v), 2.0, a, mode=mode), 2.0 * a)


@pytest.mark.parametrize(
    ("ca", "cb"), [(T.dtensor3, T.dmatrix), (T.dmatrix, T.dtensor3), (T.dvector, T.dtensor4)]
)
def test_dot_of_3d_is_type_error(ca, cb):
    with pytest.raises(TypeError):
        T.dot(ca(), cb())


def test_dot_inner_dimension_mismatch(mode):
    with pytest.raises(ValueError):
        T.dot(T.constant(np.ones((2, 3))), T.constant(np.ones(4)))
    x, y = T.dmatrices("x", "y")
    f = theano.function([x, y], T.dot(x, y), mode=mode)
    with pytest.raises(ValueError):
        f(np.ones((2, 3)), np.ones((4, 2)))


def test_outer(mode, rng):
    x, y = T.dvector("x"), T.dvector("y")
    a, b = rand(rng, (3,)), rand(rng, (4,))
    out = T.outer(x, y)
    assert out.ndim == 2
    assert_same(run([x, y], out, a, b, mode=mode), np.outer(a, b))
    m = T.dmatrix("m")
    c = rand(rng, (2, 2))
    assert_same(run([m, y], T.outer(m, y), c, b, mode=mode), np.outer(c, b))


# ------------------------------------------------------------------ allocation
@pytest.mark.parametrize("dtype", [None, "int32", "float32"])
@pytest.mark.parametrize("name", ["zeros_like", "ones_like"])
def test_zeros_ones_like(name, dtype, mode, rng):
    x = T.dmatrix("x")
    a = rand(rng, (3, 2))
    out = getattr(T, name)(x) if dtype is None else getattr(T, name)(x, dtype=dtype)
    want = getattr(np, name)(a, dtype=dtype)
    assert out.dtype == want.dtype
    assert_same(run([x], out, a, mode=mode), want)


@pytest.mark.parametrize("dtype", [None, "int8", "float32"])
@pytest.mark.parametrize("name", ["zeros", "ones"])
def test_zeros_ones(name, dtype, mode):
    n = T.lscalar("n")
    want = getattr(np, name)((2, 3), dtype=dtype or theano.config.floatX)
    const = getattr(T, name)((2, 3), dtype=dtype)
    assert const.type.shape == (2, 3)
    assert_same(run([], const, mode=mode), want)
    sym = getattr(T, name)((n, 3), dtype=dtype)
    assert sym.type.shape == (None, 3)
    assert_same(run([n], sym, 2, mode=mode), want)
    assert_same(run([n], getattr(T, name)(n, dtype=dtype), 3, mode=mode), want[0])


def test_alloc(mode, rng):
    n, m = T.lscalars("n", "m")
    v = T.dvector("v")
    a = rand(rng, (4,))
    assert_same(run([n, m], T.alloc(1.5, n, m), 2, 3, mode=mode), np.full((2, 3), 1.5))
    assert_same(run([v, n], T.alloc(v, n, 4), a, 3, mode=mode), np.tile(a, (3, 1)))
    assert_same(run([v], T.alloc(v, 2, 1, 4), a, mode=mode), np.broadcast_to(a, (2, 1, 4)))
    with pytest.raises(TypeError):
        T.alloc(1.0, 2.5)
    f = theano.function([v, n], T.alloc(v, n, 4), mode=mode)
    with pytest.raises(ValueError):
        f(np.ones(3), 2)


def test_fill(mode, rng):
    x = T.dmatrix("x")
    s = T.dscalar("s")
    a = rand(rng, (2, 3))
    assert_same(run([x], T.fill(x, 3.0), a, mode=mode), np.full((2, 3), 3.0))
    assert_same(run([x, s], T.fill(x, s), a, -1.0, mode=mode), np.full((2, 3), -1.0))


ARANGES = {
    "stop": ((5,), np.arange(5)),
    "start-stop": ((2, 7), np.arange(2, 7)),
    "step": ((1, 10, 3), np.arange(1, 10, 3)),
    "negative-step": ((5, -2, -2), np.arange(5, -2, -2)),
    "float": ((0, 1, 0.25), np.arange(0, 1, 0.25)),
    "float-stop": ((2.5,), np.arange(2.5)),
    "empty": ((3, 1), np.arange(3, 1)),
}


@pytest.mark.parametrize("case", list(ARANGES))
def test_arange_constant(case, mode):
    args, want = ARANGES[case]
    out = T.arange(*args)
    assert out.dtype == want.dtype
    assert_same(run([], out, mode=mode), want)


def test_arange_symbolic(mode):
    n, m = T.lscalars("n", "m")
    assert_same(run([n], T.arange(n), 4, mode=mode), np.arange(4))
    assert_same(run([n, m], T.arange(n, m, 2), 1, 8, mode=mode), np.arange(1, 8, 2))
    i = T.iscalar("i")
    out = T.arange(i)
    assert out.dtype == "int32"
    assert_same(run([i], out, 3, mode=mode), np.arange(3, dtype="int32"))
    assert_same(run([], T.arange(4, dtype="float32"), mode=mode), np.arange(4, dtype="float32"))


def test_arange_static_length():
    assert T.arange(2, 10, 3).type.shape == (3,)
    assert T.arange(T.lscalar()).type.shape == (None,)


# ------------------------------------------------------------------ concatenate and stack
@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_concatenate(axis, mode, rng):
    x, y, z = T.dmatrices("x", "y", "z")
    shapes = {0: [(2, 3), (1, 3), (4, 3)], 1: [(2, 3), (2, 1), (2, 2)]}[axis % 2]
    arrays = [rand(rng, s) for s in shapes]
    out = T.concatenate([x, y, z], axis=axis)
    assert_same(run([x, y, z], out, *arrays, mode=mode), np.concatenate(arrays, axis=axis))


def test_concatenate_dtypes_and_static_shape(mode):
    a = T.constant(np.ones((2, 3), dtype="int32"))
    b = T.tensor("float32", shape=(4, 3))
    out = T.concatenate([a, b])
    assert out.dtype == np.result_type(np.int32, np.float32)
    assert out.type.shape == (6, 3)
    assert T.concatenate([T.ivector(), T.lvector()]).dtype == "int64"
    x = T.fvector("x")
    mixed = T.concatenate([x, [1.5, 2.0]])  # a list is an array, float64, as in NumPy
    z = np.zeros(1, "float32")
    assert_same(run([x], mixed, z, mode=mode), np.concatenate([z, [1.5, 2.0]]))


def test_concatenate_errors(mode):
    x, y = T.dmatrix("x"), T.dvector("y")
    with pytest.raises(ValueError):
        T.concatenate([x, y])
    with pytest.raises(ValueError):
        T.concatenate([x, x], axis=2)
    with pytest.raises(ValueError):
        T.concatenate([T.dscalar(), T.dscalar()])
    f = theano.function([x], T.concatenate([x, x.T]), mode=mode)
    with pytest.raises(ValueError):
        f(np.ones((2, 3)))


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("ctor", [T.dvector, T.dmatrix], ids=["vector", "matrix"])
def test_stack(ctor, axis, mode, rng):
    x, y, z = ctor("x"), ctor("y"), ctor("z")
    shape = (3,) if x.ndim == 1 else (2, 3)
    arrays = [rand(rng, shape) for _ in range(3)]
    out = T.stack([x, y, z], axis=axis)
    assert out.ndim == x.ndim + 1
    assert_same(run([x, y, z], out, *arrays, mode=mode), np.stack(arrays, axis=axis))


def test_stack_scalars(mode):
    a, b = T.dscalars("a", "b")
    out = T.stack([a, b, 1.0])
    assert out.type.shape == (3,)
    assert_same(run([a, b], out, 2.0, 3.0, mode=mode), [2.0, 3.0, 1.0])
    assert_same(run([a, b], T.as_tensor_variable([a, b]), 4.0, 5.0, mode=mode), [4.0, 5.0])


# ------------------------------------------------------------------ nnet
def _softmax(a, axis=-1):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("axis", [None, -1, 0])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_softmax_and_log_softmax(axis, dtype, mode, rng):
    x = T.matrix("x", dtype=dtype)
    a = rand(rng, (3, 5), dtype, -3, 3)
    kw = {} if axis is None else {"axis": axis}
    ref_axis = -1 if axis is None else axis
    sm, lsm = T.nnet.softmax(x, **kw), T.nnet.log_softmax(x, **kw)
    assert sm.dtype == lsm.dtype == dtype
    got_sm, got_lsm = run([x], [sm, lsm], a, mode=mode)
    want = _softmax(a.astype("float64"), ref_axis)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got_sm, want, rtol=rtol)
    np.testing.assert_allclose(got_lsm, np.log(want), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(got_sm.sum(axis=ref_axis), 1.0, rtol=rtol)


def test_softmax_large_inputs_are_stable(mode):
    x = T.dmatrix("x")
    a = np.array([[1000.0, 1000.0, -1000.0], [0.0, 800.0, 0.0]])
    sm, lsm = run([x], [T.nnet.softmax(x), T.nnet.log_softmax(x)], a, mode=mode)
    np.testing.assert_allclose(sm, [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]], atol=1e-300)
    np.testing.assert_allclose(lsm, [[-np.log(2), -np.log(2), -2000 - np.log(2)],
                                     [-800.0, 0.0, -800.0]])  # fmt: skip


def test_binary_crossentropy(mode, rng):
    p, t = T.dvectors("p", "t")
    a = rand(rng, (6,), "float64", 0.05, 0.95)
    b = rand(rng, (6,), "bool").astype("float64")
    want = -(b * np.log(a) + (1 - b) * np.log(1 - a))
    assert_same(run([p, t], T.nnet.binary_crossentropy(p, t), a, b, mode=mode), want)


def test_categorical_crossentropy(mode, rng):
    p = T.dmatrix("p")
    onehot = T.dmatrix("onehot")
    labels = T.lvector("labels")
    probs = _softmax(rand(rng, (4, 3)))
    y = np.array([0, 2, 1, 2])
    want = -np.log(probs[np.arange(4), y])
    got = run([p, onehot], T.nnet.categorical_crossentropy(p, onehot), probs, np.eye(3)[y],
              mode=mode)  # fmt: skip
    assert_same(got, want)
    got = run([p, labels], T.nnet.categorical_crossentropy(p, labels), probs, y, mode=mode)
    assert_same(got, want)
    with pytest.raises(TypeError):
        T.nnet.categorical_crossentropy(p, T.dvector())
