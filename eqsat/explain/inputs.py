"""Input values for an explain run: random ones of the declared types, and every value's shape.

Random inputs must fit together: a `dot(x, w)` with `w` shared of length 784 needs `x` with
784 columns. The function's shape checks (eqsat/shapes.py) group the input axes the graph
requires equal, so each group gets one length: a static size or a shared value's length when
the group has one, else a default that keeps an input near 10^5 elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eqsat.graph import Constant, Variable, toposort
from eqsat.runtime.interp import run_node
from eqsat.runtime.shared import SharedVariable

ELEMENTS = 100_000  # about how many elements a random input of unknown shape gets


def _default_length(ndim: int) -> int:
    return max(2, min(1000, round(ELEMENTS ** (1 / max(ndim, 1)))))


def _group_lengths(f: Any) -> dict[tuple[int, int], int]:
    """(id(input), axis) -> the length its shape-check group requires."""
    out: dict[tuple[int, int], int] = {}
    for group in f.shape_checks:
        axes = [m for m in group if not isinstance(m, int)]
        fixed = [m for m in group if isinstance(m, int)] + [
            v.get_value(borrow=True).shape[a] for v, a in axes if isinstance(v, SharedVariable)
        ]
        length = fixed[0] if fixed else _default_length(max(v.ndim for v, _ in axes))
        for v, a in axes:
            out[(id(v), a)] = length
    return out


def _random(var: Variable, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(var.dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":  # labels and indices: 0 and 1 are valid in any non-empty axis
        return rng.integers(0, 2, shape).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    raise TypeError(f"cannot make random values of dtype {dtype} (input {var!r})")


def random_inputs(f: Any, seed: int = 0) -> list[np.ndarray]:
    """Values for f's explicit inputs: each input's default if it has one, else random values
    of its type with lengths the graph's shape checks accept."""
    rng = np.random.default_rng(seed)
    lengths = _group_lengths(f)
    values = []
    for n, item in enumerate(f.ins):
        if item.value is not None:  # In(x, value=...): its converted default
            values.append(f.defaults[n])
            continue
        v = item.variable
        shape = tuple(
            static if static is not None
            else 1 if v.type.broadcastable[a]
            else lengths.get((id(v), a), _default_length(v.ndim))
            for a, static in enumerate(v.type.shape)
        )  # fmt: skip
        values.append(_random(v, shape, rng))
    return values


def all_shapes(
    outputs: Sequence[Variable], roots: Sequence[Variable], arrays: Sequence[np.ndarray]
) -> dict[int, tuple[int, ...]]:
    """The shape of every value computing `outputs` from root values, by id(variable): the
    graph evaluated once with the NumPy implementations."""
    values: dict[int, Any] = {id(v): a for v, a in zip(roots, arrays, strict=True)}
    with np.errstate(all="ignore"):
        for node in toposort(outputs):
            args = [i.data if isinstance(i, Constant) else values[id(i)] for i in node.inputs]
            values[id(node.out)] = run_node(node, args)
    shapes = {k: np.shape(a) for k, a in values.items()}
    for node in toposort(outputs):
        for i in node.inputs:
            if isinstance(i, Constant):
                shapes[id(i)] = i.data.shape
    return shapes
