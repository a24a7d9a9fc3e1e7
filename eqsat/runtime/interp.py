"""The NumPy reference backend (`mode="py"`): runs each node's NumPy implementation in order.

It is the oracle for every other backend, so besides computing it enforces the semantics the
compiled backends rely on: no broadcasting along an axis whose type does not say it may.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eqsat.graph import Apply, Constant, Variable, toposort
from eqsat.ops import OPS


def _check_elemwise(node: Apply, values: Sequence[np.ndarray]) -> None:
    for axis in range(node.out.ndim):
        sizes = {
            v.shape[axis]
            for var, v in zip(node.inputs, values, strict=True)
            if var.type.shape[axis] != 1
        }
        if len(sizes) > 1:
            shapes = ", ".join(str(np.shape(v)) for v in values)
            raise ValueError(
                f"{node.op}: input shapes {shapes} do not match on axis {axis}, and no input is "
                "declared broadcastable there (use a row/col type, dimshuffle('x', ...) or "
                "T.tensor(broadcastable=...) to broadcast)"
            )


def _check_alloc(node: Apply, values: Sequence[np.ndarray]) -> None:
    value_var, value = node.inputs[0], values[0]
    dims = [int(d) for d in values[1:]]
    lead = len(dims) - value.ndim
    for axis, size in enumerate(value.shape):
        if value_var.type.shape[axis] != 1 and size != dims[lead + axis]:
            raise ValueError(f"alloc: a value of shape {value.shape} cannot fill shape {dims}")


_CHECKS = {"alloc": _check_alloc}


def run_node(node: Apply, values: Sequence[np.ndarray]) -> np.ndarray:
    """One node's value, with shape errors reported against the node."""
    row = OPS[node.op]
    check = _check_elemwise if row.kind == "elemwise" else _CHECKS.get(node.op)
    if check is not None:
        check(node, values)
    try:
        out = row.impl(*values, **node.p)
    except (ValueError, IndexError, TypeError, ZeroDivisionError) as e:
        raise type(e)(
            f"{node.op} failed on inputs of shapes {[np.shape(v) for v in values]}: {e}"
        ) from e
    return np.asarray(out).astype(node.out.dtype, copy=False)


class PyThunk:
    """Evaluates `outputs` from root values with the NumPy implementations."""

    def __init__(self, outputs: Sequence[Variable], roots: Sequence[Variable] = ()) -> None:
        self.outputs = list(outputs)
        self.nodes = toposort(self.outputs)
        self.keys = [id(v) for v in roots]
        self.fresh = [False] * len(self.outputs)  # results may be inputs, views or repeated

    def run(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Outputs from the values of `roots`, positionally."""
        return self(dict(zip(self.keys, arrays, strict=True)))

    def __call__(self, roots: dict[int, np.ndarray]) -> list[np.ndarray]:
        values = dict(roots)
        with np.errstate(all="ignore"):  # IEEE results (inf, nan), as compiled code gives
            for node in self.nodes:
                args = [
                    values[id(i)] if id(i) in values else _constant_value(i) for i in node.inputs
                ]
                values[id(node.out)] = run_node(node, args)
        return [values[id(o)] if id(o) in values else _constant_value(o) for o in self.outputs]


def _constant_value(v: Variable) -> np.ndarray:
    if isinstance(v, Constant):
        return v.data
    raise KeyError(f"no value for graph input {v!r}")
