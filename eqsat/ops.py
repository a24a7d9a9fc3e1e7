"""The op table: one row per op, holding what every later stage keys on.

A row has the op's kind, its NumPy reference implementation (the oracle every backend is tested
against) and its type rule. Gradients (`grad.VJP`), sympy forms (`sympy_bridge.SYMPY`) and,
later, costs and C/CUDA templates are tables keyed by the same names;
`tests/test_op_tables.py` fails when a row is missing from any of them.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eqsat.graph import Apply, Constant, Type, Variable


@dataclass(frozen=True)
class OpDef:
    name: str
    kind: str  # elemwise | reduce | contract | shape | index | alloc | nnet
    impl: Callable[..., Any]  # impl(*arrays, **params) -> ndarray
    infer: Callable[..., Type]  # infer(inputs: list[Variable], **params) -> output Type
    arity: int | None = None  # None: variadic
    symbol: str | None = None  # infix symbol, for printing
    flags: frozenset[str] = frozenset()  # commutative, associative, integer (no gradient), ...


OPS: dict[str, OpDef] = {}


# --------------------------------------------------------------------------- elementwise
def _sigmoid(x):
    # Split by sign so exp never overflows: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(x):
    return np.logaddexp(0, x)


def _float_dtype(dtype: Any) -> np.dtype:
    """The float dtype NumPy's transcendental functions return for `dtype`."""
    return np.sin(np.zeros((), dtype)).dtype


def _erf(x):
    x = np.asarray(x)
    dt = _float_dtype(x.dtype)
    return np.vectorize(math.erf, otypes=[dt])(x) if x.size else np.zeros(x.shape, dt)


def _switch(cond, a, b):
    return np.where(cond, a, b)


_UNARY = {
    "neg": (np.negative, "-"),
    "abs": (np.abs, None),
    "exp": (np.exp, None),
    "log": (np.log, None),
    "log1p": (np.log1p, None),
    "expm1": (np.expm1, None),
    "log2": (np.log2, None),
    "log10": (np.log10, None),
    "sqrt": (np.sqrt, None),
    "sqr": (np.square, None),
    "sin": (np.sin, None),
    "cos": (np.cos, None),
    "tan": (np.tan, None),
    "tanh": (np.tanh, None),
    "sigmoid": (_sigmoid, None),
    "softplus": (_softplus, None),
    "erf": (_erf, None),
    "sgn": (np.sign, None),
    "floor": (np.floor, None),
    "ceil": (np.ceil, None),
    "round": (np.round, None),
    "invert": (np.invert, "~"),
}
_BINARY = {
    "add": (np.add, "+", {"commutative", "associative"}),
    "sub": (np.subtract, "-", set()),
    "mul": (np.multiply, "*", {"commutative", "associative"}),
    "true_div": (np.true_divide, "/", set()),
    "int_div": (np.floor_divide, "//", set()),
    "mod": (np.mod, "%", set()),
    "pow": (np.power, "**", set()),
    "maximum": (np.maximum, None, {"commutative", "associative"}),
    "minimum": (np.minimum, None, {"commutative", "associative"}),
    "lt": (np.less, "<", {"integer"}),
    "gt": (np.greater, ">", {"integer"}),
    "le": (np.less_equal, "<=", {"integer"}),
    "ge": (np.greater_equal, ">=", {"integer"}),
    "eq": (np.equal, "==", {"integer", "commutative"}),
    "neq": (np.not_equal, "!=", {"integer", "commutative"}),
    "and_": (np.bitwise_and, "&", {"integer", "commutative", "associative"}),
    "or_": (np.bitwise_or, "|", {"integer", "commutative", "associative"}),
    "xor": (np.bitwise_xor, "^", {"integer", "commutative", "associative"}),
}
INTEGER_UNARY = {"invert"}  # bitwise/logical results: no gradient
ZERO_GRAD_UNARY = {"sgn", "floor", "ceil", "round"}  # piecewise constant: gradient 0


@functools.lru_cache(maxsize=4096)
def _elemwise_dtype(op: str, dtypes: tuple[str, ...], params: tuple) -> str:
    """Output dtype of an elementwise op: what its NumPy implementation gives, so type rule and
    oracle cannot disagree. Unsupported dtypes (`-` on bool, `~` on float) raise TypeError."""
    if op == "cast":
        return dict(params)["dtype"]
    dummies = [np.ones(1, dt) for dt in dtypes]
    try:
        with np.errstate(all="ignore"):
            return str(np.asarray(OPS[op].impl(*dummies)).dtype)
    except (TypeError, np.exceptions.DTypePromotionError, ValueError) as e:
        raise TypeError(f"{op} is not defined for inputs of dtype {', '.join(dtypes)}: {e}") from e


def merge_dims(sizes: Sequence[int | None], what: str) -> int | None:
    """Static size of one broadcast axis, or ValueError when two known sizes clash."""
    known = {s for s in sizes if s is not None and s != 1}
    if len(known) > 1:
        raise ValueError(f"{what}: axis sizes {sorted(known)} cannot be broadcast together")
    if known:
        return known.pop()
    return 1 if all(s == 1 for s in sizes) else None


def _infer_elemwise(inputs: list[Variable], **params) -> Type:
    op = params.pop("_op")
    shapes = [i.type.shape for i in inputs]
    what = f"{op}({', '.join(f'shape {s}' for s in shapes)})"
    shape = [merge_dims(col, what) for col in zip(*shapes, strict=True)]
    dtype = _elemwise_dtype(op, tuple(i.dtype for i in inputs), tuple(sorted(params.items())))
    return Type(dtype, shape)


def _elemwise_row(name: str, impl, arity: int, symbol=None, flags=()) -> None:
    infer = functools.partial(_infer_elemwise, _op=name)
    OPS[name] = OpDef(name, "elemwise", impl, infer, arity, symbol, frozenset(flags))


for _name, (_impl, _sym) in _UNARY.items():
    _elemwise_row(_name, _impl, 1, _sym, {"integer"} if _name in INTEGER_UNARY else ())
for _name, (_impl, _sym, _flags) in _BINARY.items():
    _elemwise_row(_name, _impl, 2, _sym, _flags)
_elemwise_row("switch", _switch, 3)
_elemwise_row("cast", lambda x, dtype: np.asarray(x).astype(dtype), 1)


# --------------------------------------------------------------------------- reductions
def _reduce_impl(fn):
    def impl(x, axis, keepdims):
        return fn(x, axis=axis, keepdims=keepdims)

    return impl


def _arg_reduce_impl(fn):
    def impl(x, axis, keepdims):
        if len(axis) == 1:
            return fn(x, axis=axis[0], keepdims=keepdims)
        out = fn(x.reshape(-1) if x.ndim else x)  # several axes: over the flattened array
        return np.reshape(out, (1,) * x.ndim) if keepdims else out

    return impl


def _infer_reduce(inputs: list[Variable], axis: tuple[int, ...], keepdims: bool, _op: str) -> Type:
    (x,) = inputs
    if _op in ("argmax", "argmin"):
        dtype = "int64"
    else:
        dtype = str(OPS[_op].impl(np.ones((1,) * x.ndim, x.dtype), axis, keepdims).dtype)
    if keepdims:
        shape = [1 if i in axis else s for i, s in enumerate(x.type.shape)]
    else:
        shape = [s for i, s in enumerate(x.type.shape) if i not in axis]
    return Type(dtype, shape)


for _name, _fn in [("sum", np.sum), ("prod", np.prod), ("max", np.max), ("min", np.min)]:
    OPS[_name] = OpDef(
        _name, "reduce", _reduce_impl(_fn), functools.partial(_infer_reduce, _op=_name), 1
    )
for _name, _fn in [("argmax", np.argmax), ("argmin", np.argmin)]:
    OPS[_name] = OpDef(
        _name,
        "reduce",
        _arg_reduce_impl(_fn),
        functools.partial(_infer_reduce, _op=_name),
        1,
        flags=frozenset({"integer"}),
    )


# --------------------------------------------------------------------------- contraction
def _infer_dot(inputs: list[Variable]) -> Type:
    a, b = inputs
    if a.ndim not in (1, 2) or b.ndim not in (1, 2):
        raise TypeError(
            f"dot supports vectors and matrices; got {a!r} with ndim={a.ndim} and "
            f"{b!r} with ndim={b.ndim} (reshape, or use sum over a product)"
        )
    inner_a, inner_b = a.type.shape[-1], b.type.shape[0]
    if None not in (inner_a, inner_b) and inner_a != inner_b:
        raise ValueError(f"dot: inner dimensions differ: {a.type.shape} and {b.type.shape}")
    dtype = _elemwise_dtype("mul", (a.dtype, b.dtype), ())
    return Type(dtype, a.type.shape[:-1] + b.type.shape[1:])


OPS["dot"] = OpDef("dot", "contract", np.dot, _infer_dot, 2)


# --------------------------------------------------------------------------- shape and views
def _static_int(v: Variable) -> int | None:
    """The value of a scalar integer graph value known at build time, else None."""
    if isinstance(v, Constant) and v.data.ndim == 0:
        return int(v.data)
    if v.owner is not None and v.owner.op == "shape_i":
        return v.owner.inputs[0].type.shape[v.owner.p["i"]]
    return None


def _dimshuffle(x, new_order):
    kept = [i for i in new_order if i != "x"]
    dropped = [i for i in range(np.ndim(x)) if i not in kept]
    y = np.squeeze(np.transpose(x, kept + dropped), axis=tuple(range(len(kept), np.ndim(x))))
    it = iter(y.shape)
    return y.reshape([1 if i == "x" else next(it) for i in new_order])


def _infer_dimshuffle(inputs: list[Variable], new_order: tuple) -> Type:
    (x,) = inputs
    kept = [i for i in new_order if i != "x"]
    if sorted(kept) != sorted(set(kept)) or any(not 0 <= i < x.ndim for i in kept):
        raise ValueError(f"dimshuffle{new_order}: invalid pattern for {x.ndim}-d input {x!r}")
    for i in range(x.ndim):
        if i not in kept and x.type.shape[i] != 1:
            raise ValueError(
                f"dimshuffle{new_order} drops axis {i} of {x!r}, which is not broadcastable "
                f"(static shape {x.type.shape})"
            )
    return Type(x.dtype, [1 if i == "x" else x.type.shape[i] for i in new_order])


def _infer_reshape(inputs: list[Variable], ndim: int) -> Type:
    x, shp = inputs
    if shp.ndim != 1 or shp.dtype[0] not in "iu":
        raise TypeError(f"reshape: the new shape must be an integer vector, got {shp!r}")
    dims: list[int | None] = [None] * ndim
    node = shp.owner
    if isinstance(shp, Constant):
        dims = [int(d) if d >= 0 else None for d in shp.data]
    elif node is not None and node.op == "make_vector":
        dims = [_static_int(v) for v in node.inputs]
        dims = [d if d is not None and d >= 0 else None for d in dims]
    if len(dims) != ndim:
        raise ValueError(f"reshape: shape has {len(dims)} entries but ndim={ndim}")
    return Type(x.dtype, dims)


def _infer_make_vector(inputs: list[Variable], dtype: str) -> Type:
    for v in inputs:
        if v.ndim != 0:
            raise TypeError(f"make_vector takes scalars, got {v!r} with ndim={v.ndim}")
    return Type(dtype, (len(inputs),))


OPS["shape"] = OpDef(
    "shape",
    "shape",
    lambda x: np.array(np.shape(x), dtype="int64"),
    lambda inputs: Type("int64", (inputs[0].ndim,)),
    1,
    flags=frozenset({"integer"}),
)
OPS["shape_i"] = OpDef(
    "shape_i",
    "shape",
    lambda x, i: np.array(np.shape(x)[i], dtype="int64"),
    lambda inputs, i: Type("int64", ()),
    1,
    flags=frozenset({"integer"}),
)
OPS["dimshuffle"] = OpDef("dimshuffle", "shape", _dimshuffle, _infer_dimshuffle, 1)
OPS["reshape"] = OpDef(
    "reshape",
    "shape",
    lambda x, s, ndim: np.reshape(x, tuple(int(d) for d in s)),
    _infer_reshape,
    2,
)
OPS["make_vector"] = OpDef(
    "make_vector", "shape", lambda *xs, dtype: np.array(xs, dtype=dtype), _infer_make_vector, None
)


# --------------------------------------------------------------------------- allocation
def _alloc(value, *dims):
    return np.array(np.broadcast_to(value, tuple(int(d) for d in dims)))


def _infer_alloc(inputs: list[Variable]) -> Type:
    value, *dims = inputs
    for d in dims:
        if d.ndim != 0 or d.dtype[0] not in "iu":
            raise TypeError(f"alloc: each dimension must be an integer scalar, got {d!r}")
    if value.ndim > len(dims):
        raise ValueError(f"alloc: value {value!r} has more dims ({value.ndim}) than the shape")
    vshape = (1,) * (len(dims) - value.ndim) + value.type.shape
    shape = []
    for vs, d in zip(vshape, dims, strict=True):
        s = _static_int(d)
        if vs not in (None, 1) and s is not None and s != vs:
            raise ValueError(f"alloc: value of static shape {value.type.shape} can't fill {s}")
        shape.append(s if s is not None else (vs if vs not in (None, 1) else None))
    return Type(value.dtype, shape)


def _infer_arange(inputs: list[Variable], dtype: str) -> Type:
    vals = [_static_int(v) if v.dtype[0] in "iu" else None for v in inputs]
    for v in inputs:
        if v.ndim != 0:
            raise TypeError(f"arange: start, stop and step must be scalars, got {v!r}")
    n = len(range(*vals)) if None not in vals and vals[2] != 0 else None
    return Type(dtype, (n,))


def _infer_concatenate(inputs: list[Variable], axis: int) -> Type:
    if not inputs:
        raise ValueError("concatenate needs at least one tensor")
    ndim = inputs[0].ndim
    if any(t.ndim != ndim for t in inputs):
        raise ValueError(f"concatenate: inputs differ in ndim: {[t.ndim for t in inputs]}")
    if not 0 <= axis < ndim:
        raise ValueError(f"concatenate: axis {axis} out of range for {ndim}-d inputs")
    dtype = str(np.result_type(*[t.dtype for t in inputs]))
    shape: list[int | None] = []
    for ax in range(ndim):
        col = [t.type.shape[ax] for t in inputs]
        if ax == axis:
            shape.append(None if None in col else sum(col))
        else:
            known = {s for s in col if s is not None}
            if len(known) > 1:
                raise ValueError(f"concatenate: sizes {sorted(known)} differ on axis {ax}")
            shape.append(known.pop() if known else None)
    return Type(dtype, shape)


OPS["alloc"] = OpDef("alloc", "alloc", _alloc, _infer_alloc, None)
OPS["arange"] = OpDef(
    "arange", "alloc", lambda a, b, c, dtype: np.arange(a, b, c, dtype=dtype), _infer_arange, 3
)
OPS["concatenate"] = OpDef(
    "concatenate", "alloc", lambda *xs, axis: np.concatenate(xs, axis=axis), _infer_concatenate
)


# --------------------------------------------------------------------------- indexing
# `spec` describes a basic index; its dynamic parts are the op's extra scalar inputs, in order:
#   "i"                     an integer index (one input)
#   ("s", start, stop, step) a slice; each flag True means that part is an input, False means None
def build_index(spec: tuple, vals: Sequence[Any]) -> tuple:
    """The Python index tuple for `spec` with its dynamic parts taken from `vals`."""
    it = iter(int(v) for v in vals)
    out = []
    for item in spec:
        if item == "i":
            out.append(next(it))
        else:
            out.append(slice(*(next(it) if f else None for f in item[1:])))
    return tuple(out)


def _index_static_shape(x: Variable, spec: tuple, idx: Sequence[Variable]) -> list[int | None]:
    it = iter(idx)
    shape: list[int | None] = []
    for ax, item in enumerate(spec):
        if item == "i":
            next(it)
            continue
        parts = [next(it) if f else None for f in item[1:]]
        size = x.type.shape[ax]
        if all(p is None for p in parts):
            shape.append(size)
            continue
        vals = [None if p is None else _static_int(p) for p in parts]
        known = all(v is not None for v, p in zip(vals, parts, strict=True) if p is not None)
        shape.append(
            len(range(*slice(*vals).indices(size))) if known and size is not None else None
        )
    return shape + list(x.type.shape[len(spec) :])


def _check_index_inputs(x: Variable, spec: tuple, idx: Sequence[Variable]) -> None:
    if len(spec) > x.ndim:
        raise IndexError(f"too many indices ({len(spec)}) for {x.ndim}-d {x!r}")
    for v in idx:
        if v.ndim != 0 or v.dtype[0] not in "iub":
            raise TypeError(f"index parts must be integer scalars, got {v!r} of type {v.type!r}")


def _infer_subtensor(inputs: list[Variable], spec: tuple) -> Type:
    x, *idx = inputs
    _check_index_inputs(x, spec, idx)
    return Type(x.dtype, _index_static_shape(x, spec, idx))


def _infer_inc_subtensor(inputs: list[Variable], spec: tuple, set: bool) -> Type:
    x, y, *idx = inputs
    _check_index_inputs(x, spec, idx)
    if y.ndim > len(_index_static_shape(x, spec, idx)):
        raise ValueError(f"inc_subtensor: {y!r} has more dims than the indexed part of {x!r}")
    return x.type


def _subtensor(x, *vals, spec):
    return np.array(x[build_index(spec, vals)])


def _inc_subtensor(x, y, *vals, spec, set):
    out = np.array(x)
    index = build_index(spec, vals)
    if set:
        out[index] = y
    else:
        out[index] += y
    return out


def _infer_advanced(inputs: list[Variable]) -> Type:
    x, *idx = inputs
    if len(idx) > x.ndim:
        raise IndexError(f"too many indices ({len(idx)}) for {x.ndim}-d {x!r}")
    for v in idx:
        if v.dtype[0] not in "iu":
            raise TypeError(f"advanced indices must be integer tensors, got {v!r} ({v.dtype})")
    ndim = max(v.ndim for v in idx)
    padded = [(1,) * (ndim - v.ndim) + v.type.shape for v in idx]
    lead = [merge_dims(col, "advanced index") for col in zip(*padded, strict=True)]
    return Type(x.dtype, lead + list(x.type.shape[len(idx) :]))


def _infer_advanced_inc(inputs: list[Variable], set: bool) -> Type:
    x, y, *idx = inputs
    part = _infer_advanced([x, *idx])
    if y.ndim > part.ndim:
        raise ValueError(f"advanced_inc_subtensor: {y!r} has more dims than the indexed part")
    return x.type


def _advanced_inc(x, y, *idx, set):
    out = np.array(x)
    if set:
        out[tuple(idx)] = y
    else:
        np.add.at(out, tuple(idx), y)  # repeated indices accumulate, as a gradient must
    return out


OPS["subtensor"] = OpDef("subtensor", "index", _subtensor, _infer_subtensor, None)
OPS["inc_subtensor"] = OpDef("inc_subtensor", "index", _inc_subtensor, _infer_inc_subtensor, None)
OPS["advanced_subtensor"] = OpDef(
    "advanced_subtensor", "index", lambda x, *idx: np.array(x[tuple(idx)]), _infer_advanced
)
OPS["advanced_inc_subtensor"] = OpDef(
    "advanced_inc_subtensor", "index", _advanced_inc, _infer_advanced_inc
)


# --------------------------------------------------------------------------- nnet
def _softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x, axis):
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def _infer_softmax(inputs: list[Variable], axis: int) -> Type:
    (x,) = inputs
    if not 0 <= axis < x.ndim:
        raise ValueError(f"softmax: axis {axis} out of range for {x.ndim}-d {x!r}")
    return Type(_float_dtype(x.dtype), x.type.shape)


OPS["softmax"] = OpDef("softmax", "nnet", _softmax, _infer_softmax, 1)
OPS["log_softmax"] = OpDef("log_softmax", "nnet", _log_softmax, _infer_softmax, 1)


# --------------------------------------------------------------------------- building nodes
_CONSTANTS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_NODES: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def constant(value: Any, dtype: Any = None, name: str | None = None) -> Constant:
    """A Constant; small ones are hash-consed so equal expressions build equal nodes."""
    weak = dtype is None and type(value) in (int, float, bool)
    if weak and type(value) is float:
        from eqsat.config import config

        dtype = config.floatX
    arr = np.asarray(value, dtype=dtype)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"cannot make a numeric constant from {value!r} (dtype {arr.dtype})")
    if name is not None or arr.size > 16:
        return Constant(arr, name=name, weak=weak)
    key = (arr.dtype.str, arr.shape, arr.tobytes(), weak)
    c = _CONSTANTS.get(key)
    if c is None:
        c = _CONSTANTS[key] = Constant(arr, weak=weak)
    return c


def as_variable(x: Any, name: str | None = None) -> Variable:
    """Theano's as_tensor_variable: Variables pass through, numbers and arrays become Constants."""
    if isinstance(x, Variable):
        return x
    if isinstance(x, list | tuple) and any(isinstance(e, Variable) for e in x):
        from eqsat.tensor.basic import stack

        return stack(list(x))
    try:
        return constant(x, name=name)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"cannot convert {type(x).__name__} {x!r} to a symbolic variable: {e}"
        ) from e


def _smallest_int(v: int, signed: bool) -> np.dtype:
    kinds = (
        ("int8", "int16", "int32", "int64") if signed else ("uint8", "uint16", "uint32", "uint64")
    )
    for name in kinds:
        if np.iinfo(name).min <= v <= np.iinfo(name).max:
            return np.dtype(name)
    raise OverflowError(f"integer literal {v} does not fit in a 64-bit integer")


def _weak_target(strong: list[Variable], weak: list[Constant]) -> np.dtype:
    """The dtype bare Python numbers take beside `strong` operands (NumPy 2 rules, widened so
    that an int literal never wraps around: int8 + 1000 is int16, as in Theano)."""
    target = np.result_type(*[s.dtype for s in strong], *[w.data.item() for w in weak])
    for w in weak:
        v = w.data.item()
        if target.kind in "iu" and not isinstance(v, float):
            info = np.iinfo(target)
            if not info.min <= v <= info.max:
                target = np.result_type(target, _smallest_int(v, target.kind == "i" or v < 0))
    return target


def _align_elemwise(inputs: list[Variable]) -> list[Variable]:
    """Give bare Python numbers their dtype and left-pad ranks with broadcastable axes."""
    weak = [i for i in inputs if isinstance(i, Constant) and i.weak]
    strong = [i for i in inputs if not (isinstance(i, Constant) and i.weak)]
    if weak and strong:
        target = _weak_target(strong, weak)
        inputs = [
            constant(i.data, dtype=target) if isinstance(i, Constant) and i.weak else i
            for i in inputs
        ]
    ndim = max(i.ndim for i in inputs)
    return [i if i.ndim == ndim else _pad_rank(i, ndim) for i in inputs]


def _pad_rank(v: Variable, ndim: int) -> Variable:
    if isinstance(v, Constant):
        return constant(v.data.reshape((1,) * (ndim - v.ndim) + v.data.shape))
    return apply("dimshuffle", [v], new_order=("x",) * (ndim - v.ndim) + tuple(range(v.ndim)))


def apply(op: str, inputs: Sequence[Any], **params: Any) -> Variable:
    """The output of `op` on `inputs`: type-checked, inferred, and hash-consed."""
    row = OPS[op]
    inputs = [as_variable(i) for i in inputs]
    if row.arity is not None and len(inputs) != row.arity:
        raise TypeError(f"{op} takes {row.arity} inputs, got {len(inputs)}")
    if row.kind == "elemwise":
        inputs = _align_elemwise(inputs)
    key_params = tuple(sorted(params.items()))
    key = (op, key_params, tuple(id(i) for i in inputs))
    node = _NODES.get(key)
    if node is None:
        node = Apply(op, inputs, key_params, row.infer(inputs, **params))
        _NODES[key] = node
    return node.out
