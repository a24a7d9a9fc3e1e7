"""Symbolic shapes: which dimensions of a graph are equal, as Theano's ShapeFeature knew.

Theano semantics forbid broadcasting at run time (a length-1 axis not declared broadcastable
is an error), so an elementwise op's non-broadcastable input axes are one dimension, a dot's
inner axes are one, an `alloc` is as long as the `shape_i` it was given. A union-find over
(leaf, axis) dimensions collects these facts. The optimizer uses them to drop allocations that
another operand's shape already implies (the `ones_like` seeds of gradients); the runtime checks
them on the inputs before running anything, so a call that the unoptimized graph would reject
is still rejected, with a message naming the inputs.

A dimension made by an op this module does not follow (reshape, indexing, concatenation) is
opaque: it is equal to nothing that could be checked on the inputs, and any variable with such
a dimension gets no shape key, so no rewrite relies on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eqsat.graph import Constant, Variable, toposort
from eqsat.ops import OPS

Dim = Any  # an int (static size) or a union-find node


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, a: Any) -> Any:
        self.parent.setdefault(a, a)
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # a static size wins as the representative, then a leaf dimension
            if isinstance(rb, int) or (not isinstance(ra, int) and rb[0] == "leaf"):
                ra, rb = rb, ra
            self.parent[rb] = ra


@dataclass
class Shapes:
    """Dimensions of every variable of a graph, and the equalities between them."""

    dims: dict[int, tuple[Dim, ...]] = field(default_factory=dict)  # id(var) -> dims
    scalars: dict[int, Dim] = field(default_factory=dict)  # id(shape_i output) -> its dim
    uf: _UnionFind = field(default_factory=_UnionFind)
    opaque: set = field(default_factory=set)  # union-find roots equal to an opaque dim
    leaves: dict[int, Variable] = field(default_factory=dict)

    def key(self, var: Variable) -> str | None:
        """A string equal for two variables known to have the same shape, None if unknown."""
        dims = self.dims.get(id(var))
        if dims is None:
            return None
        parts = []
        for d in dims:
            r = self.uf.find(d)
            if isinstance(r, int):
                parts.append(str(r))
            elif r in self.opaque or r[0] != "leaf":
                return None
            else:
                parts.append(f"{r[1]}.{r[2]}")
        return "(" + ",".join(parts) + ")"

    def source(self, var: Variable, axis: int) -> int | tuple[Variable, int] | None:
        """Where axis `axis` of var's length can be read: a static size, or a leaf's axis."""
        r = self.uf.find(self.dims[id(var)][axis])
        if isinstance(r, int):
            return r
        if r in self.opaque or r[0] != "leaf":
            return None
        return self.leaves[r[1]], r[2]

    def checks(self) -> list[list[tuple[Variable, int] | int]]:
        """Groups of leaf axes (and static sizes) the graph requires equal; each of two or more."""
        groups: dict[Any, list] = {}
        for node in list(self.uf.parent):
            if isinstance(node, tuple) and node[0] == "leaf":
                groups.setdefault(self.uf.find(node), []).append(node)
        out = []
        for root, members in groups.items():
            group: list = [(self.leaves[m[1]], m[2]) for m in sorted(members, key=_order)]
            if isinstance(root, int):
                group.append(root)
            if len(group) > 1:
                out.append(group)
        return out


def _order(m: tuple) -> tuple:
    return (m[3], m[2])


def infer(outputs: Sequence[Variable]) -> Shapes:
    """The symbolic shapes of every variable that `outputs` depend on."""
    s = Shapes()
    fresh = iter(range(1 << 62))
    order: dict[int, int] = {}

    def dims_of(v: Variable) -> tuple[Dim, ...]:
        if id(v) not in s.dims:  # a leaf
            if isinstance(v, Constant) or not v.ndim:
                s.dims[id(v)] = tuple(s.uf.find(n) if n is not None else opaque()
                                      for n in v.type.shape)  # fmt: skip
            else:
                k = order.setdefault(id(v), len(order))
                s.leaves[id(v)] = v
                s.dims[id(v)] = tuple(_leaf_dim(s, v, i, k, n) for i, n in enumerate(v.type.shape))
        return s.dims[id(v)]

    def opaque(size: int | None = None) -> Dim:
        d = ("opaque", next(fresh))
        s.opaque.add(d)
        return d if size is None else _static(s, d, size)

    def length(v: Variable, static: int | None) -> Dim:
        """The dim a scalar graph value gives as a length (alloc's sizes, one_hot's n)."""
        if id(v) in s.scalars:
            return s.scalars[id(v)]
        d = _const_dim(s, v)
        return d if d is not None else opaque(static)

    for node in toposort(outputs):
        ins = [dims_of(i) for i in node.inputs]
        kind, p, out = OPS[node.op].kind, node.p, node.out
        if kind == "elemwise":
            dims = []
            for axis in range(out.ndim):
                live = [d[axis] for d, i in zip(ins, node.inputs, strict=True)
                        if i.type.shape[axis] != 1]  # fmt: skip
                for d in live[1:]:
                    s.uf.union(live[0], d)
                dims.append(live[0] if live else s.uf.find(1))
            s.dims[id(out)] = tuple(dims)
        elif kind == "reduce":
            axis = p["axis"]
            kept = [1 if i in axis else d for i, d in enumerate(ins[0])]
            s.dims[id(out)] = tuple(
                s.uf.find(1) if d == 1 else d for i, d in enumerate(kept)
                if p["keepdims"] or i not in axis
            )  # fmt: skip
        elif node.op == "dimshuffle":
            s.dims[id(out)] = tuple(s.uf.find(1) if o == "x" else ins[0][o]
                                    for o in p["new_order"])  # fmt: skip
        elif node.op == "dot":
            a, b = ins
            s.uf.union(a[-1], b[0])
            s.dims[id(out)] = (*a[:-1], *b[1:])
        elif node.op in ("gemm", "gemv"):  # beta*c + alpha*op(a)op(b)
            c, _, a, b, _ = ins
            a = a[::-1] if p["trans_a"] else a
            b = b[::-1] if p.get("trans_b") else b
            s.uf.union(a[-1], b[0])
            dims = (*a[:-1], *b[1:])
            for d, cd, cs in zip(dims, c, node.inputs[0].type.shape, strict=True):
                if cs != 1:
                    s.uf.union(d, cd)
            s.dims[id(out)] = dims
        elif node.op == "shape_i":
            s.dims[id(out)] = ()
            s.scalars[id(out)] = ins[0][p["i"]]
        elif node.op == "alloc":
            value, *sizes = node.inputs
            dims = [length(d, n) for d, n in zip(sizes, out.type.shape, strict=True)]
            lead = len(dims) - value.ndim
            for d, vd, vs in zip(dims[lead:], ins[0], value.type.shape, strict=True):
                if vs != 1:
                    s.uf.union(d, vd)
            s.dims[id(out)] = tuple(dims)
        elif node.op == "one_hot":
            s.dims[id(out)] = (*ins[0], length(node.inputs[1], out.type.shape[-1]))
        elif node.op in ("softmax", "log_softmax"):
            s.dims[id(out)] = ins[0]
        else:
            s.dims[id(out)] = tuple(opaque(n) for n in out.type.shape)
    for v in outputs:
        dims_of(v)
    for node in list(s.uf.parent):  # an opaque dim taints its whole class
        if node in s.opaque:
            s.opaque.add(s.uf.find(node))
    return s


def _leaf_dim(s: Shapes, v: Variable, axis: int, k: int, size: int | None) -> Dim:
    d = ("leaf", id(v), axis, k)
    s.uf.find(d)
    return d if size is None else _static(s, d, size)


def _static(s: Shapes, d: Dim, size: int) -> Dim:
    s.uf.union(size, d)
    return d


def _const_dim(s: Shapes, v: Variable) -> Dim | None:
    if isinstance(v, Constant) and v.data.size == 1:
        return s.uf.find(int(v.data.reshape(()).item()))
    return None
