"""Updates that overwrite the shared variable they replace, as Theano's gemm_inplace does.

`W - lr * dot(x.T, g)` is a gemm whose added term is W: written into W's own array, it needs
no copy of W first and no new array (in the MLP step, 120-175 us of the W1 update's 2.2 ms).
A gemm qualifies when its added term is the root it is the update of, no step reads its result
and no output is that root or repeats its result. Such steps move to the end of the plan: every
other step has read the old value by then, and a call that fails before them leaves the shared
variable as it was. The runtime checks all of them before any writes, and copies as before
where an array can't be written in place (its layout, dtype or a broadcast; an operand that
shares its memory).
"""

from __future__ import annotations

from collections.abc import Mapping

from eqsat.codegen.plan import Call, Plan, _last_use, reads
from eqsat.graph import Variable


def in_place(plan: Plan, updates: Mapping[int, Variable]) -> tuple[Plan, list[Call]]:
    """The plan with the gemm steps that may write into the root they update (`updates`: the
    root by the id of its update value) moved to its end, and those steps."""
    read = {id(v) for step in plan.steps for v in reads(step)}
    counts: dict[int, int] = {}
    for o in plan.outputs:
        counts[id(o)] = counts.get(id(o), 0) + 1
    picked = []
    for step in plan.steps:
        if not (isinstance(step, Call) and step.kind == "blas" and step.node.op == "gemm"):
            continue
        node = step.node
        root = updates.get(id(node.out))
        if root is None or node.inputs[0] is not root or id(node.out) in read:
            continue
        if counts.get(id(node.out)) != 1 or id(root) in counts:
            continue
        picked.append(step)
    if not picked:
        return plan, []
    steps = [s for s in plan.steps if not any(s is p for p in picked)] + picked
    return Plan(steps, plan.outputs, _last_use(steps, plan.outputs)), picked
