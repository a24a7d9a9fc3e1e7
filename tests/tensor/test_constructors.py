"""Symbolic input constructors: Theano's names, dtypes, broadcastable patterns and plurals."""

import numpy as np
import pytest

import eqsat
import eqsat.tensor as T

BACKEND_INDEPENDENT = True  # no compiled function here: one run covers every backend

PREFIXES = {"b": "int8", "w": "int16", "i": "int32", "l": "int64", "f": "float32", "d": "float64"}
KINDS = {
    "scalar": (),
    "vector": (False,),
    "matrix": (False, False),
    "row": (True, False),
    "col": (False, True),
    "tensor3": (False, False, False),
    "tensor4": (False, False, False, False),
}
PLURALS = {"matrix": "matrices"}


@pytest.fixture
def floatx():
    """Restores config.floatX after a test that changes it."""
    old = eqsat.config.floatX
    yield
    eqsat.config.floatX = old


@pytest.mark.parametrize("prefix", list(PREFIXES))
@pytest.mark.parametrize("kind", list(KINDS))
def test_prefixed_constructor(prefix, kind):
    v = getattr(T, prefix + kind)("v")
    pattern = KINDS[kind]
    assert v.name == "v"
    assert v.owner is None
    assert v.dtype == PREFIXES[prefix]
    assert v.ndim == len(pattern)
    assert v.broadcastable == pattern
    assert v.type == T.TensorType.from_broadcastable(PREFIXES[prefix], pattern)
    assert v.type.dtype == PREFIXES[prefix]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("floatx_value", ["float32", "float64"])
def test_unprefixed_constructor_uses_floatx(kind, floatx_value, floatx):
    eqsat.config.floatX = floatx_value
    v = getattr(T, kind)()
    assert v.dtype == floatx_value
    assert v.broadcastable == KINDS[kind]
    assert v.name is None


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("dtype", ["int16", "float32", "uint8", "bool"])
def test_unprefixed_constructor_takes_dtype(kind, dtype):
    v = getattr(T, kind)(name="z", dtype=dtype)
    assert (v.dtype, v.broadcastable, v.name) == (dtype, KINDS[kind], "z")


def test_dtype_accepts_numpy_dtypes():
    assert T.scalar(dtype=np.int32).dtype == "int32"
    assert T.vector(dtype=np.dtype("float32")).dtype == "float32"


def test_floatx_rejects_non_float(floatx):
    with pytest.raises(ValueError):
        eqsat.config.floatX = "int32"


@pytest.mark.parametrize("prefix", ["", *PREFIXES])
@pytest.mark.parametrize("kind", list(KINDS))
def test_plural_with_names(prefix, kind):
    plural = getattr(T, prefix + PLURALS.get(kind, kind + "s"))
    a, b, c = plural("a", "b", "c")
    assert [v.name for v in (a, b, c)] == ["a", "b", "c"]
    assert len({id(a), id(b), id(c)}) == 3
    single = getattr(T, prefix + kind)()
    assert all(v.type == single.type for v in (a, b, c))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_plural_with_count(n):
    vs = T.iscalars(n)
    assert isinstance(vs, list) and len(vs) == n
    assert len({id(v) for v in vs}) == n
    assert all(v.dtype == "int32" and v.ndim == 0 and v.name is None for v in vs)


def test_plural_examples_from_theano():
    x, y = T.dscalars("x", "y")
    assert (x.name, y.name, x.dtype, y.ndim) == ("x", "y", "float64", 0)
    m = T.dmatrices("m", "n")
    assert [v.broadcastable for v in m] == [(False, False)] * 2
    assert [v.dtype for v in T.fvectors(2)] == ["float32", "float32"]


@pytest.mark.parametrize(
    "broadcastable",
    [(), (False,), (True,), (True, False), (False, True), (True, True, False), (False,) * 4],
)
@pytest.mark.parametrize("dtype", ["int8", "int64", "float32", "float64", "bool"])
def test_tensor_with_broadcastable(dtype, broadcastable):
    v = T.tensor(dtype, broadcastable=broadcastable, name="t")
    assert v.dtype == dtype
    assert v.broadcastable == broadcastable
    assert v.ndim == len(broadcastable)
    assert v.type.shape == tuple(1 if b else None for b in broadcastable)
    assert v.name == "t"


def test_tensor_with_static_shape():
    v = T.tensor("float32", shape=(2, None, 1))
    assert v.type.shape == (2, None, 1)
    assert v.broadcastable == (False, False, True)
    assert v.ndim == 3


def test_tensor_default_dtype_is_floatx(floatx):
    eqsat.config.floatX = "float32"
    assert T.tensor(broadcastable=(False,)).dtype == "float32"
    assert T.tensor("floatX", broadcastable=()).dtype == "float32"


@pytest.mark.parametrize(
    "kwargs", [{}, {"broadcastable": (False,), "shape": (None,)}], ids=["neither", "both"]
)
def test_tensor_needs_exactly_one_of_broadcastable_and_shape(kwargs):
    with pytest.raises(TypeError):
        T.tensor("float64", **kwargs)


def test_negative_static_shape_rejected():
    with pytest.raises(ValueError):
        T.tensor("float64", shape=(-1,))


def test_row_and_col_are_broadcastable_where_theano_says():
    assert T.row().broadcastable == (True, False)
    assert T.col().broadcastable == (False, True)
    assert T.drow().type.shape == (1, None)
    assert T.dcol().type.shape == (None, 1)


def test_type_and_repr():
    m = T.fmatrix("m")
    assert m.type == T.TensorType("float32", (None, None))
    assert m.type != T.TensorType("float64", (None, None))
    assert repr(m) == str(m) == "m"
    assert "float32" in repr(m.type)


def test_each_call_makes_a_distinct_variable():
    a, b = T.dvector("x"), T.dvector("x")
    assert a is not b
    assert a != b
    assert a.type == b.type
