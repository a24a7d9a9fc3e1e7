"""`x[...]`: basic indexing (ints, slices, None, Ellipsis; indices may be symbolic scalars) and
integer-array indexing, plus Theano's set_subtensor / inc_subtensor on the result."""

from __future__ import annotations

from typing import Any

import numpy as np

from eqsat.graph import Variable
from eqsat.ops import apply, as_variable, constant, is_weak
from eqsat.tensor.basic import cast, dimshuffle, shape_i


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _is_advanced(v: Any) -> bool:
    if isinstance(v, Variable):
        return v.ndim > 0
    return isinstance(v, list | np.ndarray)


def _index_scalar(v: Any) -> Variable:
    var = as_variable(v) if not _is_int(v) else constant(int(v), dtype="int64")
    if var.ndim != 0 or var.dtype[0] not in "iu":
        raise TypeError(f"indices must be integers or integer scalars, got {v!r}")
    return var


def _expand_ellipsis(idx: tuple, ndim: int) -> tuple:
    n_ell = sum(i is Ellipsis for i in idx)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if not n_ell:
        return idx
    pos = idx.index(Ellipsis)
    used = sum(i is not None for i in idx) - 1
    return idx[:pos] + (slice(None),) * (ndim - used) + idx[pos + 1 :]


def getitem(x: Variable, idx: Any) -> Variable:
    """x[idx] with NumPy semantics for the supported index kinds."""
    idx = _expand_ellipsis(idx if isinstance(idx, tuple) else (idx,), x.ndim)
    if any(_is_advanced(i) for i in idx):
        return _advanced(x, idx)
    if sum(i is not None for i in idx) > x.ndim:
        raise IndexError(f"too many indices for {x.ndim}-d {x!r}: {idx!r}")
    if x.owner is not None and x.owner.op == "shape" and len(idx) == 1 and _is_int(idx[0]):
        base, i = x.owner.inputs[0], int(idx[0])
        if not -base.ndim <= i < base.ndim:
            raise IndexError(f"index {i} is out of range for the shape of {base.ndim}-d {base!r}")
        return shape_i(base, i % base.ndim)
    spec, inputs, pattern = [], [], []
    kept = 0
    for item in idx:
        if item is None:
            pattern.append("x")
        elif isinstance(item, slice):
            parts = (item.start, item.stop, item.step)
            if parts[2] is not None and _is_int(parts[2]) and parts[2] == 0:
                raise ValueError("slice step cannot be zero")
            spec.append(("s", *(p is not None for p in parts)))
            inputs += [_index_scalar(p) for p in parts if p is not None]
            pattern.append(kept)
            kept += 1
        else:
            spec.append("i")
            inputs.append(_index_scalar(item))
    rest = x.ndim - len(spec)
    pattern += list(range(kept, kept + rest))
    while spec and spec[-1] == ("s", False, False, False):  # x[:, :] is x
        spec.pop()
    out = apply("subtensor", [x, *inputs], spec=tuple(spec)) if spec else x
    return dimshuffle(out, pattern)


def _advanced(x: Variable, idx: tuple) -> Variable:
    arrays = []
    for n, item in enumerate(idx):
        if isinstance(item, slice) and item == slice(None):
            if any(_is_advanced(i) for i in idx[n:]):
                raise NotImplementedError(
                    "integer-array indexing after a full slice is not supported; transpose first"
                )
            break
        var = as_variable(item)
        if var.dtype == "bool":
            raise TypeError(
                f"boolean mask indexing is not supported (index {item!r}); "
                "use switch/where or nonzero positions"
            )
        if var.dtype[0] not in "iu" or isinstance(item, slice) or item is None:
            raise NotImplementedError(
                f"integer-array indexing can only be mixed with trailing full slices; got {idx!r}"
            )
        arrays.append(cast(var, "int64") if var.dtype != "int64" else var)
    return apply("advanced_subtensor", [x, *arrays])


def _inc(x_sub: Variable, y: Any, set_: bool) -> Variable:
    node = x_sub.owner
    if node is None or node.op not in ("subtensor", "advanced_subtensor"):
        raise TypeError(
            f"{'set' if set_ else 'inc'}_subtensor expects an indexed variable such as x[1:3], "
            f"got {x_sub!r}"
        )
    base, *idx = node.inputs
    y = as_variable(y)
    if y.dtype != base.dtype:
        lossless = (
            np.asarray(y.literal).astype(base.dtype) == y.literal
            if is_weak(y)
            else np.can_cast(y.dtype, base.dtype, "safe")
        )
        if not lossless:
            raise TypeError(
                f"cannot put values of dtype {y.dtype} into {base!r} of dtype "
                f"{base.dtype} without loss; cast them first"
            )
        y = cast(y, base.dtype)
    if node.op == "subtensor":
        return apply("inc_subtensor", [base, y, *idx], spec=node.p["spec"], set=set_)
    return apply("advanced_inc_subtensor", [base, y, *idx], set=set_)


def set_subtensor(x_sub: Variable, y: Any) -> Variable:
    """A copy of the indexed tensor with the indexed part replaced by y."""
    return _inc(x_sub, y, True)


def inc_subtensor(x_sub: Variable, y: Any) -> Variable:
    """A copy of the indexed tensor with y added to the indexed part."""
    return _inc(x_sub, y, False)
