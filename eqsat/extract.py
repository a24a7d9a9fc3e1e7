"""The cost model and a DAG-aware extractor over a frozen e-graph.

The cost of a node estimates the time to compute it: flops (a per-op table times the element
count) plus memory traffic for values that must be materialized; an elementwise op will fuse
into its consumer, so it pays no traffic. Shared work counts once: the cost of a choice is the
sum over the *set* of classes it needs (greedy DAG extraction), not over a tree, which would
count the forward pass once per gradient use and pick wrong.
"""

from __future__ import annotations

import math
from typing import Any

from eqsat.graph import Type, Variable, toposort
from eqsat.ops import OPS
from eqsat.terms import ENode, FrozenGraph, op_of

NOMINAL_DIM = 1000  # a dimension unknown at compile time is priced as this long
MEMORY = 2.0  # cost of writing and reading back one materialized element
VIEW = 0.1  # reshapes, transposes, shapes: no data moves
CANCELLATION = 20.0  # per element, on a form that loses digits where a stable twin does not

# Flops per output element. Stable forms must win on cost alone, even where the unstable form's
# inner value is computed anyway (shared with a gradient), so a fused primitive is priced below
# the last op of the form it replaces: log1p < log, -softplus(-.) (1 + 7 + 1) < log(sigmoid .).
FLOPS: dict[str, float] = {
    **dict.fromkeys(
        ["add", "sub", "mul", "neg", "abs", "maximum", "minimum", "lt", "gt", "le", "ge", "eq",
         "neq", "and_", "or_", "xor", "invert", "switch", "cast", "sqr", "sgn", "floor", "ceil",
         "round"],
        1.0,
    ),
    **dict.fromkeys(["true_div", "int_div", "mod", "sqrt"], 4.0),
    **dict.fromkeys(["exp", "log", "log2", "log10"], 10.0),
    **dict.fromkeys(["log1p", "expm1"], 9.0),
    **dict.fromkeys(["sin", "cos", "tan", "tanh"], 12.0),
    "sigmoid": 9.0,
    "softplus": 7.0,
    "erf": 15.0,
    "pow": 20.0,
    **dict.fromkeys(["sum", "prod", "max", "min", "argmax", "argmin"], 1.0),  # per input element
    "dot": 2.0,  # per multiply-add
    # gemm/gemv: the dot's multiply-adds, plus this per output element for alpha*, beta*c and
    # the sum, fused into one pass: below the mul + add (1.0 each) they replace
    **dict.fromkeys(["gemm", "gemv"], 0.5),
    **dict.fromkeys(["softmax", "log_softmax"], 25.0),
    **dict.fromkeys(["alloc", "arange", "concatenate", "inc_subtensor",
                     "advanced_inc_subtensor", "advanced_subtensor"], 1.0),
    **dict.fromkeys(["shape", "shape_i", "dimshuffle", "reshape", "make_vector", "subtensor"], 0.0),
}  # fmt: skip


def type_numel(t: Type) -> float:
    """Element count of a type, unknown dimensions priced at NOMINAL_DIM."""
    return float(math.prod(NOMINAL_DIM if s is None else s for s in t.shape))


class CostModel:
    """Per-node costs for one frozen e-graph (element counts from types, or children)."""

    def __init__(self, fg: FrozenGraph, hints: dict[Any, float] | None = None) -> None:
        self.fg = fg
        numel: dict[Any, float] = dict(hints or {})
        for cls in fg.classes:
            if cls not in numel and cls in fg.types:
                numel[cls] = type_numel(fg.types[cls])
        for cls, shape in _derived_shapes(fg).items():  # products made by rules
            numel.setdefault(cls, float(math.prod(shape)))
        # Classes made by rules may lack a type: take their largest child's size (the
        # elementwise case), a few passes deep, else the nominal size.
        for _ in range(8):
            todo = [c for c in fg.classes if c not in numel]
            for cls in todo:
                sizes = [numel[c] for n in fg.classes[cls] for c in n.children if c in numel]
                if sizes:
                    numel[cls] = max(sizes)
            if not todo:
                break
        self.numel = numel

    def size(self, cls: Any) -> float:
        """Element count of a class."""
        return self.numel.get(cls, float(NOMINAL_DIM))

    def node_cost(self, cls: Any, node: ENode) -> float:
        if node.ctor in ("Leaf", "LitN"):
            return 0.0
        op, _ = op_of(node)
        cost = op_cost(op, self.size(cls), [self.size(c) for c in node.children])
        return cost + CANCELLATION * self.size(cls) * self._cancels(node)

    def _cancels(self, node: ENode) -> bool:
        """1 - sigmoid(x): cancels for x > ~20, where sigmoid(-x) (in the same class, by a
        stability rule) is exact. The stable form is dearer in flops once sigmoid(x) is
        computed anyway (a gradient shares it), so the cancellation carries a price."""
        if node.ctor != "Sub":
            return False
        one, s = (self.fg.classes[c] for c in node.children)
        return any(n.ctor == "LitN" and n.args[0] == 1.0 for n in one) and any(
            n.ctor == "Sigmoid" for n in s
        )


_SHAPED = {"Dot", "Dimshuffle", "Gemm", "Gemv"}


def _derived_shapes(fg: FrozenGraph, passes: int = 8) -> dict[Any, tuple[float, ...]]:
    """Shapes of untyped classes (made by rules) that hold a dot, transpose, gemm or gemv
    of classes of known shape, unknown dimensions at NOMINAL_DIM: a reassociated matrix
    chain's intermediate product gets its own size, not its largest operand's."""
    shapes = {cls: tuple(NOMINAL_DIM if s is None else s for s in t.shape)
              for cls, t in fg.types.items()}  # fmt: skip
    derived: dict[Any, tuple[float, ...]] = {}
    for _ in range(passes):
        changed = False
        for cls, nodes in fg.classes.items():
            if cls in shapes:
                continue
            for node in nodes:
                shape = _node_shape(node, shapes)
                if shape is not None:
                    shapes[cls] = derived[cls] = shape
                    changed = True
                    break
        if not changed:
            break
    return derived


def _node_shape(node: ENode, shapes: dict) -> tuple | None:
    if node.ctor not in _SHAPED or any(c not in shapes for c in node.children):
        return None
    op, params = op_of(node)
    kids = [shapes[c] for c in node.children]
    if op == "dot":
        a, b = kids
        return a[:-1] + b[1:] if a and b else None
    if op == "dimshuffle":
        x = kids[0]
        order = params["new_order"]
        if any(o != "x" and o >= len(x) for o in order):
            return None
        return tuple(1 if o == "x" else x[o] for o in order)
    a = kids[2][::-1] if params.get("trans_a") else kids[2]
    b = kids[3][::-1] if params.get("trans_b") else kids[3]
    return a[:-1] + b[1:] if a and b else None


def op_cost(op: str, out: float, inputs: list[float]) -> float:
    """Estimated time of one op from its output's and inputs' element counts."""
    kind = OPS[op].kind
    if kind == "elemwise":
        return FLOPS[op] * out
    if kind == "reduce":
        return FLOPS[op] * inputs[0] + MEMORY * out
    if op == "dot":
        return FLOPS[op] * math.sqrt(inputs[0] * inputs[1] * out) + MEMORY * out
    if op in ("gemm", "gemv"):  # inputs: c, alpha, a, b (or x), beta
        product = FLOPS["dot"] * math.sqrt(inputs[2] * inputs[3] * out)
        return product + (FLOPS[op] + MEMORY) * out
    if FLOPS[op] == 0.0:
        return VIEW
    return FLOPS[op] * out + MEMORY * out


def graph_cost(outputs: list[Variable], hints: dict[int, float] | None = None) -> float:
    """Cost of computing `outputs` as they stand, each node once (the optimizer's baseline).
    `hints` maps id(leaf) to a known element count."""
    hints = hints or {}

    def size(v: Variable) -> float:
        return hints.get(id(v), type_numel(v.type))

    return sum(op_cost(n.op, size(n.out), [size(i) for i in n.inputs]) for n in toposort(outputs))


def _greedy(fg: FrozenGraph, costs: dict, max_passes: int = 50) -> dict[Any, ENode]:
    """Greedy DAG extraction: for each class the node whose needed set of classes (itself and
    everything below it) costs least, shared classes counted once."""
    best: dict[Any, tuple[float, ENode, dict]] = {}
    for _ in range(max_passes):
        changed = False
        for cls, nodes in fg.classes.items():
            for node, own in zip(nodes, costs[cls], strict=True):
                if any(c not in best for c in node.children):
                    continue
                needed: dict[Any, float] = {}
                for c in node.children:
                    needed.update(best[c][2])
                if cls in needed:  # the node would depend on its own class
                    continue
                needed[cls] = own
                total = sum(needed.values())
                if cls not in best or total < best[cls][0] - 1e-9:
                    best[cls] = (total, node, needed)
                    changed = True
        if not changed:
            break
    return {cls: b[1] for cls, b in best.items()}


def dag_cost(fg: FrozenGraph, choice: dict, cost_of: Any) -> float:
    """Total cost of the classes the roots need under `choice`, each once; inf for a cycle or
    a class without a choice."""
    state: dict[Any, int] = {}  # 1: on the path, 2: done
    total = 0.0
    for root in fg.roots:
        stack = [(root, False)]
        while stack:
            cls, leaving = stack.pop()
            if leaving:
                state[cls] = 2
                continue
            if state.get(cls) == 2:
                continue
            if state.get(cls) == 1 or cls not in choice:
                return math.inf
            state[cls] = 1
            node = choice[cls]
            total += cost_of(cls, node)
            stack.append((cls, True))
            stack.extend((c, False) for c in node.children if state.get(c) != 2)
    return total


def extract(fg: FrozenGraph, model: CostModel, work: int = 200_000) -> tuple[dict, float]:
    """The cheapest choice found: greedy DAG extraction and the graph as it came in compete,
    then the winner is improved one class at a time while the work budget lasts, so the
    result never costs more than the input graph. Returns the choice and its cost."""
    costs = {cls: [model.node_cost(cls, n) for n in nodes] for cls, nodes in fg.classes.items()}
    own = {(cls, n): c for cls, nodes in fg.classes.items()
           for n, c in zip(nodes, costs[cls], strict=True)}  # fmt: skip

    def cost_of(cls: Any, node: ENode) -> float:
        return own[(cls, node)]

    greedy = _greedy(fg, costs)
    candidates = [greedy, {**greedy, **fg.original}]
    scored = [(dag_cost(fg, c, cost_of), n, c) for n, c in enumerate(candidates)]
    best_cost, _, best = min(scored, key=lambda t: t[:2])
    if math.isinf(best_cost):
        raise RuntimeError("extraction found no acyclic choice for the outputs")
    n_classes = max(len(fg.classes), 1)
    for cls, nodes in fg.classes.items():
        if len(nodes) < 2:
            continue
        for node in nodes:
            if work <= 0:
                return best, best_cost
            work -= n_classes
            if node is best.get(cls):
                continue
            trial = {**best, cls: node}
            c = dag_cost(fg, trial, cost_of)
            if c < best_cost - 1e-9:
                best, best_cost = trial, c
    return best, best_cost
