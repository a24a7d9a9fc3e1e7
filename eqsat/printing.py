"""Readable graphs: `pp` (one infix line) and `debugprint` (Theano's indented tree)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Any

from eqsat.graph import Apply, Constant, Variable, toposort
from eqsat.ops import OPS

# Python's operator precedence, low to high, so that pp's text reads like the graph.
COMPARE, OR, XOR, AND, SUM, PRODUCT, UNARY, POWER, ATOM = range(4, 13)
_BINARY_LEVEL = {
    **dict.fromkeys(("lt", "gt", "le", "ge", "eq", "neq"), COMPARE),
    "or_": OR,
    "xor": XOR,
    "and_": AND,
    **dict.fromkeys(("add", "sub"), SUM),
    **dict.fromkeys(("mul", "true_div", "int_div", "mod"), PRODUCT),
    "pow": POWER,
}


def _leaf(v: Variable) -> tuple[str, int]:
    if isinstance(v, Constant):
        text = repr(v)
        return text, UNARY if text.startswith("-") else ATOM
    return v.name or f"<{v.type!r}>", ATOM


def _wrap(text_level: tuple[str, int], min_level: int) -> str:
    text, level = text_level
    return text if level >= min_level else f"({text})"


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


def _pp_node(node: Apply, args: list[tuple[str, int]]) -> tuple[str, int]:
    """Text of one node's output from its inputs' texts, with its precedence level."""
    op = node.op
    level = _BINARY_LEVEL.get(op)
    if level == POWER:  # right-associative, and binds tighter than a unary minus on its left
        return f"{_wrap(args[0], ATOM)} ** {_wrap(args[1], UNARY)}", POWER
    if level is not None:
        # Comparisons chain in Python, so a comparison operand is always parenthesised; a right
        # operand of the same level is too, since the graph grouped it that way.
        left = _wrap(args[0], level + 1 if level == COMPARE else level)
        return f"{left} {OPS[op].symbol} {_wrap(args[1], level + 1)}", level
    if op in ("neg", "invert"):
        return f"{OPS[op].symbol}{_wrap(args[0], UNARY)}", UNARY
    if op == "subtensor":
        return f"{_wrap(args[0], ATOM)}[{_index_text(node, [t for t, _ in args[1:]])}]", ATOM
    extra = _params_text(node)
    inner = ", ".join(t for t, _ in args) + (", " + extra if extra else "")
    return f"{op}({inner})", ATOM


def pp(var: Variable) -> str:
    """One-line infix rendering of the expression computing `var`."""
    texts: dict[int, tuple[str, int]] = {}

    def text(v: Variable) -> tuple[str, int]:
        return texts[id(v)] if id(v) in texts else _leaf(v)

    for node in toposort([var]):  # bottom-up, so deep graphs need no recursion
        texts[id(node.out)] = _pp_node(node, [text(i) for i in node.inputs])
    return text(var)[0]


def debug_ids() -> Iterator[str]:
    """debugprint's value ids in the order it gives them: A..Z, AA, AB, ..."""
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
        return _leaf(v)[0]
    extra = _params_text(node)
    return f"{node.op}{{{extra}}}" if extra else node.op


MAX_INDENT = 40  # deeper levels are labelled with their depth instead of drawn


def _debug_lines(outputs: Sequence[Variable], print_type: bool) -> list[str]:
    lines: list[str] = []
    ids: dict[int, str] = {}
    fresh = debug_ids()
    # An explicit stack of (variable, depth, prefix, child prefix): graphs can be deep.
    stack = [(out, 0, "", "") for out in reversed(outputs)]
    while stack:
        v, depth, prefix, child_prefix = stack.pop()
        seen = id(v) in ids
        if not seen:
            ids[id(v)] = next(fresh)
        name = f" '{v.name}'" if v.name and v.owner is not None else ""
        typ = f" <{v.type!r}>" if print_type else ""
        more = " ···" if seen and v.owner is not None else ""
        lines.append(f"{prefix}{_label(v)} [id {ids[id(v)]}]{name}{typ}{more}")
        if seen or v.owner is None:
            continue
        inputs = v.owner.inputs
        for n in reversed(range(len(inputs))):
            last = n == len(inputs) - 1
            if depth + 1 >= MAX_INDENT:
                marks = (f"{child_prefix[: 4 * MAX_INDENT]} [depth {depth + 1}] ", child_prefix)
            else:
                marks = (
                    child_prefix + (" └─ " if last else " ├─ "),
                    child_prefix + ("    " if last else " │  "),
                )
            stack.append((inputs[n], depth + 1, *marks))
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
