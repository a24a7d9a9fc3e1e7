"""The kernel plan: the extracted graph split into the steps a compiled backend runs.

- `Kernel`: a maximal group of elementwise nodes over one iteration space, fused into one loop,
  optionally ending in a reduction (sum, prod, max, min over any axes). It reads each input
  once and writes only the values needed outside it (several, when they are): the
  intermediates inside it are never allocated.
- `Call` "blas": a contraction (dot, gemm, gemv) on the BLAS NumPy ships.
- `Call` "host": any other op, through its NumPy implementation; dimshuffle, reshape of
  contiguous data and basic slicing give views there, not copies. A dimshuffle whose only
  reader is a kernel is not a step at all: the kernel reads its input with other strides.

The plan knows nothing of C: which nodes a backend can compile is the `fusable` predicate it
passes, so the CUDA backend can share the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eqsat.graph import Apply, Constant, Variable, toposort

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
    def views(self) -> dict[int, Apply]:
        """The dimshuffles read as restrided inputs, by the id of their output."""
        return {id(n.out): n for n in self.nodes if n.op in VIEWS}

    @property
    def computed(self) -> list[Apply]:
        """The nodes the loop evaluates (views are how it reads, not what it computes)."""
        return [n for n in self.nodes if n.op not in VIEWS]

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
        """Every fused loop, those inside other steps (a row pass's) included."""
        return [k for s in self.steps for k in _kernels(s)]


def _kernels(step: Kernel | Call) -> list[Kernel]:
    return [step] if isinstance(step, Kernel) else [] if isinstance(step, Call) else step.kernels


def _clients(nodes: list[Apply]) -> dict[int, list[Apply]]:
    out: dict[int, list[Apply]] = {}
    for node in nodes:
        for i in node.inputs:
            out.setdefault(id(i), []).append(node)
    return out


def _joins(var: Variable, users: list[Apply], space: tuple[bool, ...], wanted: set[int]) -> bool:
    """Whether the node making `var` can be computed inside a loop over `space`: it runs over
    the same iteration space, or it is a scalar the loop recomputes (the C compiler hoists it:
    kernels are compiled without errno, so math functions are pure) and writes nowhere. A
    value a view reads stays outside: a view reads other elements than the loop's own."""
    bc = var.type.broadcastable
    if any(u.op in VIEWS for u in users):
        return False
    return len(bc) == len(space) and (bc == space or (all(bc) and id(var) not in wanted))


VIEWS = ("dimshuffle",)  # read by a kernel as its input's data with other strides


def make_plan(
    outputs: Sequence[Variable],
    fusable: Callable[[Apply], bool],
    same_shape: Callable[[Variable, Variable], bool] | None = None,
) -> Plan:
    """The steps that compute `outputs`, in an order that respects their dependencies.
    `same_shape(a, b)`, when given, says two values provably have one shape: loops over such
    values merge into one kernel (several outputs) when no other step sits between them."""
    order = toposort(outputs)
    index = {id(n): k for k, n in enumerate(order)}
    clients = _clients(order)
    wanted = {id(o) for o in outputs}
    group_of: dict[int, int] = {}  # node id -> group number
    groups: list[list[Apply]] = []
    spaces: list[tuple[bool, ...]] = []

    def start(node: Apply, space: tuple[bool, ...]) -> None:
        group_of[id(node)] = len(groups)
        groups.append([node])
        spaces.append(space)

    for node in reversed(order):  # consumers first: a producer joins its consumers' loop
        users = clients.get(id(node.out), [])
        homes = {group_of.get(id(u)) for u in users}
        home = homes.pop() if len(homes) == 1 and users else None
        if node.op in VIEWS:  # (a view of a view stays a host step: one restriding each)
            chained = any(u.op in VIEWS for u in users)
            if home is not None and id(node.out) not in wanted and not chained:
                group_of[id(node)] = home  # the kernel reads the view's input, restrided
                groups[home].append(node)
            continue
        if not fusable(node):
            continue
        if node.op in REDUCTIONS:
            start(node, node.inputs[0].type.broadcastable)
        elif home is not None and _joins(node.out, users, spaces[home], wanted):
            group_of[id(node)] = home
            groups[home].append(node)
        else:
            start(node, node.out.type.broadcastable)

    kernels = [
        _kernel(f"k{g}", sorted(nodes, key=lambda n: index[id(n)]), spaces[g], clients, wanted)
        for g, nodes in enumerate(groups)
    ]
    calls = [
        Call("blas" if n.op in CONTRACTIONS else "host", n) for n in order if id(n) not in group_of
    ]
    steps: list[Kernel | Call] = [*kernels, *calls]
    if same_shape is not None:
        steps = _merge_siblings(steps, same_shape, wanted)
    steps = _schedule(steps, index)
    for n, k in enumerate(s for s in steps if isinstance(s, Kernel)):
        k.name = f"k{n}"
    return Plan(steps, list(outputs), _last_use(steps, outputs))


def _space_var(k: Kernel) -> Variable:
    """A value whose shape is the kernel's iteration space."""
    return k.reduce.inputs[0] if k.reduce is not None else k.nodes[-1].out


def _produced(step: Kernel | Call) -> list[Variable]:
    # (a step of another kind, such as a row pass, lists its own outputs and inputs)
    return [step.node.out] if isinstance(step, Call) else step.outputs


def _deps(steps: list[Kernel | Call]) -> list[set[int]]:
    """For each step, the positions of the steps whose values it reads."""
    maker = {id(v): n for n, s in enumerate(steps) for v in _produced(s)}
    return [{maker[id(v)] for v in reads(s) if id(v) in maker} for s in steps]


def _reaches(deps: list[set[int]], a: int, b: int) -> bool:
    """Whether step b depends on step a through at least one other step."""
    todo = [d for d in deps[b] if d != a]
    seen = set(todo)
    while todo:
        n = todo.pop()
        if a in deps[n]:
            return True
        for d in deps[n] - seen:
            seen.add(d)
            todo.append(d)
    return False


def _merge_siblings(steps, same_shape, wanted: set[int]) -> list[Kernel | Call]:
    """Kernels over one iteration space merged into one loop (with each one's outputs), when
    neither needs a value the other makes through another step, a reduction's result, or a
    view of a value the other makes (a view reads other elements than the loop's own)."""
    merged = True
    while merged:
        merged = False
        kernels = [n for n, s in enumerate(steps) if isinstance(s, Kernel)]
        deps = _deps(steps)
        for i, a in enumerate(kernels):
            for b in kernels[i + 1 :]:
                ka, kb = steps[a], steps[b]
                if ka.broadcastable != kb.broadcastable or (ka.reduce and kb.reduce):
                    continue
                if not same_shape(_space_var(ka), _space_var(kb)):
                    continue
                if _reads_inside(ka, kb) or _reads_inside(kb, ka):
                    continue
                if _reaches(deps, a, b) or _reaches(deps, b, a):
                    continue
                others = [v for n, s in enumerate(steps) if n not in (a, b) for v in reads(s)]
                steps[a] = _union(ka, kb, wanted | {id(v) for v in others})
                del steps[b]
                merged = True
                break
            if merged:
                break
    return steps


def _reads_inside(reader: Kernel, maker: Kernel) -> bool:
    """Whether reader needs maker's reduction result, or a view of a value maker makes."""
    red = maker.reduce
    if red is not None and any(v is red.out for v in reader.inputs):
        return True
    made = {id(o) for o in maker.outputs}
    return any(id(d.inputs[0]) in made for d in reader.views.values())


def _union(a: Kernel, b: Kernel, needed: set[int]) -> Kernel:
    """One loop computing both kernels (a reduction, if either has one, last); a value one
    makes and the other reads is computed in the loop, and written only if `needed`."""
    nodes = a.nodes + b.nodes
    made = {id(n.out) for n in nodes if n.op not in VIEWS}
    inputs = {id(v): v for v in a.inputs + b.inputs if id(v) not in made}
    red = a.reduce or b.reduce
    outputs = [
        o for o in a.outputs + b.outputs
        if id(o) in needed or (red is not None and o is red.out)
    ]  # fmt: skip
    return Kernel(a.name, _topological(nodes), a.broadcastable, list(inputs.values()), outputs)


def _topological(nodes: list[Apply]) -> list[Apply]:
    """nodes in an order where each comes after those of its inputs among them."""
    made = {id(n.out): n for n in nodes}
    out: list[Apply] = []
    done: set[int] = set()

    def visit(n: Apply) -> None:
        if id(n) in done:
            return
        done.add(id(n))
        for i in n.inputs:
            if id(i) in made:
                visit(made[id(i)])
        out.append(n)

    red = next((n for n in nodes if n.op in REDUCTIONS), None)
    for n in nodes:
        if n is not red:
            visit(n)
    if red is not None:
        visit(red)
    return out


def _schedule(steps: list[Kernel | Call], index: dict[int, int]) -> list[Kernel | Call]:
    """Steps in dependency order, each as early as the graph's own order allows."""
    deps = _deps(steps)
    first = [min(index[id(n)] for n in _nodes(s)) for s in steps]
    ready = sorted((first[n], n) for n, d in enumerate(deps) if not d)
    users: dict[int, list[int]] = {}
    for n, d in enumerate(deps):
        for m in d:
            users.setdefault(m, []).append(n)
    waiting = [len(d) for d in deps]
    out = []
    while ready:
        _, n = ready.pop(0)
        out.append(steps[n])
        for u in users.get(n, []):
            waiting[u] -= 1
            if waiting[u] == 0:
                ready.append((first[u], u))
                ready.sort()
    assert len(out) == len(steps), "kernel plan has a cycle"
    return out


def _nodes(step: Kernel | Call) -> list[Apply]:
    return [step.node] if isinstance(step, Call) else step.nodes


def _kernel(name, nodes, space, clients, wanted) -> Kernel:
    members = {id(n) for n in nodes}
    inputs: dict[int, Variable] = {}
    outputs = []
    for n in nodes:
        if n.op in VIEWS:
            continue
        for i in n.inputs:
            if i.owner is None or id(i.owner) not in members or i.owner.op in VIEWS:
                inputs.setdefault(id(i), i)
        users = clients.get(id(n.out), [])
        if id(n.out) in wanted or any(id(u) not in members for u in users):
            outputs.append(n.out)
    if nodes[-1].op in REDUCTIONS and nodes[-1].out not in outputs:
        outputs.append(nodes[-1].out)
    return Kernel(name, nodes, space, list(inputs.values()), outputs)


def reads(step: Kernel | Call) -> list[Variable]:
    """Values a step reads from other steps (a kernel's views read their input)."""
    if isinstance(step, Call):
        return list(step.node.inputs)
    if not isinstance(step, Kernel):
        return list(step.inputs)
    views = step.views
    return [views[id(v)].inputs[0] if id(v) in views else v for v in step.inputs]


def _last_use(steps: list[Kernel | Call], outputs: Sequence[Variable]) -> list[list[Variable]]:
    keep = {id(o) for o in outputs}
    seen: set[int] = set()
    free: list[list[Variable]] = []
    for step in reversed(steps):
        dead = []
        for v in reads(step):
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
        if isinstance(s, Call):
            lines.append(f"{s.kind}: {s.node.op}")
        else:  # a kernel, or a step holding one (a row pass)
            ops = " ".join(n.op for n in s.nodes)
            lines.append(f"{s.name}: [{ops}] reads {len(s.inputs)} writes {len(s.outputs)}")
    return "\n".join(lines)
