"""The IR: typed Variables produced by Apply nodes, as in Theano, plus graph walks.

A Variable's Type is a dtype and a static shape whose entries are an int (known) or None
(known only at run time). A known 1 is what Theano calls a broadcastable axis.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

_ids = itertools.count()


class Type:
    """dtype + static shape; `broadcastable` is derived from the shape."""

    __slots__ = ("dtype", "shape")

    def __init__(self, dtype: Any, shape: Sequence[int | None]) -> None:
        self.dtype = str(np.dtype(dtype))
        self.shape = tuple(None if s is None else int(s) for s in shape)
        if any(s is not None and s < 0 for s in self.shape):
            raise ValueError(f"static shape entries must be >= 0 or None, got {self.shape}")

    @classmethod
    def from_broadcastable(cls, dtype: Any, broadcastable: Sequence[bool]) -> Type:
        return cls(dtype, [1 if b else None for b in broadcastable])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def broadcastable(self) -> tuple[bool, ...]:
        return tuple(s == 1 for s in self.shape)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Type) and (self.dtype, self.shape) == (other.dtype, other.shape)

    def __hash__(self) -> int:
        return hash((self.dtype, self.shape))

    def __repr__(self) -> str:
        dims = ", ".join("?" if s is None else str(s) for s in self.shape)
        return f"Tensor({self.dtype}, shape=({dims}{',' if self.ndim == 1 else ''}))"


class Variable:
    """A symbolic value: a graph input (owner None) or the output of an Apply."""

    # NumPy must hand `ndarray * var` to var.__rmul__ rather than broadcasting over it.
    __array_ufunc__ = None

    def __init__(self, type: Type, owner: Apply | None = None, name: str | None = None):
        self.type = type
        self.owner = owner
        self.name = name
        self.uid = next(_ids)

    # -- attributes Theano users reach for
    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def broadcastable(self) -> tuple[bool, ...]:
        return self.type.broadcastable

    def __repr__(self) -> str:
        if self.name:
            return self.name
        if self.owner is not None:
            return f"{self.owner.op}.out"
        return f"<{self.type!r}>"

    __str__ = __repr__

    def __iter__(self):
        length = self.type.shape[0] if self.ndim else None
        if length is None:
            raise TypeError(
                f"cannot iterate over {self!r}: its length is not known at graph-build time"
            )
        return (self[i] for i in range(length))

    def __len__(self) -> int:
        raise TypeError(f"len() of symbolic variable {self!r} is unknown; use .shape[0]")

    def __bool__(self) -> bool:
        raise TypeError(
            f"the truth value of symbolic variable {self!r} is unknown at graph-build time; "
            "use eqsat.tensor.switch for a symbolic condition"
        )

    def __hash__(self) -> int:
        return id(self)

    # Identity, as in Theano: `x == y` is not elementwise (use T.eq).
    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other


class Constant(Variable):
    """A Variable with a fixed value. `literal` keeps the bare Python number a constant was
    written as: its dtype yields to the other operands of an elementwise op, however often the
    graph is rebuilt (NumPy 2 / Theano: float32 * 2.0 stays float32)."""

    def __init__(self, data: Any, dtype: Any = None, name: str | None = None, literal: Any = None):
        arr = np.array(data, dtype=dtype)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"constant must be numeric, got dtype {arr.dtype} for {data!r}")
        arr.setflags(write=False)
        super().__init__(Type(arr.dtype, arr.shape), None, name)
        self.data = arr
        self.literal = literal

    @property
    def weak(self) -> bool:
        return self.literal is not None

    def __repr__(self) -> str:
        if self.name:
            return self.name
        if self.data.size == 1:  # scalars and their broadcastable reshapes
            return repr(self.data.item())
        return f"Constant{{{np.array2string(self.data, threshold=6)}}}"

    __str__ = __repr__


class Apply:
    """One op applied to inputs; `params` are the op's static arguments (axes, dtype, ...)."""

    __slots__ = ("op", "params", "inputs", "outputs", "__weakref__")

    def __init__(self, op: str, inputs: Sequence[Variable], params: tuple, out_type: Type):
        self.op = op
        self.params = params
        self.inputs = tuple(inputs)
        self.outputs = (Variable(out_type, self),)

    @property
    def out(self) -> Variable:
        return self.outputs[0]

    @property
    def p(self) -> dict[str, Any]:
        return dict(self.params)

    def __repr__(self) -> str:
        args = ", ".join(map(repr, self.inputs))
        extra = "".join(f", {k}={v!r}" for k, v in self.params)
        return f"{self.op}({args}{extra})"


def toposort(outputs: Iterable[Variable]) -> list[Apply]:
    """Apply nodes reachable from `outputs`, each after its inputs (iterative: graphs get deep)."""
    order: list[Apply] = []
    done: set[int] = set()
    for out in outputs:
        stack: list[tuple[Variable, bool]] = [(out, False)]
        while stack:
            var, expanded = stack.pop()
            node = var.owner
            if node is None or id(node) in done:
                continue
            if expanded:
                done.add(id(node))
                order.append(node)
                continue
            stack.append((var, True))
            for inp in reversed(node.inputs):
                if inp.owner is not None and id(inp.owner) not in done:
                    stack.append((inp, False))
    return order


def ancestors(outputs: Iterable[Variable]) -> list[Variable]:
    """Every Variable that `outputs` depend on, outputs included, inputs before users."""
    outputs = list(outputs)
    seen: dict[int, Variable] = {}
    for node in toposort(outputs):
        for v in node.inputs:
            seen.setdefault(id(v), v)
        seen.setdefault(id(node.out), node.out)
    for v in outputs:
        seen.setdefault(id(v), v)
    return list(seen.values())


def graph_inputs(outputs: Iterable[Variable]) -> list[Variable]:
    """The root Variables (no owner) that `outputs` depend on, constants included."""
    return [v for v in ancestors(outputs) if v.owner is None]


def clone_replace(
    outputs: Sequence[Variable], replace: dict[Variable, Variable] | Iterable[tuple]
) -> list[Variable]:
    """`outputs` rebuilt with each key of `replace` swapped for its value (Theano's givens).

    Nodes are rebuilt through the op table, so types are re-inferred for the new inputs.
    """
    from eqsat.ops import apply

    pairs = replace.items() if isinstance(replace, dict) else replace
    memo: dict[int, Variable] = {id(k): v for k, v in pairs}
    for node in toposort(outputs):
        if id(node.out) in memo:
            continue
        new_inputs = [memo.get(id(i), i) for i in node.inputs]
        if all(a is b for a, b in zip(new_inputs, node.inputs, strict=True)):
            memo[id(node.out)] = node.out
        else:
            memo[id(node.out)] = apply(node.op, new_inputs, **node.p)
    return [memo.get(id(o), o) for o in outputs]


def to_flat(outputs: Sequence[Variable]) -> tuple[list[Variable], list[tuple], list[int]]:
    """A graph as flat lists (roots, nodes as (op, params, input numbers), output numbers), so
    that pickling it does not recurse once per node."""
    number: dict[int, int] = {}
    roots = graph_inputs(outputs)
    for n, v in enumerate(roots):
        number[id(v)] = n
    nodes = []
    for node in toposort(outputs):
        nodes.append((node.op, node.params, [number[id(i)] for i in node.inputs]))
        number[id(node.out)] = len(roots) + len(nodes) - 1
    return roots, nodes, [number[id(o)] for o in outputs]


def from_flat(roots: list[Variable], nodes: list[tuple], outputs: list[int]) -> list[Variable]:
    """The outputs of a graph stored by `to_flat`, rebuilt through the op table."""
    from eqsat.ops import apply

    values = list(roots)
    for op, params, inputs in nodes:
        values.append(apply(op, [values[i] for i in inputs], **dict(params)))
    return [values[i] for i in outputs]
