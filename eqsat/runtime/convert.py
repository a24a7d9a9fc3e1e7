"""Turning user data into values of a Type, with Theano's rules and errors.

Lossless conversions are silent (int64 data for a float64 input); lossy ones are refused unless
the caller allows downcasting. Python data (numbers and lists) is judged by value: 5 fits an
int8 input, 300 does not. Errors name the input and say what was expected and what came.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eqsat.config import config
from eqsat.graph import Constant, Type, Variable
from eqsat.ops import constant


def _as_array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, Variable):
        raise TypeError(f"{what}: expected numeric data, got the symbolic variable {value!r}")
    try:
        arr = np.asarray(value)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"{what}: cannot convert {type(value).__name__} to an array: {e}") from e
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{what}: expected numeric data, got {type(value).__name__} of dtype {arr.dtype}"
            f" ({value!r:.80})"
        )
    return arr


def _lossless_by_value(arr: np.ndarray, dtype: str) -> bool:
    with np.errstate(all="ignore"):
        cast = arr.astype(dtype)
        return bool(np.array_equal(cast.astype(arr.dtype), arr, equal_nan=arr.dtype.kind == "f"))


def convert_value(
    value: Any, ttype: Type, what: str, allow_downcast: bool | None = None
) -> np.ndarray:
    """`value` as an array of `ttype`, or a TypeError/ValueError naming `what`."""
    python_data = not isinstance(value, np.ndarray | np.generic)
    arr = _as_array(value, what)
    if arr.ndim != ttype.ndim:
        raise TypeError(
            f"{what}: expected a {ttype.ndim}-d array ({ttype!r}), got a {arr.ndim}-d value "
            f"of shape {arr.shape}"
        )
    if arr.dtype != ttype.dtype:
        target = ttype.dtype
        if np.can_cast(arr.dtype, target, "safe") or allow_downcast:
            arr = arr.astype(target)
        elif python_data and (
            _lossless_by_value(arr, target)
            or (allow_downcast is None and target == config.floatX and arr.dtype.kind == "f")
        ):
            arr = arr.astype(target)
        else:
            raise TypeError(
                f"{what}: expected dtype {target}, got {arr.dtype}; converting would lose "
                "information (cast the data first, or pass allow_input_downcast=True)"
            )
    for axis, (want, got) in enumerate(zip(ttype.shape, arr.shape, strict=True)):
        if want is not None and want != got:
            raise ValueError(
                f"{what}: axis {axis} must have length {want} ({ttype!r}), got shape {arr.shape}"
            )
    return arr


def coerce_variable(value: Any, ttype: Type, what: str) -> Variable:
    """`value` (symbolic or data) as a Variable of `ttype`'s dtype and rank, cast only when that
    is lossless: the rule for givens replacements and update expressions."""
    from eqsat.tensor.basic import cast

    if not isinstance(value, Variable):
        return constant(convert_value(value, ttype, what, allow_downcast=False))
    if value.ndim != ttype.ndim:
        raise TypeError(
            f"{what}: expected a {ttype.ndim}-d value ({ttype!r}), got {value!r} of {value.type!r}"
        )
    if value.dtype != ttype.dtype:
        if isinstance(value, Constant) and value.weak:
            return constant(convert_value(value.literal, ttype, what, allow_downcast=False))
        if not np.can_cast(value.dtype, ttype.dtype, "safe"):
            raise TypeError(
                f"{what}: {value!r} has dtype {value.dtype}, which cannot be cast to "
                f"{ttype.dtype} without loss; cast it explicitly with .astype({ttype.dtype!r})"
            )
        value = cast(value, ttype.dtype)
    for axis, (want, got) in enumerate(zip(ttype.shape, value.type.shape, strict=True)):
        if None not in (want, got) and want != got:
            raise ValueError(f"{what}: axis {axis} has static length {got}, expected {want}")
    return value
