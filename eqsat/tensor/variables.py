"""Symbolic input constructors with Theano's names: scalar/vector/matrix/... and their
b/w/i/l/f/d (int8/int16/int32/int64/float32/float64) prefixed and plural forms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eqsat.config import config
from eqsat.graph import Type, Variable

_PREFIX_DTYPES = {
    "b": "int8",
    "w": "int16",
    "i": "int32",
    "l": "int64",
    "f": "float32",
    "d": "float64",
}
_PATTERNS = {
    "scalar": (),
    "vector": (False,),
    "matrix": (False, False),
    "row": (True, False),
    "col": (False, True),
    "tensor3": (False,) * 3,
    "tensor4": (False,) * 4,
}


def tensor(
    dtype: Any = None,
    broadcastable: Sequence[bool] | None = None,
    name: str | None = None,
    shape: Sequence[int | None] | None = None,
) -> Variable:
    """A symbolic input of the given dtype and either broadcastable pattern or static shape."""
    dtype = config.floatX if dtype in (None, "floatX") else dtype
    if (broadcastable is None) == (shape is None):
        raise TypeError("tensor() takes exactly one of broadcastable= or shape=")
    ttype = Type.from_broadcastable(dtype, broadcastable) if shape is None else Type(dtype, shape)
    return Variable(ttype, None, name)


def _make(pattern: tuple[bool, ...], fixed_dtype: str | None):
    def ctor(name: str | None = None, dtype: Any = None) -> Variable:
        return tensor(fixed_dtype or dtype, pattern, name)

    return ctor


def _make_plural(single):
    def ctor(*names: Any) -> Variable | list[Variable]:
        if len(names) == 1 and isinstance(names[0], int):
            return [single() for _ in range(names[0])]
        if len(names) == 1:
            return single(names[0])
        return [single(n) for n in names]

    return ctor


__all__ = ["tensor"]
for _kind, _pattern in _PATTERNS.items():
    for _prefix, _dtype in [("", None), *_PREFIX_DTYPES.items()]:
        _single = _make(_pattern, _dtype)
        _single.__name__ = _prefix + _kind
        _single.__doc__ = f"A symbolic {_kind} of dtype {_dtype or 'floatX (or dtype=)'}."
        globals()[_prefix + _kind] = _single
        _plural = _prefix + ("matrices" if _kind == "matrix" else _kind + "s")
        globals()[_plural] = _make_plural(_single)
        __all__ += [_prefix + _kind, _plural]
