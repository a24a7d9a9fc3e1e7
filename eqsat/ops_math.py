"""Op rows for arithmetic: elementwise ops, reductions, dot, softmax."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from eqsat.graph import Type, Variable
from eqsat.ops import OPS, OpDef, merge_dims


# --------------------------------------------------------------------------- elementwise
def _sigmoid(x):
    # Split by sign so exp never overflows: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(x):
    return np.logaddexp(0, x)


def _float_dtype(dtype: Any) -> np.dtype:
    """The float dtype a transcendental function returns for `dtype`: NumPy's, except that bool
    and 8-bit integers give float32 as in Theano, not float16."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biu" and dtype.itemsize == 1:
        return np.dtype("float32")
    return np.sin(np.zeros((), dtype)).dtype


def _floating(fn):
    """fn computed in _float_dtype of its input (so int8 data is not computed in float16)."""

    @functools.wraps(fn)
    def impl(x, *args, **params):
        x = np.asarray(x)
        return fn(x.astype(_float_dtype(x.dtype), copy=False), *args, **params)

    return impl


def _erf(x):
    x = np.asarray(x)
    dt = _float_dtype(x.dtype)
    return np.vectorize(math.erf, otypes=[dt])(x) if x.size else np.zeros(x.shape, dt)


def _switch(cond, a, b):
    return np.where(cond, a, b)


_UNARY = {
    "neg": (np.negative, "-"),
    "abs": (np.abs, None),
    "exp": (_floating(np.exp), None),
    "log": (_floating(np.log), None),
    "log1p": (_floating(np.log1p), None),
    "expm1": (_floating(np.expm1), None),
    "log2": (_floating(np.log2), None),
    "log10": (_floating(np.log10), None),
    "sqrt": (_floating(np.sqrt), None),
    "sqr": (np.square, None),
    "sin": (_floating(np.sin), None),
    "cos": (_floating(np.cos), None),
    "tan": (_floating(np.tan), None),
    "tanh": (_floating(np.tanh), None),
    "sigmoid": (_floating(_sigmoid), None),
    "softplus": (_floating(_softplus), None),
    "erf": (_floating(_erf), None),
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


def _accumulating_impl(fn):
    """A sum or product that accumulates float32 in float64 (Theano's acc_dtype), so partial
    results neither overflow nor lose the precision a long float32 sum does."""

    def impl(x, axis, keepdims):
        x = np.asarray(x)
        if x.dtype == np.float32:
            return fn(x, axis=axis, keepdims=keepdims, dtype=np.float64).astype(np.float32)
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


for _name, _impl in [
    ("sum", _accumulating_impl(np.sum)),
    ("prod", _accumulating_impl(np.prod)),
    ("max", _reduce_impl(np.max)),
    ("min", _reduce_impl(np.min)),
]:
    OPS[_name] = OpDef(_name, "reduce", _impl, functools.partial(_infer_reduce, _op=_name), 1)


def _logsumexp(x, axis, keepdims):
    # log(sum(exp(x))) without overflow: factor out the maximum. A row whose maximum is not
    # finite uses 0 instead, so inf, -inf and nan come out as the textbook form gives them.
    m = np.max(x, axis=axis, keepdims=True) if x.size else np.zeros((1,) * x.ndim, x.dtype)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _infer_logsumexp(inputs: list[Variable], axis: tuple[int, ...], keepdims: bool) -> Type:
    t = _infer_reduce(inputs, axis, keepdims, _op="sum")
    return Type(_float_dtype(inputs[0].dtype), t.shape)


OPS["logsumexp"] = OpDef("logsumexp", "reduce", _floating(_logsumexp), _infer_logsumexp, 1)
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


# BLAS-style fused contractions, formed by the optimizer (rules/linalg.py): transposed operands
# are flags, the scalars alpha and beta graph values. Written as the expression they replace,
# so the NumPy reference rounds exactly as that expression does (and works on sympy arrays).
def _gemm(c, alpha, a, b, beta, trans_a, trans_b):
    a = np.transpose(a) if trans_a else a
    b = np.transpose(b) if trans_b else b
    return alpha * np.dot(a, b) + beta * c


def _gemv(y, alpha, a, x, beta, trans_a):
    a = np.transpose(a) if trans_a else a
    return alpha * np.dot(a, x) + beta * y


def _infer_blas(op: str, inputs: list[Variable], names: str, ranks: tuple, flags: dict) -> Type:
    """Type of beta*c + alpha*dot(op(a), op(b)) (gemv: y, a, x): the shape of the product,
    which the accumulator must match (or broadcast along axes its type declares
    broadcastable), and the dtype of that expression."""
    c, alpha, a, b, beta = inputs
    for flag, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f"{op}: param {flag} must be given as a bool, got {value!r}")
    for what, v in (("alpha", alpha), ("beta", beta)):
        if v.ndim != 0:
            raise TypeError(f"{op}: {what} must be a scalar (ndim 0), got {v!r} with ndim={v.ndim}")
    for what, v, ndim in zip(names.split(), (c, a, b), ranks, strict=True):
        if v.ndim != ndim:
            raise TypeError(f"{op}: {what} must have ndim {ndim}, got {v!r} with ndim={v.ndim}")
    sa = a.type.shape[::-1] if flags.get("trans_a") else a.type.shape
    sb = b.type.shape[::-1] if flags.get("trans_b") else b.type.shape
    if None not in (sa[-1], sb[0]) and sa[-1] != sb[0]:
        raise ValueError(
            f"{op}: inner dimensions differ: op(a) has shape {tuple(sa)}, op({names.split()[-1]}) "
            f"{tuple(sb)} "
            f"({', '.join(f'{k}={v}' for k, v in flags.items())})"
        )
    prod = sa[:-1] + sb[1:]
    what = f"{op}: the accumulator of shape {c.type.shape} and the product of shape {prod}"
    shape = [merge_dims(col, what) for col in zip(c.type.shape, prod, strict=True)]
    product = _elemwise_dtype("mul", (a.dtype, b.dtype), ())
    scaled = _elemwise_dtype("mul", (alpha.dtype, product), ())
    dtype = _elemwise_dtype("add", (scaled, _elemwise_dtype("mul", (beta.dtype, c.dtype), ())), ())
    return Type(dtype, shape)


def _infer_gemm(inputs: list[Variable], trans_a: Any = None, trans_b: Any = None) -> Type:
    return _infer_blas("gemm", inputs, "c a b", (2, 2, 2), {"trans_a": trans_a, "trans_b": trans_b})


def _infer_gemv(inputs: list[Variable], trans_a: Any = None) -> Type:
    return _infer_blas("gemv", inputs, "y a x", (1, 2, 1), {"trans_a": trans_a})


OPS["gemm"] = OpDef("gemm", "contract", _gemm, _infer_gemm, 5)  # beta*c + alpha*op(a)op(b)
OPS["gemv"] = OpDef("gemv", "contract", _gemv, _infer_gemv, 5)  # beta*y + alpha*op(a)x


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


OPS["softmax"] = OpDef("softmax", "nnet", _floating(_softmax), _infer_softmax, 1)
OPS["log_softmax"] = OpDef("log_softmax", "nnet", _floating(_log_softmax), _infer_softmax, 1)
