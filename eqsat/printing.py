"""Readable graphs: `pp` (one infix line) and `debugprint` (Theano's indented tree)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from eqsat.graph import Apply, Constant, Variable
from eqsat.ops import OPS

_BINARY_LEVEL = {
    "or_": 1,
    "xor": 2,
    "and_": 3,
    "lt": 4,
    "gt": 4,
    "le": 4,
    "ge": 4,
    "eq": 4,
    "neq": 4,
    "add": 5,
    "sub": 5,
    "mul": 6,
    "true_div": 6,
    "int_div": 6,
    "mod": 6,
    "pow": 8,
}


def _leaf(v: Variable) -> str:
    if isinstance(v, Constant):
        return repr(v)
    return v.name or f"<{v.type!r}>"


def _index_text(node: Apply, args: list[str]) -> str:
    it = iter(args)
    parts = []
    for item in node.p["spec"]:
        if item == "i":
            parts.append(next(it))
        else:
            sl = [next(it) if f else "" for f in item[1:]]
            parts.append(":".join(sl[:2]) + (f":{sl[2]}" if item[3] else ""))
    return ", ".join(parts)


def _params_text(node: Apply) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in node.params)


def _pp(v: Variable, memo: dict[int, tuple[str, int]]) -> tuple[str, int]:
    """Text of v and its precedence level (9: atom)."""
    if id(v) in memo:
        return memo[id(v)]
    node = v.owner
    if node is None:
        return _leaf(v), 9
    args = [_pp(i, memo) for i in node.inputs]
    op = node.op
    level = _BINARY_LEVEL.get(op)
    if level is not None:
        (a, la), (b, lb) = args
        left = a if la >= level else f"({a})"
        right = b if lb > level or (lb == level and op in ("add", "mul")) else f"({b})"
        if op == "pow":  # right-associative
            left, right = (a if la > level else f"({a})"), (b if lb >= level else f"({b})")
        out = f"{left} {OPS[op].symbol} {right}", level
    elif op in ("neg", "invert"):
        a, la = args[0]
        out = f"{OPS[op].symbol}{a if la >= 7 else f'({a})'}", 7
    elif op == "subtensor":
        base, lb = args[0]
        out = (
            f"{base if lb == 9 else f'({base})'}[{_index_text(node, [t for t, _ in args[1:]])}]",
            9,
        )
    else:
        inner = ", ".join(t for t, _ in args)
        extra = _params_text(node)
        out = f"{op}({inner}{', ' + extra if extra else ''})", 9
    memo[id(v)] = out
    return out


def pp(var: Variable) -> str:
    """One-line infix rendering of the expression computing `var`."""
    return _pp(var, {})[0]


def _ids():
    n = 0
    while True:
        s, k = "", n
        while True:
            s = chr(ord("A") + k % 26) + s
            k = k // 26 - 1
            if k < 0:
                break
        yield s
        n += 1


def _label(v: Variable) -> str:
    node = v.owner
    if node is None:
        return _leaf(v)
    extra = _params_text(node)
    return f"{node.op}{{{extra}}}" if extra else node.op


def _debug_lines(outputs: Sequence[Variable], print_type: bool) -> list[str]:
    lines: list[str] = []
    ids: dict[int, str] = {}
    fresh = _ids()

    def visit(v: Variable, prefix: str, child_prefix: str) -> None:
        seen = id(v) in ids
        if not seen:
            ids[id(v)] = next(fresh)
        name = f" '{v.name}'" if v.name and v.owner is not None else ""
        typ = f" <{v.type!r}>" if print_type else ""
        more = " ···" if seen and v.owner is not None else ""
        lines.append(f"{prefix}{_label(v)} [id {ids[id(v)]}]{name}{typ}{more}")
        if seen or v.owner is None:
            return
        inputs = v.owner.inputs
        for n, i in enumerate(inputs):
            last = n == len(inputs) - 1
            visit(
                i,
                child_prefix + (" └─ " if last else " ├─ "),
                child_prefix + ("    " if last else " │  "),
            )

    for out in outputs:
        visit(out, "", "")
    return lines


def debugprint(obj: Any, file: Any = None, print_type: bool = False) -> str | None:
    """Print the graph of a Variable, a list of them, or a compiled Function as an indented
    tree; a node seen before is shown once more by its id, then '···'.
    With file='str' the text is returned instead of printed."""
    if hasattr(obj, "maker"):
        fg = obj.maker.fgraph
        outputs = fg.outputs + [v for _, v in fg.updates]
    elif isinstance(obj, Variable):
        outputs = [obj]
    else:
        outputs = list(obj)
    text = "\n".join(_debug_lines(outputs, print_type)) + "\n"
    if file == "str":
        return text
    out = sys.stdout if file is None else file
    out.write(text)
    return None
