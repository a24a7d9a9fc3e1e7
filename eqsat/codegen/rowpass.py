"""Row passes: a matrix-vector product, the elementwise kernel over its result, and the
transposed product of that kernel's output with the same matrix, in one sweep over the matrix.

A training step of a linear model reads its data matrix twice: `s = X w` (forward), then
`g = f(s, y)` elementwise, then `X^T g` (gradient). Done apart, each product streams X from
memory or the last-level cache. A row pass walks X in blocks of rows small enough to stay in
the core's cache: for each block, BLAS's gemv gives that block of `s`, the kernel turns it into
that block of `g` (and its other outputs), and a second gemv adds the block's share of `X^T g`.
X is read from memory once; the products are still BLAS calls, never a hand-written matrix loop.

The planner part is here (which steps can become one pass, and where it goes in the order);
the C part is `eqsat/codegen/c_rowpass.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from eqsat.codegen.plan import Call, Kernel, Plan, _deps, _last_use, reads
from eqsat.graph import Apply, Constant, Variable

FLOATS = ("float32", "float64")


@dataclass
class MatVec:
    """`beta * c + alpha * op(M) v` as a gemv or dot node puts it (c None: no added term)."""

    node: Apply
    matrix: Variable
    vector: Variable
    c: Variable | None
    alpha: float
    beta: float
    trans: bool


@dataclass
class RowPass:
    name: str
    forward: MatVec  # s = op(M) v, trans False
    kernel: Kernel  # reads s, writes the backward product's vector among its outputs
    backward: MatVec  # M^T u, trans True

    @property
    def nodes(self) -> list[Apply]:
        return [self.forward.node, *self.kernel.nodes, self.backward.node]

    @property
    def kernels(self) -> list[Kernel]:
        return [self.kernel]

    @property
    def inputs(self) -> list[Variable]:
        """Values read from other steps (s and u are made inside)."""
        made = {id(self.forward.node.out)} | {id(o) for o in self.kernel.outputs}
        inner = [*self.forward.node.inputs, *reads(self.kernel), *self.backward.node.inputs]
        seen: dict[int, Variable] = {}
        for v in inner:
            if id(v) not in made:
                seen.setdefault(id(v), v)
        return list(seen.values())

    @property
    def glue_reads(self) -> list[Variable]:
        """What the runtime reads before the sweep: the matrix and vector, to hand them to
        BLAS as it can read them."""
        return [self.forward.matrix, self.forward.vector]

    @property
    def outputs(self) -> list[Variable]:
        return [self.forward.node.out, *self.kernel.outputs, self.backward.node.out]


def _scalar(v: Variable) -> float | None:
    """The value of a constant scalar that BLAS may take as alpha or beta (nonzero: BLAS skips a
    term whose factor is 0, which would drop its nan)."""
    if not isinstance(v, Constant) or v.data.size != 1:
        return None
    x = float(v.data.reshape(()))
    return x if x != 0 and math.isfinite(x) else None


def matvec(node: Apply) -> MatVec | None:
    """The node as a matrix-vector product BLAS can run, or None."""
    if node.op == "gemv":
        c, alpha, a, v, beta = node.inputs
        al, be = _scalar(alpha), _scalar(beta)
        if al is None or be is None:
            return None
        mv = MatVec(node, a, v, c, al, be, bool(node.p["trans_a"]))
        if c.ndim != 1:
            return None
    elif node.op == "dot" and node.inputs[0].ndim == 2 and node.inputs[1].ndim == 1:
        mv = MatVec(node, node.inputs[0], node.inputs[1], None, 1.0, 0.0, False)
    elif node.op == "dot" and node.inputs[0].ndim == 1 and node.inputs[1].ndim == 2:
        mv = MatVec(node, node.inputs[1], node.inputs[0], None, 1.0, 0.0, True)
    else:
        return None
    typed = [mv.matrix, mv.vector, node.out] + ([mv.c] if mv.c is not None else [])
    if any(v.dtype != node.out.dtype for v in typed) or node.out.dtype not in FLOATS:
        return None
    return mv


def fuse_row_passes(plan: Plan) -> Plan:
    """The plan with every (forward product, kernel, backward product) it can sweep in one
    pass replaced by a RowPass step."""
    steps = list(plan.steps)
    count = 0
    while (found := _find(steps)) is not None:
        f, k, b, mv_f, mv_b = found
        rp = RowPass(f"rp{count}", mv_f, steps[k], mv_b)
        count += 1
        steps = _reorder(steps, f, k, b, rp)
    if not count:
        return plan
    return Plan(steps, plan.outputs, _last_use(steps, plan.outputs))


def _find(steps: list) -> tuple[int, int, int, MatVec, MatVec] | None:
    """The positions of a forward product, a kernel and a backward product that can be one
    pass, and the two products."""
    deps = _deps(steps)
    for f, step in enumerate(steps):
        fwd = matvec(step.node) if isinstance(step, Call) and step.kind == "blas" else None
        if fwd is None or fwd.trans:
            continue
        s = step.node.out
        for k in range(f + 1, len(steps)):
            kern = steps[k]
            if not _sweepable(kern, s):
                continue
            for b in range(k + 1, len(steps)):
                back = steps[b]
                bwd = matvec(back.node) if isinstance(back, Call) and back.kind == "blas" else None
                if bwd is None or not bwd.trans or bwd.matrix is not fwd.matrix:
                    continue
                if not any(bwd.vector is o for o in kern.outputs) or bwd.vector is _red(kern):
                    continue
                if _movable(deps, f, k, b, bwd, kern):
                    return f, k, b, fwd, bwd
    return None


def _sweepable(kern: object, s: Variable) -> bool:
    """A 1-d kernel (its reduction, if any, over everything) that reads s as it is."""
    return (
        isinstance(kern, Kernel)
        and kern.ndim == 1
        and not kern.broadcastable[0]
        and any(v is s for v in kern.inputs)
        and id(s) not in kern.views
    )


def _red(kern: Kernel) -> Variable | None:
    return kern.reduce.out if kern.reduce is not None else None


def _after(deps: list[set[int]], roots: set[int], lo: int, hi: int) -> set[int]:
    """Positions in (lo, hi) that depend, through any chain, on a position in roots."""
    out = set(roots)
    for n in range(lo + 1, hi):
        if deps[n] & out:
            out.add(n)
    return out - roots


def _movable(deps: list[set[int]], f: int, k: int, b: int, bwd: MatVec, kern: Kernel) -> bool:
    """Whether the three can run as one pass placed where b is: the kernel reads nothing that
    depends on the forward product but s; the backward product nothing that depends on either
    but the kernel's u (its added term c is copied in before the sweep)."""
    tainted = _after(deps, {f, k}, f, b) - {k}
    if deps[k] & tainted or deps[b] & (tainted | {f}):
        return False
    return bwd.c is None or all(bwd.c is not o for o in kern.outputs)


def _reorder(steps: list, f: int, k: int, b: int, rp: RowPass) -> list:
    """Steps before the pass: those up to b that don't depend on it; after it: those that do."""
    deps = _deps(steps)
    tainted = _after(deps, {f, k}, f, b) - {k}
    between = [n for n in range(f + 1, b) if n != k]
    before = [steps[n] for n in between if n not in tainted]
    after = [steps[n] for n in between if n in tainted]
    return [*steps[:f], *before, rp, *after, *steps[b + 1 :]]
