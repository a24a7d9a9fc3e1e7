"""Elementwise functions and Python operators against NumPy: values, dtypes, broadcasting,
reflected operands and the errors Theano users expect."""

import math
import operator

import numpy as np
import pytest
from helpers import assert_same, rand, run

import eqsat as theano
import eqsat.tensor as T
from eqsat.graph import Variable

_erf = np.vectorize(math.erf)

# name -> (eqsat function, NumPy reference, domain low, domain high)
UNARY = {
    "neg": (operator.neg, np.negative, -3, 3),
    "abs()": (abs, np.abs, -3, 3),
    "abs_": (T.abs_, np.abs, -3, 3),
    "exp": (T.exp, np.exp, -3, 3),
    "log": (T.log, np.log, 0.1, 5),
    "log1p": (T.log1p, np.log1p, -0.9, 5),
    "expm1": (T.expm1, np.expm1, -3, 3),
    "log2": (T.log2, np.log2, 0.1, 5),
    "log10": (T.log10, np.log10, 0.1, 5),
    "sqrt": (T.sqrt, np.sqrt, 0, 5),
    "sqr": (T.sqr, np.square, -3, 3),
    "sin": (T.sin, np.sin, -4, 4),
    "cos": (T.cos, np.cos, -4, 4),
    "tan": (T.tan, np.tan, -1.3, 1.3),
    "tanh": (T.tanh, np.tanh, -4, 4),
    "sigmoid": (T.nnet.sigmoid, lambda a: 1 / (1 + np.exp(-a)), -6, 6),
    "T.sigmoid": (T.sigmoid, lambda a: 1 / (1 + np.exp(-a)), -6, 6),
    "softplus": (T.nnet.softplus, lambda a: np.log1p(np.exp(a)), -6, 6),
    "erf": (T.erf, lambda a: _erf(a).astype(a.dtype), -3, 3),
    "sgn": (T.sgn, np.sign, -3, 3),
    "floor": (T.floor, np.floor, -3, 3),
    "ceil": (T.ceil, np.ceil, -3, 3),
    "round": (T.round, np.round, -3, 3),
    "relu": (T.nnet.relu, lambda a: np.maximum(a, 0), -3, 3),
}
FLOAT_ONLY = {"erf", "sigmoid", "T.sigmoid", "softplus"}  # refs above assume float input


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_float(name, dtype, mode, rng):
    fn, ref, low, high = UNARY[name]
    x = T.tensor(dtype, broadcastable=(False, False), name="x")
    data = rand(rng, (3, 4), dtype, low, high)
    out = fn(x)
    want = np.asarray(ref(data))
    assert out.dtype == want.dtype == dtype
    assert_same(run([x], out, data, mode=mode), want)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
@pytest.mark.parametrize("name", sorted(set(UNARY) - FLOAT_ONLY))
def test_unary_int(name, dtype, mode, rng):
    """Integer inputs give what NumPy gives: floats from transcendental functions (float64
    here), integers from sgn/abs/floor/..."""
    fn, ref, low, high = UNARY[name]
    x = T.vector("x", dtype=dtype)
    data = rand(rng, (7,), dtype, max(math.ceil(low), 1 if low > 0 else low), high)
    want = np.asarray(ref(data))
    out = fn(x)
    assert out.dtype == want.dtype
    assert_same(run([x], out, data, mode=mode), want)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "bool"])
@pytest.mark.parametrize("name", ["exp", "sqrt", "tanh", "erf"])
def test_byte_sized_input_computes_in_float32(name, dtype, mode):
    # Theano's rule, not NumPy's float16: exp(int8) is float32, computed in float32.
    x = T.tensor(dtype, (False,), "x")
    data = np.array([0, 1, 1, 0], dtype=dtype)
    want = np.vectorize(math.erf)(data.astype("float32")) if name == "erf" else None
    want = getattr(np, name)(data.astype("float32")) if want is None else want.astype("float32")
    assert_same(run([x], getattr(T, name)(x), data, mode=mode), want)


def test_erf_int_input_is_float64(mode):
    x = T.lvector("x")
    data = np.array([-2, -1, 0, 1, 2])
    assert_same(run([x], T.erf(x), data, mode=mode), _erf(data.astype(float)))


@pytest.mark.parametrize("name", ["sigmoid", "softplus"])
def test_sigmoid_softplus_are_stable(name, mode):
    x = T.dvector("x")
    data = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    got = run([x], getattr(T.nnet, name)(x), data, mode=mode)
    assert np.all(np.isfinite(got))
    want = {
        "sigmoid": [0.0, math.exp(-50), 0.5, 1.0, 1.0],
        "softplus": [0.0, math.exp(-50), math.log(2), 50.0, 1000.0],
    }[name]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_round_is_half_to_even(mode):
    x = T.dvector("x")
    data = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    assert_same(run([x], T.round(x), data, mode=mode), [-2.0, -2.0, -0.0, 0.0, 2.0, 2.0])
    away = run([x], T.round(x, mode="half_away_from_zero"), data, mode=mode)
    np.testing.assert_array_equal(away, [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])


def test_leaky_relu(mode):
    x = T.dvector("x")
    data = np.array([-2.0, -0.5, 0.0, 3.0])
    got = run([x], T.nnet.relu(x, alpha=0.1), data, mode=mode)
    np.testing.assert_allclose(got, np.where(data > 0, data, 0.1 * data))


# name -> (eqsat builder, NumPy reference, a's domain, b's domain)
BINARY = {
    "+": (operator.add, np.add, (-3, 3), (-3, 3)),
    "-": (operator.sub, np.subtract, (-3, 3), (-3, 3)),
    "*": (operator.mul, np.multiply, (-3, 3), (-3, 3)),
    "/": (operator.truediv, np.true_divide, (-3, 3), (1, 4)),
    "//": (operator.floordiv, np.floor_divide, (-9, 9), (1, 4)),
    "%": (operator.mod, np.mod, (-9, 9), (1, 4)),
    "**": (operator.pow, np.power, (1, 3), (0, 3)),
    "maximum": (T.maximum, np.maximum, (-3, 3), (-3, 3)),
    "minimum": (T.minimum, np.minimum, (-3, 3), (-3, 3)),
    "<": (operator.lt, np.less, (-2, 2), (-2, 2)),
    ">": (operator.gt, np.greater, (-2, 2), (-2, 2)),
    "<=": (operator.le, np.less_equal, (-2, 2), (-2, 2)),
    ">=": (operator.ge, np.greater_equal, (-2, 2), (-2, 2)),
    "lt": (T.lt, np.less, (-2, 2), (-2, 2)),
    "gt": (T.gt, np.greater, (-2, 2), (-2, 2)),
    "le": (T.le, np.less_equal, (-2, 2), (-2, 2)),
    "ge": (T.ge, np.greater_equal, (-2, 2), (-2, 2)),
    "eq": (T.eq, np.equal, (-2, 2), (-2, 2)),
    "neq": (T.neq, np.not_equal, (-2, 2), (-2, 2)),
}
BITWISE = {
    "&": (operator.and_, np.bitwise_and),
    "|": (operator.or_, np.bitwise_or),
    "^": (operator.xor, np.bitwise_xor),
}


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "int64"])
@pytest.mark.parametrize("name", list(BINARY))
def test_binary(name, dtype, mode, rng):
    fn, ref, (alo, ahi), (blo, bhi) = BINARY[name]
    x, y = T.tensor(dtype, broadcastable=(False, False)), T.tensor(dtype, (False, False))
    a, b = rand(rng, (4, 5), dtype, alo, ahi), rand(rng, (4, 5), dtype, blo, bhi)
    want = ref(a, b)
    out = fn(x, y)
    assert out.dtype == want.dtype
    assert_same(run([x, y], out, a, b, mode=mode), want)


def test_floor_div_and_mod_follow_python_signs(mode):
    x, y = T.lvectors("x", "y")
    a, b = np.array([-7, 7, -7, 7]), np.array([2, 2, -2, -2])
    q, r = run([x, y], [x // y, x % y], a, b, mode=mode)
    np.testing.assert_array_equal(q, [-4, 3, 3, -4])
    np.testing.assert_array_equal(r, [1, 1, -1, -1])


@pytest.mark.parametrize("dtype", ["bool", "int8", "int32", "int64", "uint8"])
@pytest.mark.parametrize("name", list(BITWISE))
def test_bitwise(name, dtype, mode, rng):
    fn, ref = BITWISE[name]
    x, y = T.vector(dtype=dtype), T.vector(dtype=dtype)
    a, b = rand(rng, (9,), dtype, 0, 100), rand(rng, (9,), dtype, 0, 100)
    out = fn(x, y)
    assert out.dtype == dtype
    assert_same(run([x, y], out, a, b, mode=mode), ref(a, b))
    named = {"&": T.bitwise_and, "|": T.bitwise_or, "^": T.bitwise_xor}[name](x, y)
    assert named is out


@pytest.mark.parametrize("dtype", ["bool", "int8", "int64", "uint8"])
def test_invert(dtype, mode, rng):
    x = T.vector(dtype=dtype)
    a = rand(rng, (9,), dtype, 0, 100)
    out = ~x
    assert out.dtype == dtype
    assert_same(run([x], out, a, mode=mode), np.invert(a))


def test_comparison_of_comparisons(mode):
    """(0 < x) & (x < 1): bool results combine with the bitwise operators."""
    x = T.dvector("x")
    data = np.array([-0.5, 0.2, 0.7, 1.5])
    out = (x > 0) & (x < 1) | T.eq(x, 1.5)
    assert out.dtype == "bool"
    assert_same(run([x], out, data, mode=mode), [False, True, True, True])


def test_switch_and_where(mode, rng):
    x, y = T.dmatrices("x", "y")
    a, b = rand(rng, (3, 4)), rand(rng, (3, 4))
    s = T.switch(x > y, x, 2 * y)
    w = T.where(x > y, x, 2 * y)
    assert w is s
    assert_same(run([x, y], s, a, b, mode=mode), np.where(a > b, a, 2 * b))


def test_switch_with_scalar_branches(mode, rng):
    x = T.fvector("x")
    a = rand(rng, (6,), "float32")
    out = T.switch(x > 0, 1, -1)
    assert out.dtype == "int64"
    assert_same(run([x], out, a, mode=mode), np.where(a > 0, 1, -1))


def test_switch_condition_broadcasts(mode, rng):
    c = T.tensor("bool", broadcastable=(False, True))
    x, y = T.dmatrices("x", "y")
    cond, a, b = rand(rng, (3, 1), "bool"), rand(rng, (3, 4)), rand(rng, (3, 4))
    assert_same(run([c, x, y], T.switch(c, x, y), cond, a, b, mode=mode), np.where(cond, a, b))


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32"])
def test_clip(dtype, mode, rng):
    x = T.vector(dtype=dtype)
    a = rand(rng, (12,), dtype, -5, 5)
    for out in (T.clip(x, -1, 2), x.clip(-1, 2)):
        assert out.dtype == dtype
        assert_same(run([x], out, a, mode=mode), np.clip(a, -1, 2))


@pytest.mark.parametrize("src", ["float64", "float32", "int32", "int64", "bool"])
@pytest.mark.parametrize("dst", ["float64", "float32", "int8", "int32", "int64", "bool"])
def test_cast(src, dst, mode, rng):
    x = T.vector(dtype=src)
    a = rand(rng, (8,), src, -50, 50)
    for out in (T.cast(x, dst), x.astype(dst)):
        assert out.dtype == dst
        assert_same(run([x], out, a, mode=mode), a.astype(dst))
    assert T.cast(x, src) is x


def test_cast_floatx():
    assert T.cast(T.ivector(), "floatX").dtype == T.vector().dtype


def test_identity_operators():
    x, y = T.dvectors("x", "y")
    assert +x is x
    assert x.copy() is x
    # As in Theano, == is identity (so Variables can key dicts); T.eq is elementwise.
    assert (x == y) is False and (x == x) is True
    assert (x != y) is True


# ------------------------------------------------------------------ dtype promotion
PROMOTE_DTYPES = ["bool", "int8", "uint8", "int16", "int32", "int64", "float32", "float64"]
PROMOTE_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


@pytest.mark.parametrize("op", list(PROMOTE_OPS))
@pytest.mark.parametrize("da", PROMOTE_DTYPES)
@pytest.mark.parametrize("db", PROMOTE_DTYPES)
def test_promotion_matches_numpy(op, da, db):
    fn = PROMOTE_OPS[op]
    try:
        want = fn(np.ones(2, da), np.ones(2, db)).dtype
    except TypeError:  # bool - bool: NumPy refuses, so must eqsat
        with pytest.raises(TypeError):
            fn(T.vector(dtype=da), T.vector(dtype=db))
        return
    assert fn(T.vector(dtype=da), T.vector(dtype=db)).dtype == want


# (dtype, Python scalar, operator, expected dtype) -- NumPy 2 rules for bare Python numbers,
# widened like Theano when the literal does not fit (never wrapping around)
SCALAR_PROMOTION = [
    ("int64", 2, operator.mul, "int64"),
    ("int32", 2, operator.mul, "int32"),
    ("int8", -1, operator.add, "int8"),
    ("int8", 1000, operator.add, "int16"),
    ("int8", -1000, operator.add, "int16"),
    ("int8", 300, operator.mul, "int16"),
    ("int16", 2**40, operator.add, "int64"),
    ("uint8", -1, operator.add, "int16"),
    ("int32", 2.5, operator.mul, "float64"),
    ("float32", 2.0, operator.mul, "float32"),
    ("float32", 3, operator.add, "float32"),
    ("float32", 1e10, operator.truediv, "float32"),
    ("float64", 2, operator.pow, "float64"),
    ("bool", 1, operator.add, "int64"),
    ("bool", True, operator.and_, "bool"),
    ("bool", 1.5, operator.mul, "float64"),
]


@pytest.mark.parametrize(("dtype", "scalar", "op", "want"), SCALAR_PROMOTION)
def test_python_scalar_promotion(dtype, scalar, op, want, mode, rng):
    x = T.vector("x", dtype=dtype)
    a = rand(rng, (5,), dtype, 0, 3)
    out = op(x, scalar)
    assert out.dtype == want
    expected = op(a.astype(want), np.array(scalar, dtype=want))
    assert_same(run([x], out, a, mode=mode), expected)


@pytest.mark.parametrize(
    ("da", "db", "want"),
    [("int64", "int64", "float64"), ("int32", "int32", "float64"), ("int8", "int64", "float64")],
)
def test_int_true_division_is_float(da, db, want, mode):
    x, y = T.vector(dtype=da), T.vector(dtype=db)
    a, b = np.array([7, -7, 1], dtype=da), np.array([2, 2, 3], dtype=db)
    out = x / y
    assert out.dtype == want
    assert_same(run([x, y], out, a, b, mode=mode), np.array([3.5, -3.5, 1 / 3]))


def test_float32_with_float64_tensor_is_float64():
    assert (T.fvector() * T.dvector()).dtype == "float64"
    assert (T.fvector() * np.float64(2.0)).dtype == np.result_type(np.float32, np.float64(2.0))


# ------------------------------------------------------------------ broadcasting
BROADCAST = {
    "row+matrix": (T.drow, (1, 4), T.dmatrix, (3, 4)),
    "col+matrix": (T.dcol, (3, 1), T.dmatrix, (3, 4)),
    "scalar+tensor3": (T.dscalar, (), T.dtensor3, (2, 3, 4)),
    "vector+matrix": (T.dvector, (4,), T.dmatrix, (3, 4)),
    "matrix+tensor3": (T.dmatrix, (3, 4), T.dtensor3, (2, 3, 4)),
    "row+col": (T.drow, (1, 4), T.dcol, (3, 1)),
    "vector+tensor4": (T.dvector, (5,), T.dtensor4, (2, 1, 3, 5)),
}


BROADCAST_OPS = {"+": (operator.add, np.add), "*": (operator.mul, np.multiply),
                 "maximum": (T.maximum, np.maximum)}  # fmt: skip


@pytest.mark.parametrize("case", list(BROADCAST))
@pytest.mark.parametrize("op", list(BROADCAST_OPS))
def test_broadcasting(case, op, mode, rng):
    ctor_a, shape_a, ctor_b, shape_b = BROADCAST[case]
    fn, ref = BROADCAST_OPS[op]
    x, y = ctor_a("x"), ctor_b("y")
    a, b = rand(rng, shape_a), rand(rng, shape_b)
    out = fn(x, y)
    assert out.ndim == len(np.broadcast(a, b).shape)
    assert_same(run([x, y], out, a, b, mode=mode), ref(a, b))
    assert_same(run([x, y], fn(y, x), a, b, mode=mode), ref(b, a))


def test_broadcast_pattern_of_result():
    assert (T.drow() + T.dcol()).broadcastable == (False, False)
    assert (T.drow() + T.drow()).broadcastable == (True, False)
    assert (T.dscalar() + T.dvector()).broadcastable == (False,)
    assert (T.dvector() + T.dtensor3()).ndim == 3
    assert (T.dscalar() * 2).broadcastable == ()


def test_static_shapes_propagate():
    a = T.constant(np.ones((3, 1)))
    b = T.tensor("float64", shape=(None, 4))
    assert (a + b).type.shape == (3, 4)


# ------------------------------------------------------------------ reflected operands
REFLECTED = {
    "ndarray+": (lambda v: np.ones(3) + v, lambda a: np.ones(3) + a),
    "ndarray*": (lambda v: np.arange(3.0) * v, lambda a: np.arange(3.0) * a),
    "ndarray-": (lambda v: np.full(3, 5.0) - v, lambda a: np.full(3, 5.0) - a),
    "ndarray/": (lambda v: np.full(3, 6.0) / v, lambda a: np.full(3, 6.0) / a),
    "ndarray<": (lambda v: np.zeros(3) < v, lambda a: np.zeros(3) < a),
    "ndarray2d+": (lambda v: np.ones((2, 3)) + v, lambda a: np.ones((2, 3)) + a),
    "int-": (lambda v: 2 - v, lambda a: 2 - a),
    "float/": (lambda v: 1.0 / v, lambda a: 1.0 / a),
    "int//": (lambda v: 7 // v, lambda a: 7 // a),
    "int%": (lambda v: 7 % v, lambda a: 7 % a),
    "float**": (lambda v: 2.0**v, lambda a: 2.0**a),
    "float*": (lambda v: 0.5 * v, lambda a: 0.5 * a),
    "int>": (lambda v: 1 > v, lambda a: 1 > a),
}


@pytest.mark.parametrize("case", list(REFLECTED))
def test_reflected_operands(case, mode, rng):
    build, ref = REFLECTED[case]
    x = T.dvector("x")
    a = rand(rng, (3,), "float64", 0.5, 3)
    out = build(x)
    assert isinstance(out, Variable)
    want = ref(a)
    assert out.dtype == want.dtype
    assert_same(run([x], out, a, mode=mode), want)


def test_reflected_matmul(mode, rng):
    x = T.dvector("x")
    m, a = rand(rng, (2, 3)), rand(rng, (3,))
    out = m @ x
    assert isinstance(out, Variable)
    assert_same(run([x], out, a, mode=mode), m @ a)


def test_numpy_scalar_on_the_left_is_symbolic():
    x = T.fvector("x")
    out = np.float32(2) * x
    assert isinstance(out, Variable)
    assert out.dtype == "float32"


# ------------------------------------------------------------------ errors
def test_incompatible_static_shapes_fail_at_build_time():
    a, b = T.constant(np.ones(3)), T.constant(np.ones(4))
    with pytest.raises(ValueError, match="3.*4|4.*3"):
        a + b
    with pytest.raises(ValueError):
        T.tensor("float64", shape=(2, 3)) * T.tensor("float64", shape=(3, None))


@pytest.mark.parametrize(
    "build",
    [
        lambda: -T.tensor("bool", broadcastable=(False,)),
        lambda: ~T.dvector(),
        lambda: ~T.fmatrix(),
        lambda: T.dvector() & T.dvector(),
        lambda: T.dvector() | 1,
        lambda: T.invert(1.5),
    ],
    ids=["neg-bool", "invert-float64", "invert-float32", "and-float", "or-float", "invert-const"],
)
def test_dtype_errors_fail_at_build_time(build):
    with pytest.raises(TypeError):
        build()


def test_runtime_shape_mismatch_is_value_error(mode):
    x, y = T.dmatrices("x", "y")
    f = theano.function([x, y], x + y, mode=mode)
    with pytest.raises(ValueError):
        f(np.ones((2, 3)), np.ones((3, 2)))
    # Theano semantics: a matrix's axes are not broadcastable, even when one has length 1
    with pytest.raises(ValueError):
        f(np.ones((3, 1)), np.ones((3, 4)))
    assert_same(f(np.ones((2, 3)), np.ones((2, 3))), np.full((2, 3), 2.0))


def test_truth_value_is_type_error():
    x = T.dscalar("x")
    with pytest.raises(TypeError):
        if x:
            pass
    with pytest.raises(TypeError):
        bool(x > 0)
    with pytest.raises(TypeError):
        _ = (x > 0) and (x < 1)


def test_iterating_unknown_length_is_type_error():
    with pytest.raises(TypeError):
        list(T.dvector("v"))
    with pytest.raises(TypeError):
        iter(T.dmatrix("m"))
    with pytest.raises(TypeError):
        a, b = T.dvector("v")
    with pytest.raises(TypeError):
        len(T.dvector("v"))


def test_iterating_known_length(mode):
    c = T.constant(np.array([3.0, 4.0, 5.0]))
    parts = list(c)
    assert len(parts) == 3 and all(p.ndim == 0 for p in parts)
    x = T.dscalar("x")
    got = run([x], [p * x for p in parts], 2.0, mode=mode)
    assert [float(g) for g in got] == [6.0, 8.0, 10.0]


def test_non_numeric_operand_is_type_error():
    with pytest.raises(TypeError):
        T.dvector() + "a"
    with pytest.raises(TypeError):
        T.exp(T.dvector(), T.dvector())
