"""The tensor functions of Theano's `T` namespace, each a thin builder over the op table."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from eqsat.config import config
from eqsat.graph import Constant, Variable
from eqsat.ops import _weak_target, apply, as_variable, cast_weak, constant, is_weak
from eqsat.ops_math import _BINARY, _UNARY

as_tensor_variable = as_variable
Var = Variable | Any  # anything as_variable accepts


# --------------------------------------------------------------------------- elementwise
def _elemwise_fn(name: str, arity: int):
    def fn(*args: Var) -> Variable:
        if len(args) != arity:
            raise TypeError(f"{name} takes {arity} arguments, got {len(args)}")
        return apply(name, args)

    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}."
    return fn


for _name in _UNARY:
    globals()[_name] = _elemwise_fn(_name, 1)
for _name in _BINARY:
    globals()[_name] = _elemwise_fn(_name, 2)

abs_ = globals()["abs"]
true_divide = true_div = globals()["true_div"]
floor_divide = globals()["int_div"]
power = globals()["pow"]
invert = globals()["invert"]
bitwise_and, bitwise_or, bitwise_xor = (globals()[n] for n in ("and_", "or_", "xor"))


def switch(cond: Var, ift: Var, iff: Var) -> Variable:
    """Elementwise `ift if cond else iff` (NumPy's where)."""
    return apply("switch", [cond, ift, iff])


where = switch


def clip(x: Var, lo: Var, hi: Var) -> Variable:
    """x limited to [lo, hi], elementwise."""
    return apply("minimum", [apply("maximum", [x, lo]), hi])


def cast(x: Var, dtype: Any) -> Variable:
    """x converted to `dtype` ('floatX' means config.floatX)."""
    x = as_variable(x)
    dtype = str(np.dtype(config.floatX if dtype == "floatX" else dtype))
    return x if x.dtype == dtype else apply("cast", [x], dtype=dtype)


def round(x: Var, mode: str = "half_to_even") -> Variable:  # noqa: A001 - Theano's name
    """Elementwise rounding; mode 'half_to_even' (NumPy) or 'half_away_from_zero'."""
    if mode == "half_to_even":
        return apply("round", [x])
    if mode == "half_away_from_zero":
        x = as_variable(x)
        return apply("sgn", [x]) * apply("floor", [apply("abs", [x]) + 0.5])
    raise ValueError(f"round: unknown mode {mode!r}; use 'half_to_even' or 'half_away_from_zero'")


def ensure_float(x: Var) -> Variable:
    """x cast to floatX when it is an integer or bool tensor."""
    x = as_variable(x)
    return x if x.dtype[0] == "f" else cast(x, "floatX")


# --------------------------------------------------------------------------- reductions
def normalize_axis(x: Variable, axis: Any) -> tuple[int, ...]:
    """`axis` (None, int or sequence, negatives allowed) as a sorted tuple of valid axes."""
    if axis is None:
        return tuple(range(x.ndim))
    axes = [axis] if isinstance(axis, int | np.integer) else list(axis)
    out = []
    for a in axes:
        if not isinstance(a, int | np.integer) or not -x.ndim <= a < x.ndim:
            raise ValueError(f"axis {a!r} is out of range for {x.ndim}-d {x!r}")
        out.append(int(a) % x.ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis!r}")
    return tuple(sorted(out))


def _reduction(op: str):
    def fn(x: Var, axis: Any = None, keepdims: bool = False) -> Variable:
        x = as_variable(x)
        return apply(op, [x], axis=normalize_axis(x, axis), keepdims=bool(keepdims))

    fn.__name__ = op
    fn.__doc__ = f"{op} over `axis` (all axes when None)."
    return fn


sum = _reduction("sum")  # noqa: A001
prod = _reduction("prod")
max = _reduction("max")  # noqa: A001
min = _reduction("min")  # noqa: A001
logsumexp = _reduction("logsumexp")  # log(sum(exp(x))) without overflow, as PyTensor's


def _arg_reduction(op: str):
    def fn(x: Var, axis: Any = None, keepdims: bool = False) -> Variable:
        x = as_variable(x)
        if axis is not None and not isinstance(axis, int | np.integer):
            raise TypeError(f"{op}: axis must be an int or None, got {axis!r}")
        return apply(op, [x], axis=normalize_axis(x, axis), keepdims=bool(keepdims))

    fn.__name__ = op
    return fn


argmax = _arg_reduction("argmax")
argmin = _arg_reduction("argmin")


def shape_i(x: Var, i: int) -> Variable:
    """x.shape[i] as an int64 scalar; a constant when the static shape knows it."""
    x = as_variable(x)
    if x.type.shape[i] is not None:
        return constant(x.type.shape[i], dtype="int64")
    return apply("shape_i", [x], i=i)


def _count(x: Variable, axes: tuple[int, ...]) -> Variable:
    dims = [shape_i(x, a) for a in axes]
    n = dims[0] if dims else constant(1, dtype="int64")
    for d in dims[1:]:
        n = n * d
    return n


def mean(x: Var, axis: Any = None, keepdims: bool = False) -> Variable:
    """Arithmetic mean over `axis`; integer inputs give float64 as in NumPy."""
    x = as_variable(x)
    axes = normalize_axis(x, axis)
    dtype = x.dtype if x.dtype[0] == "f" else "float64"
    total = cast(sum(x, axes, keepdims), dtype)
    return total / cast(_count(x, axes), dtype)


def var(x: Var, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Variable:
    """Variance over `axis` (divisor n - ddof)."""
    x = as_variable(x)
    axes = normalize_axis(x, axis)
    centered = x - mean(x, axes, keepdims=True)
    squares = sum(apply("sqr", [centered]), axes, keepdims)
    dtype = squares.dtype if squares.dtype[0] == "f" else "float64"
    return squares / cast(_count(x, axes) - ddof, dtype)


def std(x: Var, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Variable:
    """Standard deviation over `axis`."""
    return apply("sqrt", [var(x, axis, ddof, keepdims)])


# --------------------------------------------------------------------------- contraction
def dot(a: Var, b: Var) -> Variable:
    """Matrix/vector product (a scalar operand multiplies elementwise, as in Theano)."""
    a, b = as_variable(a), as_variable(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return apply("dot", [a, b])


def outer(x: Var, y: Var) -> Variable:
    """Outer product of two vectors (inputs of other ranks are flattened first)."""
    x, y = as_variable(x), as_variable(y)
    x = x if x.ndim == 1 else flatten(x)
    y = y if y.ndim == 1 else flatten(y)
    return dimshuffle(x, (0, "x")) * dimshuffle(y, ("x", 0))


# --------------------------------------------------------------------------- shapes and views
def shape(x: Var) -> Variable:
    """The shape of x as a symbolic int64 vector."""
    return apply("shape", [as_variable(x)])


def dimshuffle(x: Var, pattern: Sequence[int | str]) -> Variable:
    """Theano's dimshuffle: reorder axes, 'x' inserts a broadcastable one, and broadcastable
    axes not named are dropped."""
    x = as_variable(x)
    pattern = tuple(p if p == "x" else int(p) for p in pattern)
    if pattern == tuple(range(x.ndim)):
        return x
    return apply("dimshuffle", [x], new_order=pattern)


def transpose(x: Var, axes: Sequence[int] | None = None) -> Variable:
    """Axes reversed, or permuted as `axes` says."""
    x = as_variable(x)
    return dimshuffle(x, tuple(reversed(range(x.ndim))) if axes is None else tuple(axes))


def _int_scalar(v: Var, what: str) -> Variable:
    v = as_variable(v)
    if v.ndim != 0 or v.dtype[0] not in "iub":
        raise TypeError(f"{what} must be an integer scalar, got {v!r} of type {v.type!r}")
    return cast(v, "int64")


def shape_vector(dims: Any, what: str = "shape") -> Variable:
    """A shape given as ints / scalar Variables / an int vector, as an int64 vector."""
    if isinstance(dims, Variable) and dims.ndim == 1:
        return cast(dims, "int64")
    if isinstance(dims, int | np.integer | Variable):
        dims = (dims,)
    dims = [_int_scalar(d, f"each entry of {what}") for d in dims]
    if all(isinstance(d, Constant) for d in dims):
        return constant(np.array([int(d.data) for d in dims], dtype="int64"))
    return apply("make_vector", dims, dtype="int64")


def reshape(x: Var, newshape: Any, ndim: int | None = None) -> Variable:
    """x with a new shape (one entry may be -1); the shape may be symbolic."""
    x = as_variable(x)
    shp = shape_vector(newshape, "reshape's shape")
    if shp.type.shape[0] is None:
        if ndim is None:
            raise ValueError("reshape: the new shape's length is unknown; pass ndim=")
    elif ndim is not None and ndim != shp.type.shape[0]:
        raise ValueError(f"reshape: ndim={ndim} but the shape has {shp.type.shape[0]} entries")
    ndim = shp.type.shape[0] if ndim is None else ndim
    if isinstance(shp, Constant) and (np.sum(shp.data == -1) > 1 or np.any(shp.data < -1)):
        raise ValueError(f"reshape: invalid shape {shp.data.tolist()}")
    return apply("reshape", [x, shp], ndim=ndim)


def flatten(x: Var, ndim: int = 1) -> Variable:
    """x with its trailing axes merged so that `ndim` axes remain."""
    x = as_variable(x)
    if not 1 <= ndim <= builtins.max(x.ndim, 1):
        raise ValueError(f"flatten: ndim={ndim} is out of range for {x.ndim}-d {x!r}")
    return reshape(x, [shape_i(x, i) for i in range(ndim - 1)] + [-1])


# --------------------------------------------------------------------------- allocation
def alloc(value: Var, *shape: Var) -> Variable:
    """`value` broadcast to `shape` (scalar dims, symbolic or not)."""
    dims = [_int_scalar(d, "each alloc dimension") for d in shape]
    return apply("alloc", [as_variable(value), *dims])


def _shape_dims(x: Variable) -> list[Variable]:
    return [shape_i(x, i) for i in range(x.ndim)]


def zeros_like(x: Var, dtype: Any = None) -> Variable:
    """Zeros of x's shape and (by default) dtype."""
    x = as_variable(x)
    return alloc(constant(0, dtype=dtype or x.dtype), *_shape_dims(x))


def ones_like(x: Var, dtype: Any = None) -> Variable:
    """Ones of x's shape and (by default) dtype."""
    x = as_variable(x)
    return alloc(constant(1, dtype=dtype or x.dtype), *_shape_dims(x))


def _dims_of(shape: Any) -> list:
    if isinstance(shape, Variable) and shape.ndim == 1:
        n = shape.type.shape[0]
        if n is None:
            raise ValueError(f"shape {shape!r} has no static length; pass a tuple of scalars")
        return [shape[i] for i in range(n)]
    return list(shape) if isinstance(shape, list | tuple) else [shape]


def zeros(shape: Any, dtype: Any = None) -> Variable:
    """Zeros of `shape` (dtype floatX by default)."""
    dtype = config.floatX if dtype in (None, "floatX") else dtype
    return alloc(constant(0, dtype=dtype), *_dims_of(shape))


def ones(shape: Any, dtype: Any = None) -> Variable:
    """Ones of `shape` (dtype floatX by default)."""
    dtype = config.floatX if dtype in (None, "floatX") else dtype
    return alloc(constant(1, dtype=dtype), *_dims_of(shape))


def fill(model: Var, value: Var) -> Variable:
    """`value` broadcast to the shape of `model` (Theano's fill/second)."""
    model, value = as_variable(model), as_variable(value)
    return alloc(value, *_shape_dims(model))


def arange(start: Var, stop: Var = None, step: Var = 1, dtype: Any = None) -> Variable:
    """Evenly spaced values in [start, stop), as NumPy's arange."""
    if stop is None:
        start, stop = 0, start
    parts = [as_variable(v) for v in (start, stop, step)]
    for v in parts:
        if v.ndim != 0:
            raise TypeError(f"arange: start, stop and step must be scalars, got {v!r}")
    if dtype is None:
        strong = [p for p in parts if not is_weak(p)]
        weak = [p for p in parts if is_weak(p)]
        dtype = _weak_target(strong, weak) if strong else np.result_type(*[w.literal for w in weak])
        dtype = config.floatX if np.dtype(dtype).kind == "f" and not strong else dtype
    dtype = str(np.dtype(dtype))
    return apply("arange", [cast(p, dtype) for p in parts], dtype=dtype)


def concatenate(tensors: Sequence[Var], axis: int = 0) -> Variable:
    """Tensors joined along an existing axis."""
    tensors = cast_weak([as_variable(t) for t in tensors])
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("concatenate: zero-dimensional tensors cannot be concatenated; use stack")
    if not -ndim <= axis < ndim:
        raise ValueError(f"concatenate: axis {axis} out of range for {ndim}-d inputs")
    if len(tensors) == 1:
        return tensors[0]
    return apply("concatenate", tensors, axis=axis % ndim)


def stack(tensors: Sequence[Var], axis: int = 0) -> Variable:
    """Tensors of one rank joined along a new axis."""
    tensors = cast_weak([as_variable(t) for t in tensors])
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    ndim = tensors[0].ndim
    if any(t.ndim != ndim for t in tensors):
        raise ValueError(f"stack: inputs differ in ndim: {[t.ndim for t in tensors]}")
    if not -(ndim + 1) <= axis <= ndim:
        raise ValueError(f"stack: axis {axis} out of range for {ndim}-d inputs")
    axis %= ndim + 1
    pattern = list(range(ndim))
    pattern.insert(axis, "x")
    expanded = [dimshuffle(t, pattern) for t in tensors]
    return expanded[0] if len(expanded) == 1 else apply("concatenate", expanded, axis=axis)


__all__ = [
    n
    for n, v in list(globals().items())
    if not n.startswith("_") and callable(v) and getattr(v, "__module__", None) == __name__
] + ["as_tensor_variable", "constant", "where", "abs_", "true_divide", "floor_divide", "power"]
