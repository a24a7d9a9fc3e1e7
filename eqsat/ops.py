"""The op table, and the one way to build a node: `apply(op, inputs, **params)`.

An op is a row: its kind, its NumPy reference implementation (the oracle every backend is tested
against) and its type rule. The rows live in `ops_math` (elementwise, reductions, dot, softmax)
and `ops_structure` (shapes, allocation, indexing). Gradients (`grad.VJP`), sympy forms
(`sympy_bridge.SYMPY`) and, later, costs and C/CUDA templates are tables keyed by the same
names; `tests/test_op_tables.py` fails when a row is missing from any of them.
"""

from __future__ import annotations

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


def merge_dims(sizes: Sequence[int | None], what: str) -> int | None:
    """Static size of one broadcast axis, or ValueError when two known sizes clash."""
    known = {s for s in sizes if s is not None and s != 1}
    if len(known) > 1:
        raise ValueError(f"{what}: axis sizes {sorted(known)} cannot be broadcast together")
    if known:
        return known.pop()
    return 1 if all(s == 1 for s in sizes) else None


# --------------------------------------------------------------------------- building nodes
_CONSTANTS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_NODES: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def constant(
    value: Any, dtype: Any = None, name: str | None = None, literal: Any = None
) -> Constant:
    """A Constant; small ones are hash-consed so equal expressions build equal nodes.
    A bare Python number is kept as the constant's `literal` (see Constant)."""
    if literal is None and dtype is None and type(value) in (int, float, bool):
        literal = value
    if dtype is None and type(value) is float:
        from eqsat.config import config

        dtype = config.floatX
    arr = np.asarray(value, dtype=dtype)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"cannot make a numeric constant from {value!r} (dtype {arr.dtype})")
    if name is not None or arr.size > 16:
        return Constant(arr, name=name, literal=literal)
    key = (arr.dtype.str, arr.shape, arr.tobytes(), type(literal), literal)
    c = _CONSTANTS.get(key)
    if c is None:
        c = _CONSTANTS[key] = Constant(arr, literal=literal)
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
    target = np.result_type(*[s.dtype for s in strong], *[w.literal for w in weak])
    for w in weak:
        v = w.literal
        if target.kind in "iu" and not isinstance(v, float):
            info = np.iinfo(target)
            if not info.min <= v <= info.max:
                target = np.result_type(target, _smallest_int(v, target.kind == "i" or v < 0))
    return target


def is_weak(v: Variable) -> bool:
    """Whether v is a bare Python number, whose dtype yields to its fellow operands."""
    return isinstance(v, Constant) and v.literal is not None


def cast_weak(inputs: list[Variable]) -> list[Variable]:
    """Bare Python numbers among `inputs` given the dtype they take beside the others."""
    weak = [i for i in inputs if is_weak(i)]
    strong = [i for i in inputs if not is_weak(i)]
    if not (weak and strong):
        return inputs
    target = _weak_target(strong, weak)
    return [constant(i.data, target, literal=i.literal) if is_weak(i) else i for i in inputs]


def _align_elemwise(inputs: list[Variable]) -> list[Variable]:
    """Give bare Python numbers their dtype and left-pad ranks with broadcastable axes."""
    inputs = cast_weak(inputs)
    ndim = max(i.ndim for i in inputs)
    return [i if i.ndim == ndim else _pad_rank(i, ndim) for i in inputs]


def _pad_rank(v: Variable, ndim: int) -> Variable:
    if isinstance(v, Constant):
        shape = (1,) * (ndim - v.ndim) + v.data.shape
        return constant(v.data.reshape(shape), literal=v.literal)
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


# The rows register themselves in OPS; imported last because they use OpDef and merge_dims.
from eqsat import ops_math, ops_structure  # noqa: E402, F401
