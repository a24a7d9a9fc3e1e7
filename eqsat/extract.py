"""The cost model and a DAG-aware extractor over a frozen e-graph.

The cost of a node estimates the time to compute it: flops (a per-op table times the element
count) plus memory traffic for values that must be materialized; an elementwise op will fuse
into its consumer, so it pays no traffic. Shared work counts once: the cost of a choice is the
sum over the *set* of classes it needs (greedy DAG extraction), not over a tree, which would
count the forward pass once per gradient use and pick wrong.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

from eqsat.graph import Type, Variable, toposort
from eqsat.ops import OPS
from eqsat.terms import ENode, FrozenGraph, op_name, op_of

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
    "logsumexp": 11.0,  # per input element: as exp + sum, so the log is the saving
    "alloc": 0.5,
    **dict.fromkeys(["arange", "one_hot", "concatenate", "inc_subtensor",
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
        op = op_name(node.ctor)
        cost = op_cost(op, self.size(cls), [self.size(c) for c in node.children])
        return cost + CANCELLATION * self._unstable(cls, node)

    def _unstable(self, cls: Any, node: ENode) -> float:
        """How many elements a form puts at risk where a stable twin in the same class (made
        by a stability rule) would not: 1 - sigmoid(x) cancels for x > ~20 (sigmoid(-x) is
        exact); log of a softmax or sigmoid that underflowed is -inf (log_softmax,
        -softplus(-x) are finite); dividing by one is 0/0; log of, or dividing by, a sum of
        exponentials overflows (logsumexp does not: all of x is at risk, not just the sum).
        The stable form is dearer in flops once the inner value is computed anyway (a gradient
        shares it), so the unstable one carries a price per element at risk."""
        kids = [self.fg.classes[c] for c in node.children]
        if node.ctor == "Sub":
            one, s = kids
            if any(n.ctor == "LitN" and n.args[0] == 1.0 for n in one) and any(
                n.ctor == "Sigmoid" for n in s
            ):
                return self.size(cls)
        elif node.ctor in ("Log", "TrueDiv"):
            risky = ("Softmax", "Sigmoid") if node.ctor == "Log" else ("Softmax", "Sigmoid", "Exp")
            for n in kids[-1]:
                if n.ctor in risky:
                    return self.size(cls)
                if n.ctor == "Sum" and any(m.ctor == "Exp" for m in self.fg.classes[n.children[0]]):
                    return self.size(n.children[0])
        return 0.0


def _derived_shapes(fg: FrozenGraph, passes: int = 8) -> dict[Any, tuple[float, ...]]:
    """Shapes of untyped classes (made by rules), from a node whose operands' shapes are
    known: a literal, an elementwise op (broadcast), a dot, transpose, gemm or gemv, unknown
    dimensions at NOMINAL_DIM. A reassociated matrix chain's intermediate product gets its own
    size, and a gemv its vector's, not the size of their largest operand."""
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
    if node.ctor == "LitN":
        return (1,) * node.args[2]
    op = op_name(node.ctor)
    if op is None:
        return None
    blas = op in ("gemm", "gemv")
    used = node.children[2:4] if blas else node.children  # gemm/gemv: from op(a), op(b)
    if any(c not in shapes for c in used):
        return None
    kids = [shapes[c] for c in used]
    if OPS[op].kind == "elemwise":  # broadcast: ranks padded on the left, 1s yield
        rank = max(len(k) for k in kids)
        cols = zip(*[(1,) * (rank - len(k)) + k for k in kids], strict=True)
        return tuple(max((d for d in col if d != 1), default=1) for col in cols)
    if op == "dot":
        a, b = kids
        return a[:-1] + b[1:] if a and b else None
    if op == "dimshuffle":
        x, order = kids[0], op_of(node)[1]["new_order"]
        if any(o != "x" and o >= len(x) for o in order):
            return None
        return tuple(1 if o == "x" else x[o] for o in order)
    if blas:
        params = op_of(node)[1]
        a = kids[0][::-1] if params.get("trans_a") else kids[0]
        b = kids[1][::-1] if params.get("trans_b") else kids[1]
        return a[:-1] + b[1:] if a and b else None
    return None


def op_cost(op: str, out: float, inputs: list[float]) -> float:
    """Estimated time of one op from its output's and inputs' element counts."""
    kind = OPS[op].kind
    if kind == "elemwise" or op == "alloc":  # an alloc is a broadcast: it fuses like one
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


def _better(a: float, b: float) -> bool:
    """a is lower than b by more than rounding: sums taken in different orders must not
    decide, so equal-cost alternatives keep the first one found."""
    return a < b - 1e-9 - 1e-12 * abs(b) if b < math.inf else a < b


class _Numbered:
    """The e-graph with classes and nodes numbered (k, v), so that the search loops index
    lists instead of hashing e-nodes; nodes are numbered class by class in fg.classes order.
    A child or root without nodes of its own gets a number and no members: nothing can use it."""

    def __init__(self, fg: FrozenGraph, model: CostModel) -> None:
        index = {cls: k for k, cls in enumerate(fg.classes)}
        for nodes in fg.classes.values():
            for node in nodes:
                for c in node.children:
                    index.setdefault(c, len(index))
        for r in fg.roots:
            index.setdefault(r, len(index))
        self.ids: list[Any] = list(index)  # k -> class id
        self.index = index
        self.enode: list[ENode] = []
        self.home: list[int] = []  # node -> its class
        self.kids: list[tuple[int, ...]] = []  # node -> child classes
        self.own: list[float] = []  # node -> its cost alone
        self.members: list[list[int]] = [[] for _ in self.ids]  # class -> nodes
        self.parents: list[list[int]] = [[] for _ in self.ids]  # class -> nodes using it
        for cls, nodes in fg.classes.items():
            for node in nodes:
                self._add(index[cls], node, model.node_cost(cls, node))
        self.roots = [index[r] for r in fg.roots]

    def _add(self, k: int, node: ENode, cost: float) -> None:
        v = len(self.enode)
        kids = tuple(self.index[c] for c in node.children)
        self.enode.append(node)
        self.home.append(k)
        self.kids.append(kids)
        self.own.append(cost)
        self.members[k].append(v)
        for c in dict.fromkeys(kids):
            self.parents[c].append(v)

    def node_of(self, k: int, node: ENode) -> int:
        return next(v for v in self.members[k] if self.enode[v] == node)

    def named(self, choice: list[int]) -> dict[Any, ENode]:
        return {self.ids[k]: self.enode[v] for k, v in enumerate(choice) if v >= 0}

    def reached(self, choice: list[int]) -> list[int] | None:
        return _postorder(self.roots, lambda k: self.kids[choice[k]] if choice[k] >= 0 else None)

    def cost(self, choice: list[int]) -> float:
        """dag_cost of a numbered choice: the same walk, so the same sum."""
        order = self.reached(choice)
        return math.inf if order is None else sum(self.own[choice[k]] for k in order)


def _postorder(roots: list, kids_of: Callable[[Any], tuple | None]) -> list | None:
    """The classes reachable from `roots`, children first; None on a cycle or on a class
    without a choice (kids_of gives None)."""
    state: dict[Any, int] = {}  # 1: on the path, 2: done
    order = []
    for root in roots:
        stack = [(root, False)]
        while stack:
            cls, leaving = stack.pop()
            if leaving:
                state[cls] = 2
                order.append(cls)
                continue
            seen = state.get(cls)
            if seen == 2:
                continue
            kids = kids_of(cls) if seen is None else None
            if kids is None:
                return None
            state[cls] = 1
            stack.append((cls, True))
            stack.extend((c, False) for c in kids if state.get(c) != 2)
    return order


def dag_cost(fg: FrozenGraph, choice: dict, cost_of: Any) -> float:
    """Total cost of the classes the roots need under `choice`, each once; inf for a cycle or
    a class without a choice."""
    order = _postorder(fg.roots, lambda c: choice[c].children if c in choice else None)
    return math.inf if order is None else sum(cost_of(c, choice[c]) for c in order)


_BITS = [tuple(b for b in range(8) if byte >> b & 1) for byte in range(256)]  # set bits of a byte


def _weigh(bits: int, weight: list[float]) -> float:
    """The sum of weight[k] over the set bits k of `bits`."""
    total = 0.0
    if bits.bit_count() < 16:  # few bits: visit them alone
        while bits:
            low = bits & -bits
            total += weight[low.bit_length() - 1]
            bits ^= low
        return total
    for j, byte in enumerate(bits.to_bytes((bits.bit_length() + 7) // 8, "little")):
        if byte:
            base = 8 * j
            for b in _BITS[byte]:
                total += weight[base + b]
    return total


def _ready_order(g: _Numbered) -> list[int]:
    """The nodes in the order they become usable, bottom-up: a node once each child class has a
    usable node. Nodes never usable (all their ways down are cyclic) are left out."""
    waiting = [len(set(kids)) for kids in g.kids]
    ready = [False] * len(g.ids)
    order = [v for v, w in enumerate(waiting) if w == 0]
    for v in order:  # grows while it is walked
        k = g.home[v]
        if ready[k]:
            continue
        ready[k] = True
        for u in g.parents[k]:
            waiting[u] -= 1
            if waiting[u] == 0:
                order.append(u)
    return order


def _greedy(g: _Numbered, max_passes: int = 50) -> list[int]:
    """Greedy DAG extraction: for each class the node whose needed set of classes (itself and
    everything below it, a bitset) costs least, shared classes counted once. Nodes are priced
    bottom-up from a worklist, again only when a child's choice has changed: on an acyclic
    e-graph each node is priced once. At most max_passes prices per node, on average."""
    n = len(g.ids)
    best, total, needed = [-1] * n, [math.inf] * n, [0] * n
    weight = [0.0] * n  # own cost of each class's best node: its share of a needed set
    order = _ready_order(g)
    rank = [-1] * len(g.enode)  # position in `order`, -1 for a node never usable
    for r, v in enumerate(order):
        rank[v] = r
    queue = list(range(len(order)))  # ranks in `order`, a heap
    queued = bytearray(b"\x01") * len(order)
    for _ in range(max_passes * len(order)):
        if not queue:
            break
        r = heapq.heappop(queue)
        queued[r] = 0
        v = order[r]
        k = g.home[v]
        union = _union(g.kids[v], total, needed, weight)
        if union is None or union[0] >> k & 1:  # a child without a choice, or a cycle
            continue
        cost = union[1] + g.own[v]
        if _better(cost, total[k]):
            best[k], total[k], needed[k], weight[k] = v, cost, union[0] | 1 << k, g.own[v]
            for u in g.parents[k]:
                r = rank[u]
                if r >= 0 and not queued[r]:
                    queued[r] = 1
                    heapq.heappush(queue, r)
    return best


def _union(
    kids: tuple[int, ...], total: list[float], needed: list[int], weight: list[float]
) -> tuple[int, float] | None:
    """The union of the children's needed sets and its cost; None if a child has none yet.
    The dearest child's total is reused, so only what the others add is summed."""
    if not kids:
        return 0, 0.0
    top = max(kids, key=total.__getitem__)
    if total[top] == math.inf:
        return None
    union = needed[top]
    for c in kids:
        union |= needed[c]
    extra = union ^ needed[top]
    return union, total[top] + (_weigh(extra, weight) if extra else 0.0)


class _Climber:
    """Hill climbing from an acyclic choice, one class's node at a time. Reference counts
    (edges from reached classes, plus roots) say which classes the roots reach, so a trial
    prices only the classes it adds or drops instead of walking the whole graph. A height
    per reached class, above each of its children's, prunes the search for a cycle, which
    only a trial that would lower the cost needs."""

    def __init__(self, g: _Numbered, choice: list[int]) -> None:
        self.g, self.choice = g, choice
        self.refs = [0] * len(g.ids)
        self.height = [0] * len(g.ids)
        self.visits = 0  # classes visited, the unit of the work budget
        order = g.reached(choice)
        assert order is not None, "the climber starts from an acyclic choice"
        for k in g.roots:
            self.refs[k] += 1
        for k in order:
            kids = g.kids[choice[k]]
            for c in kids:
                self.refs[c] += 1
            self.height[k] = 1 + max((self.height[c] for c in kids), default=-1)
        self.cost = sum(g.own[choice[k]] for k in order)
        self.visits += len(order)

    def try_node(self, k: int, v: int) -> bool:
        """Switch the reached class k to node v if that lowers the cost and keeps the choice
        acyclic. The trial is priced first (counts restored after), then checked."""
        old, refs = self.choice[k], self.refs
        saved: dict[int, int] = {}
        delta = self._switch(k, old, v, saved)
        for c, r in saved.items():
            refs[c] = r
        self.choice[k] = old
        if not _better(self.cost + delta, self.cost) or not self._acyclic_with(k, v):
            return False
        saved.clear()
        self.cost += self._switch(k, old, v, saved)
        self._place([c for c, r in saved.items() if r == 0 and refs[c]], k)
        return True

    def _switch(self, k: int, old: int, new: int, saved: dict[int, int]) -> float:
        """Choose `new` for the reached class k instead of `old`; returns the change in cost.
        Edges are added before they are dropped, so classes both nodes need stay counted."""
        self.choice[k] = new
        g = self.g
        added = self._count(g.kids[new], 1, saved)
        return g.own[new] - g.own[old] + added - self._count(g.kids[old], -1, saved)

    def _count(self, kids: tuple[int, ...], step: int, saved: dict[int, int]) -> float:
        """Add `step` to the counts of `kids`, following classes that become reached (+1) or
        unreached (-1); returns the cost of those classes. `saved` gets each touched class's
        count from before. Terminates on a cyclic trial too: a class is followed only when
        its count crosses zero, once per call."""
        g, choice, refs = self.g, self.choice, self.refs
        edge = 1 if step > 0 else 0  # the count of a class this edge reaches first
        cost = 0.0
        stack = list(kids)
        visits = len(stack)
        while stack:
            c = stack.pop()
            if c not in saved:
                saved[c] = refs[c]
            refs[c] += step
            if refs[c] == edge:
                w = choice[c]
                if w < 0:  # reaches a class without a choice: no trial may
                    cost = math.inf
                    continue
                cost += g.own[w]
                stack.extend(g.kids[w])
                visits += len(g.kids[w])
        self.visits += visits
        return cost

    def _acyclic_with(self, k: int, v: int) -> bool:
        """Whether node v for class k leaves every class it reaches chosen and acyclic: no path
        from v's children back to k (a reached class no higher than k has none) and no cycle
        among the classes it newly reaches."""
        g, choice, refs, height = self.g, self.choice, self.refs, self.height
        limit = height[k]
        state: dict[int, int] = {}  # 1: on the path, 2: done
        stack = [(c, False) for c in g.kids[v]]
        visits = 0
        while stack:
            c, leaving = stack.pop()
            visits += 1
            if leaving:
                state[c] = 2
                continue
            if c == k or state.get(c) == 1 or choice[c] < 0:
                self.visits += visits
                return False
            if state.get(c) == 2 or (refs[c] and height[c] <= limit):
                continue
            state[c] = 1
            stack.append((c, True))
            stack.extend((d, False) for d in g.kids[choice[c]])
        self.visits += visits
        return True

    def _place(self, fresh: list[int], k: int) -> None:
        """Heights after k's switch: for the newly reached classes (their reached parents are
        k and each other), then k and its reached ancestors raised where they no longer stand
        above their children."""
        g, choice, height = self.g, self.choice, self.height
        todo = set(fresh)
        for start in fresh:
            stack = [(start, False)]
            while stack:
                c, leaving = stack.pop()
                kids = g.kids[choice[c]]
                if leaving:
                    height[c] = 1 + max((height[d] for d in kids), default=-1)
                elif c in todo:  # in a DAG, a class met again is done
                    todo.discard(c)
                    stack.append((c, True))
                    stack.extend((d, False) for d in kids if d in todo)
        self.visits += len(fresh)
        self._raise(k, 1 + max((height[d] for d in g.kids[choice[k]]), default=-1))

    def _raise(self, k: int, h: int) -> None:
        g, choice, refs, height = self.g, self.choice, self.refs, self.height
        stack = [(k, h)]
        while stack:
            c, h = stack.pop()
            if height[c] >= h:
                continue
            height[c] = h
            self.visits += 1
            for u in g.parents[c]:
                p = g.home[u]
                if choice[p] == u and refs[p] and height[p] <= h:
                    stack.append((p, h + 1))


def _climb(g: _Numbered, choice: list[int], work: int) -> _Climber:
    """First-improvement passes over the classes the roots reach, in fg.classes order, until
    a pass improves nothing or `work` class visits are spent."""
    climber = _Climber(g, choice)
    choosy = [k for k, nodes in enumerate(g.members) if len(nodes) > 1]
    improved = True
    while improved:
        improved = False
        for k in choosy:
            for v in g.members[k]:
                if climber.visits > work:
                    return climber
                # an unreached class's node changes no cost; it may be reached later
                if climber.refs[k] and v != climber.choice[k] and climber.try_node(k, v):
                    improved = True
    return climber


def _inserted(g: _Numbered, fg: FrozenGraph, greedy: list[int]) -> list[int]:
    """The graph as it came in, greedy's choice where a class has no inserted node, and
    acyclic whatever fg.original holds: in its order (first insertion, children first), a
    class keeps its inserted node only if that node's children all come earlier, else takes
    its first node that does. freeze records each class's earliest inserted node, which
    passes; a later one (the earliest not found) may not: Mul(x, 1) merged into x's class."""
    out = list(greedy)
    placed: set[int] = set()
    for cls, node in fg.original.items():
        k = g.index[cls]
        inserted = g.node_of(k, node)
        fits = [v for v in (inserted, *g.members[k]) if placed.issuperset(g.kids[v])]
        out[k] = fits[0] if fits else inserted
        placed.add(k)
    return out


def extract(fg: FrozenGraph, model: CostModel, work: int = 200_000) -> tuple[dict, float]:
    """The cheapest choice found: greedy DAG extraction and the graph as it came in are each
    improved one class at a time while their share of the work budget (class visits) lasts,
    and the cheaper wins, so the result never costs more than the input graph. Returns the
    choice and its cost."""
    g = _Numbered(fg, model)
    greedy = _greedy(g)
    starts = [c for c in (greedy, _inserted(g, fg, greedy)) if not math.isinf(g.cost(c))]
    starts = list(dict.fromkeys(map(tuple, starts)))  # once each, greedy first
    if not starts:
        raise RuntimeError("extraction found no acyclic choice for the outputs")
    # Climbing both pays: they often end in different local optima.
    ends = [_climb(g, list(c), work // len(starts)).choice for c in starts]
    scored = [(g.cost(c), n, c) for n, c in enumerate(ends)]
    cost, _, choice = min(scored, key=lambda t: t[:2])
    return g.named(choice), cost  # exact: g.cost walks as dag_cost does
