"""The kernel plan: the extracted graph split into the steps a compiled backend runs.

- `Kernel`: a maximal group of elementwise nodes over one iteration space, fused into one loop,
  optionally ending in a reduction (sum, prod, max, min over any axes). It reads each input
  once and writes only the values needed outside it (several, when they are): the
  intermediates inside it are never allocated.
- `Call` "blas": a contraction (dot, gemm, gemv) on the BLAS NumPy ships.
- `Call` "host": any other op, through its NumPy implementation; dimshuffle, reshape of
  contiguous data and basic slicing give views there, not copies.

The plan knows nothing of C: which nodes a backend can compile is the `fusable` predicate it
passes, so the CUDA backend can share the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eqsat.graph import Apply, Constant, Variable, toposort
from eqsat.ops import OPS

REDUCTIONS = ("sum", "prod", "max", "min")
CONTRACTIONS = ("dot", "gemm", "gemv")


@dataclass
class Kernel:
    """One fused loop: `nodes` in execution order (a reduction, if any, last)."""

    name: str
    nodes: list[Apply]
    broadcastable: tuple[bool, ...]  # of the iteration space
    inputs: list[Variable] = field(default_factory=list)  # read, each once
    outputs: list[Variable] = field(default_factory=list)  # written

    @property
    def reduce(self) -> Apply | None:
        last = self.nodes[-1]
        return last if last.op in REDUCTIONS else None

    @property
    def ndim(self) -> int:
        return len(self.broadcastable)


@dataclass
class Call:
    kind: str  # "blas" | "host"
    node: Apply


@dataclass
class Plan:
    steps: list[Kernel | Call]
    outputs: list[Variable]
    last_use: list[list[Variable]]  # values no step after steps[i] reads (free them then)

    @property
    def kernels(self) -> list[Kernel]:
        return [s for s in self.steps if isinstance(s, Kernel)]


def _clients(nodes: list[Apply]) -> dict[int, list[Apply]]:
    out: dict[int, list[Apply]] = {}
    for node in nodes:
        for i in node.inputs:
            out.setdefault(id(i), []).append(node)
    return out


def _joins(var: Variable, space: tuple[bool, ...], wanted: set[int]) -> bool:
    """Whether the node making `var` can be computed inside a loop over `space`: it runs over
    the same iteration space, or it is a scalar the loop recomputes (the C compiler hoists it:
    kernels are compiled without errno, so math functions are pure) and writes nowhere."""
    bc = var.type.broadcastable
    return len(bc) == len(space) and (bc == space or (all(bc) and id(var) not in wanted))


def make_plan(outputs: Sequence[Variable], fusable: Callable[[Apply], bool]) -> Plan:
    """The steps that compute `outputs`, in an order that respects their dependencies."""
    order = toposort(outputs)
    index = {id(n): k for k, n in enumerate(order)}
    clients = _clients(order)
    wanted = {id(o) for o in outputs}
    group_of: dict[int, int] = {}  # node id -> group number
    groups: list[list[Apply]] = []
    spaces: list[tuple[bool, ...]] = []

    for node in reversed(order):  # consumers first: a producer joins its consumers' loop
        if not fusable(node):
            continue
        if node.op in REDUCTIONS:
            group_of[id(node)] = len(groups)
            groups.append([node])
            spaces.append(node.inputs[0].type.broadcastable)
            continue
        users = clients.get(id(node.out), [])
        homes = {group_of.get(id(u)) for u in users}
        if users and len(homes) == 1 and None not in homes:
            (g,) = homes
            if _joins(node.out, spaces[g], wanted):
                group_of[id(node)] = g
                groups[g].append(node)
                continue
        group_of[id(node)] = len(groups)
        groups.append([node])
        spaces.append(node.out.type.broadcastable)

    kernels = [
        _kernel(f"k{g}", sorted(nodes, key=lambda n: index[id(n)]), spaces[g], clients, wanted)
        for g, nodes in enumerate(groups)
    ]
    # A kernel runs when its last node would have: its inputs come from the roots of other
    # groups (a node joins a group only if every user is in it), which come earlier.
    at = {index[id(k.nodes[-1])]: k for k in kernels}
    steps: list[Kernel | Call] = []
    for k, node in enumerate(order):
        if k in at:
            steps.append(at[k])
        elif id(node) not in group_of:
            steps.append(Call("blas" if node.op in CONTRACTIONS else "host", node))
    return Plan(steps, list(outputs), _last_use(steps, outputs))


def _kernel(name, nodes, space, clients, wanted) -> Kernel:
    members = {id(n) for n in nodes}
    inputs: dict[int, Variable] = {}
    outputs = []
    for n in nodes:
        for i in n.inputs:
            if i.owner is None or id(i.owner) not in members:
                inputs.setdefault(id(i), i)
        users = clients.get(id(n.out), [])
        if id(n.out) in wanted or any(id(u) not in members for u in users):
            outputs.append(n.out)
    if nodes[-1].op in REDUCTIONS and nodes[-1].out not in outputs:
        outputs.append(nodes[-1].out)
    return Kernel(name, nodes, space, list(inputs.values()), outputs)


def _reads(step: Kernel | Call) -> list[Variable]:
    return step.inputs if isinstance(step, Kernel) else list(step.node.inputs)


def _last_use(steps: list[Kernel | Call], outputs: Sequence[Variable]) -> list[list[Variable]]:
    keep = {id(o) for o in outputs}
    seen: set[int] = set()
    free: list[list[Variable]] = []
    for step in reversed(steps):
        dead = []
        for v in _reads(step):
            if id(v) not in seen and id(v) not in keep and not isinstance(v, Constant):
                seen.add(id(v))
                if v.owner is not None:  # inputs belong to the caller
                    dead.append(v)
        free.append(dead)
    return free[::-1]


def describe(plan: Plan) -> str:
    """One line per step, for reports and debugging."""
    lines = []
    for s in plan.steps:
        if isinstance(s, Kernel):
            ops = " ".join(n.op for n in s.nodes)
            lines.append(f"{s.name}: [{ops}] reads {len(s.inputs)} writes {len(s.outputs)}")
        else:
            lines.append(f"{s.kind}: {s.node.op}")
    return "\n".join(lines)


def elementwise(node: Apply) -> bool:
    return OPS[node.op].kind == "elemwise"
