"""eqsat graphs as egglog terms, and back.

One egglog sort `Term` has a constructor per op (CamelCase of the op's name, `Sum`, `TrueDiv`; a
variadic op gets one per arity used, `Alloc_3`). An op's static params are its first argument, the
repr of its params tuple. Graph inputs, shared variables and tensor constants are `(Leaf k)`;
scalar-valued constants are `(LitN value dtype ndim)` so that rules can match their value.
Analyses `DT` (dtype) and `Rank` (ndim) are set for every inserted node, and rules propagate them
to the terms they create (`rules/types.py`); full types stay in Python, keyed by N index.

Declaring the sort and the rules costs ~0.1 s with egglog 13.2, so one e-graph per rule text is
declared once and each optimization runs between a push and a pop on it.

The graph goes in as one generated program, each shared node once: `(set (N k) (Op ... (N i)))`
(high-level egglog registration re-expands sharing and is 100x slower). Everything that touches
egglog's lower-level API, and the small differences between egglog 13.2 and 14, stays here.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from egglog import bindings

from eqsat.graph import Apply, Constant, Type, Variable, toposort
from eqsat.ops import OPS, apply, constant
from eqsat.shapes import Shapes


def ctor(op: str) -> str:
    """The egglog constructor name of an op: add -> Add, true_div -> TrueDiv, and_ -> And."""
    return "".join(part.capitalize() for part in op.split("_"))


CTOR_TO_OP = {ctor(op): op for op in OPS}
ANALYSES = ("N", "DT", "Rank", "NonNeg", "Pos", "Shp", "DimSrc")  # tables about terms, not terms
CACHED_ARITIES = 8  # variadic constructors up to this arity are declared once and reused


def _declarations(arities: set[tuple[str, int]]) -> str:
    lines = ["(datatype Term", "  (Leaf i64)", "  (LitN f64 String i64)"]
    for op, row in OPS.items():
        params = " String" if _has_params(op) else ""
        if row.arity is not None:
            lines.append(f"  ({ctor(op)}{params}{' Term' * row.arity})")
    for op, n in sorted(arities):
        params = " String" if _has_params(op) else ""
        lines.append(f"  ({ctor(op)}_{n}{params}{' Term' * n})")
    lines.append(")")
    lines.append("(function N (i64) Term :merge old)")
    lines.append("(function DT (Term) String :merge old)")
    lines.append("(function Rank (Term) i64 :merge old)")
    lines.append("(relation NonNeg (Term))")
    lines.append("(relation Pos (Term))")
    lines.append("(function Shp (Term) String :merge old)")
    lines.append("(function DimSrc (Term) Term :merge old)")
    return "\n".join(lines)


# Ops with static params: their constructors take the params' repr first.
_PARAM_OPS = {
    "cast", "sum", "prod", "max", "min", "argmax", "argmin", "shape_i", "dimshuffle", "reshape",
    "make_vector", "arange", "concatenate", "subtensor", "inc_subtensor",
    "advanced_inc_subtensor", "softmax", "log_softmax", "one_hot", "logsumexp", "gemm", "gemv",
}  # fmt: skip


def _has_params(op: str) -> bool:
    return op in _PARAM_OPS


def _literal(c: Constant) -> tuple[float, str, int] | None:
    """(value, dtype, ndim) for a constant with one element that egglog can hold exactly."""
    if c.data.size != 1 or c.dtype[0] not in "biuf":
        return None
    value = float(c.data.reshape(()).item())
    if not math.isfinite(value) or (c.dtype[0] in "iu" and abs(value) > 2**53):
        return None
    return value, c.dtype, c.data.ndim


def _f64(x: float) -> str:
    text = repr(float(x))
    return text if any(ch in text for ch in ".e") else text + ".0"


def _run(egraph: Any, program: str) -> list:
    """Parse and run egglog program text (egglog 13.2 and 14 differ in the call)."""
    if hasattr(egraph, "parse_and_run_program"):
        return egraph.parse_and_run_program(program)
    return egraph.run_program(*egraph.parse_program(program))


@dataclass
class TermGraph:
    """An e-graph holding a set of output graphs, with what is needed to read it back.
    Use it as a context manager: leaving it pops this graph off a shared, declared e-graph."""

    egraph: Any
    leaves: list[Variable]
    roots: list[int]  # N index of each output
    inserted: Inserted
    shared_base: bool = False

    def run(self, program: str) -> list:
        return _run(self.egraph, program)

    def size(self) -> int:
        """Number of e-nodes of Term constructors (not the tables in ANALYSES)."""
        (out,) = self.run("(print-size)")
        sizes = out.sizes if hasattr(out, "sizes") else out[0]
        return sum(n for name, n in sizes if name not in ANALYSES)

    def classes(self) -> int:
        """Number of e-classes holding Term e-nodes (as `freeze` would read them)."""
        live = _live_rows(self.egraph.freeze())
        return len({row.output for name, _, row in live if name not in ANALYSES and name != "N"})

    def __enter__(self) -> TermGraph:
        return self

    def __exit__(self, kind: Any, error: Any, tb: Any) -> None:
        if not self.shared_base:
            return
        if error is None:
            self.run("(pop)")
        else:  # an egglog failure may leave it in any state: declare a fresh one next time
            _BASES.clear()


_BASES: dict[str, Any] = {}
_CACHED = {(op, n) for op, row in OPS.items() if row.arity is None
           for n in range(1, CACHED_ARITIES + 1)}  # fmt: skip


def _base(rules_text: str) -> Any:
    """The e-graph with the sort and `rules_text` declared, made once per rule text."""
    if rules_text not in _BASES:
        egraph = bindings.EGraph()
        _run(egraph, _declarations(_CACHED) + "\n" + rules_text)
        _BASES[rules_text] = egraph
    return _BASES[rules_text]


@dataclass
class Inserted:
    """What went into the e-graph, by N index: each node's type and its e-node as
    (constructor, primitive args, child N indices)."""

    types: list[Type] = field(default_factory=list)
    enodes: list[tuple[str, tuple, tuple[int, ...]]] = field(default_factory=list)


def insertion_program(
    outputs: Sequence[Variable], shapes: Shapes | None = None
) -> tuple[str, list, list[int], set, Inserted]:
    """The egglog text inserting `outputs` (each shared node once), the leaves in order, the N
    index of each output, the variadic (op, arity) pairs used, and what was inserted. With
    `shapes`, each node whose symbolic shape is known gets it as `(Shp term)`."""
    index: dict[int, int] = {}
    inserted = Inserted()
    leaves: list[Variable] = []
    lines: list[str] = []
    arities: set[tuple[str, int]] = set()

    def add(var: Variable, term: str, enode: tuple) -> None:
        k = len(index)
        index[id(var)] = k
        inserted.types.append(var.type)
        inserted.enodes.append(enode)
        lines.append(f"(set (N {k}) {term})")
        lines.append(f'(set (DT (N {k})) "{var.dtype}")')
        lines.append(f"(set (Rank (N {k})) {var.ndim})")
        if shapes is not None and (key := shapes.key(var)) is not None:
            lines.append(f'(set (Shp (N {k})) "{key}")')

    def leaf(var: Variable) -> None:
        lit = _literal(var) if isinstance(var, Constant) else None
        if lit is not None:
            add(var, f'(LitN {_f64(lit[0])} "{lit[1]}" {lit[2]})', ("LitN", lit, ()))
        else:
            add(var, f"(Leaf {len(leaves)})", ("Leaf", (len(leaves),), ()))
            leaves.append(var)

    shape_reads = []
    for node in toposort(outputs):
        for i in node.inputs:
            if id(i) not in index:
                leaf(i)
        children = [index[id(i)] for i in node.inputs]
        add(node.out, *_node_term(node, children, arities))
        if node.op == "shape_i":
            shape_reads.append(node)
    for out in outputs:
        if id(out) not in index:
            leaf(out)
    if shapes is not None:  # after every leaf is in: a source may be inserted late
        lines += _dim_sources(shape_reads, shapes, index)
    return "\n".join(lines), leaves, [index[id(o)] for o in outputs], arities, inserted


def _dim_sources(shape_reads: list[Apply], shapes: Shapes, index: dict[int, int]) -> list[str]:
    """`(DimSrc t)` for each `shape_i` term t whose length the shape analysis reads off a leaf
    or knows statically, for the rule shape/shape_i_of_input."""
    lines = []
    for node in shape_reads:
        x = node.inputs[0]
        src = shapes.source(x, node.p["i"])
        if src is None or (not isinstance(src, int) and src[0] is x):
            continue
        if isinstance(src, int):
            term = f'(LitN {_f64(src)} "{node.out.dtype}" 0)'
        else:
            leaf, axis = src
            term = f'(ShapeI "{(("i", axis),)!r}" (N {index[id(leaf)]}))'
        lines.append(f"(set (DimSrc (N {index[id(node.out)]})) {term})")
    return lines


def _node_term(node: Apply, children: list[int], arities: set) -> tuple[str, tuple]:
    name = ctor(node.op)
    if OPS[node.op].arity is None:
        arities.add((node.op, len(children)))
        name = f"{name}_{len(children)}"
    args = (repr(node.params),) if _has_params(node.op) else ()
    params = f' "{args[0]}"' if args else ""
    return f"({name}{params}{''.join(f' (N {c})' for c in children)})", (
        name,
        args,
        tuple(children),
    )


def to_egraph(
    outputs: Sequence[Variable], rules_text: str = "", shapes: Shapes | None = None
) -> TermGraph:
    """An e-graph holding `outputs`, with `rules_text` (rulesets) declared."""
    program, leaves, roots, arities, inserted = insertion_program(outputs, shapes)
    if arities <= _CACHED:
        tg = TermGraph(_base(rules_text), leaves, roots, inserted, shared_base=True)
        tg.run("(push)")
        try:
            tg.run(program)
        except BaseException:
            _BASES.clear()
            raise
        return tg
    tg = TermGraph(bindings.EGraph(), leaves, roots, inserted)
    tg.run(_declarations(arities | _CACHED) + "\n" + rules_text + "\n" + program)
    return tg


# ------------------------------------------------------------------------------- reading back
@dataclass(frozen=True)
class ENode:
    """One e-node of a frozen e-graph: constructor, its primitive args, and child e-classes."""

    ctor: str
    args: tuple  # primitive arguments (params string, literal value/dtype/ndim, leaf index)
    children: tuple  # e-class ids


@dataclass
class FrozenGraph:
    """A snapshot of the e-graph as plain Python: e-classes, their nodes, types, root classes."""

    classes: dict[Any, list[ENode]]
    types: dict[Any, Type]  # for classes holding an inserted node
    roots: list[Any]
    original: dict[Any, ENode]  # the inserted e-node of each class that has one

    @property
    def n_nodes(self) -> int:
        return sum(len(nodes) for nodes in self.classes.values())


def _live_rows(frozen: Any) -> Iterator[tuple[str, Any, Any]]:
    """(function name, function, row) of each row of a frozen e-graph that no rule subsumed."""
    for name, fn in frozen.functions.items():
        for row in fn.rows:
            if not getattr(row, "subsumed", False):
                yield name, fn, row


def freeze(tg: TermGraph) -> FrozenGraph:
    """Read the e-graph into a FrozenGraph (egglog's own extractors abort on real graphs)."""
    egraph = tg.egraph
    frozen = egraph.freeze()
    read = {
        "String": egraph.value_to_string,
        "f64": egraph.value_to_f64,
        "i64": egraph.value_to_i64,
    }
    classes: dict[Any, list[ENode]] = {}
    types: dict[Any, Type] = {}
    roots_by_n: dict[int, Any] = {}
    for name, fn, row in _live_rows(frozen):
        if name == "N":
            k = egraph.value_to_i64(row.inputs[0])
            roots_by_n[k] = row.output
            types[row.output] = tg.inserted.types[k]
        elif name not in ANALYSES:
            args, children = [], []
            for sort, value in zip(fn.input_sorts, row.inputs, strict=True):
                if sort == "Term":
                    children.append(value)
                else:
                    args.append(read[sort](value))
            classes.setdefault(row.output, []).append(ENode(name, tuple(args), tuple(children)))
    # The first inserted e-node of each class (rules may merge an inserted node into the class
    # of one inserted earlier, e.g. sum(g * onehot) into g's): children are inserted before
    # parents, so taking the earliest keeps the choice acyclic.
    original: dict[Any, ENode] = {}
    for k, (name, args, kids) in enumerate(tg.inserted.enodes):
        node = ENode(name, args, tuple(roots_by_n[c] for c in kids))
        if node in classes.get(roots_by_n[k], ()):
            original.setdefault(roots_by_n[k], node)
    return FrozenGraph(classes, types, [roots_by_n[k] for k in tg.roots], original)


def op_name(ctor_name: str) -> str | None:
    """The eqsat op of a constructor (`Alloc_3` is variadic alloc), None for Leaf and LitN."""
    return CTOR_TO_OP.get(ctor_name.split("_")[0])


def op_of(node: ENode) -> tuple[str, dict]:
    """The eqsat op name and params of an e-node (not Leaf/LitN)."""
    op = CTOR_TO_OP[node.ctor.split("_")[0]]
    params = dict(ast.literal_eval(node.args[0])) if _has_params(op) else {}
    return op, params


def build(fg: FrozenGraph, choice: dict[Any, ENode], leaves: list[Variable]) -> list[Variable]:
    """The graph of the chosen e-node in each class reachable from the roots, rebuilt through
    the op table (so types are re-inferred); leaves come back as the same objects."""
    built: dict[Any, Variable] = {}
    for cls in _order(fg.roots, choice):
        node = choice[cls]
        if node.ctor == "Leaf":
            built[cls] = leaves[node.args[0]]
        elif node.ctor == "LitN":
            value, dtype, ndim = node.args
            built[cls] = constant(np.full((1,) * ndim, value, dtype=dtype))
        else:
            op, params = op_of(node)
            built[cls] = apply(op, [built[c] for c in node.children], **params)
    return [built[r] for r in fg.roots]


def _order(roots: list[Any], choice: dict[Any, ENode]) -> list[Any]:
    """Classes reachable from `roots` through the choice, children first (iterative)."""
    order: list[Any] = []
    state: dict[Any, bool] = {}  # False: on the stack, True: done
    for root in roots:
        stack = [(root, False)]
        while stack:
            cls, expanded = stack.pop()
            if expanded:
                state[cls] = True
                order.append(cls)
                continue
            if cls in state:
                continue
            state[cls] = False
            stack.append((cls, True))
            stack.extend((c, False) for c in choice[cls].children if c not in state)
    return order
