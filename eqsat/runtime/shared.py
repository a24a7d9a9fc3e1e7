"""Shared variables: graph inputs whose value lives between calls (Theano's `shared`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eqsat.graph import Type, Variable
from eqsat.runtime.convert import _as_array, convert_value


class SharedVariable(Variable):
    """A Variable with a value; functions read it and `updates` replace it."""

    def __init__(
        self,
        value: np.ndarray,
        ttype: Type,
        name: str | None,
        strict: bool,
        allow_downcast: bool | None,
    ) -> None:
        super().__init__(ttype, None, name)
        self.strict = strict
        self.allow_downcast = allow_downcast
        self._value = value

    def _what(self) -> str:
        return f"shared variable {self.name or '<unnamed>'}"

    def get_value(self, borrow: bool = False, return_internal_type: bool = False) -> np.ndarray:
        """The current value (a copy unless borrow=True)."""
        return self._value if borrow else self._value.copy()

    def set_value(self, value: Any, borrow: bool = False) -> None:
        """Replace the value, converted and checked as a function input would be."""
        if self.strict and isinstance(value, np.ndarray) and value.dtype != self.dtype:
            raise TypeError(
                f"{self._what()} is strict: expected dtype {self.dtype}, got {value.dtype}"
            )
        arr = convert_value(value, self.type, self._what(), self.allow_downcast)
        self._value = arr if borrow and arr is value else np.array(arr)

    def __repr__(self) -> str:
        return self.name or f"<shared {self.type!r}>"

    __str__ = __repr__

    @property
    def value(self) -> np.ndarray:
        return self.get_value()

    @value.setter
    def value(self, v: Any) -> None:
        self.set_value(v)


def shared(
    value: Any,
    name: str | None = None,
    strict: bool = False,
    allow_downcast: bool | None = None,
    borrow: bool = False,
    broadcastable: Sequence[bool] | None = None,
    shape: Sequence[int | None] | None = None,
) -> SharedVariable:
    """A shared variable holding `value`. Its shape is not fixed (set_value may change it)
    unless `shape=` or `broadcastable=` pins axes."""
    arr = _as_array(value, f"shared variable {name or '<unnamed>'}")
    arr = arr if borrow and arr is value else np.array(arr)
    if shape is not None and broadcastable is not None:
        raise TypeError("shared() takes at most one of shape= and broadcastable=")
    if shape is not None:
        ttype = Type(arr.dtype, shape)
    else:
        ttype = Type.from_broadcastable(arr.dtype, broadcastable or (False,) * arr.ndim)
    if ttype.ndim != arr.ndim:
        raise ValueError(f"shared: pattern {ttype!r} does not fit a value of shape {arr.shape}")
    arr = convert_value(arr, ttype, f"shared variable {name or '<unnamed>'}")
    return SharedVariable(arr, ttype, name, strict, allow_downcast)
