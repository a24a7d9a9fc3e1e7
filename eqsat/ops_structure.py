"""Op rows for structure: shapes and views, allocation, indexing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eqsat.graph import Constant, Type, Variable
from eqsat.ops import OPS, OpDef, merge_dims


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


def _one_hot(labels, n, dtype):
    labels, n = np.asarray(labels), int(n)
    bad = labels[(labels < 0) | (labels >= n)] if labels.size else labels
    if bad.size:
        raise ValueError(
            f"one_hot: labels must lie in [0, {n}) for {n} classes; got {bad.ravel()[:5].tolist()}"
        )
    return (labels[..., None] == np.arange(n)).astype(dtype)


def _infer_one_hot(inputs: list[Variable], dtype: str) -> Type:
    labels, n = inputs
    if labels.dtype[0] not in "iu":
        raise TypeError(f"one_hot: labels must be integers, got {labels!r} of dtype {labels.dtype}")
    if n.ndim != 0 or n.dtype[0] not in "iu":
        raise TypeError(f"one_hot: the number of classes must be an integer scalar, got {n!r}")
    return Type(dtype, (*labels.type.shape, _static_int(n)))


OPS["alloc"] = OpDef("alloc", "alloc", _alloc, _infer_alloc, None)
# Rows of zeros with a 1 at each label; a label outside [0, n) is an error (Theano's one-hot
# cross-entropy assumed valid labels), so every row sums to 1 and rules may use it.
OPS["one_hot"] = OpDef("one_hot", "alloc", _one_hot, _infer_one_hot, 2)
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
