"""Graphs as Graphviz DOT text, with fused kernels drawn as boxes around their ops.

Data flows top to bottom: graph inputs at the top, outputs at the bottom. Each Variable is
drawn once, so shared subterms show as a node with several users, except scalar constants,
which get one small node per use: a `1.0` read by ten ops would otherwise pull ten long edges
across the picture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from eqsat.graph import Apply, Constant, Variable, toposort
from eqsat.ops import OPS

MAX_LABEL = 32  # longer parameter texts are cut: the label is a reminder, debugprint has all

# Fill colours by op kind, so a reader sees at a glance where the arithmetic is and where the
# data movement is.
_KIND_COLOR = {
    "elemwise": "#dbeafe",
    "reduce": "#fde68a",
    "contract": "#fecaca",
    "nnet": "#e9d5ff",
    "shape": "#e5e7eb",
    "alloc": "#e5e7eb",
    "index": "#e5e7eb",
}
_INPUT_COLOR = "#d1fae5"
_OUTPUT_COLOR = "#ffffff"
_GRAPH = {"rankdir": "TB", "labelloc": "t", "fontname": "Helvetica", "nodesep": "0.25",
          "ranksep": "0.35"}  # fmt: skip
_NODE = {"fontname": "Helvetica", "fontsize": "11", "shape": "ellipse", "style": "filled",
         "margin": "0.05,0.03", "height": "0.3"}  # fmt: skip
_EDGE = {"fontname": "Helvetica", "fontsize": "8", "arrowsize": "0.6", "color": "#555555"}
_CLUSTER = {"style": "rounded,filled", "fillcolor": "#fff7ed", "color": "#ea580c",
            "fontcolor": "#9a3412", "labeljust": "l", "fontsize": "11"}  # fmt: skip


def quote(text: str) -> str:
    """`text` as a DOT double-quoted string; newlines become centred line breaks."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{text}"'


def _shorten(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def type_text(v: Variable) -> str:
    """A compact type: dtype and static shape, `?` for sizes known only at run time."""
    dims = ",".join("?" if s is None else str(s) for s in v.type.shape)
    return f"{v.type.dtype}[{dims}]"


def _param_value(v: object) -> str:
    if isinstance(v, tuple):
        return "(" + ",".join(_param_value(e) for e in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, str):
        return v
    return repr(v)


def op_label(node: Apply) -> str:
    """The op's name, then its parameters one per line (each cut to MAX_LABEL characters)."""
    lines = [node.op]
    for key, value in node.params:
        lines.append(_shorten(f"{key}={_param_value(value)}"))
    return "\n".join(lines)


def constant_label(c: Constant) -> str:
    """Scalars by value; arrays by a few values and their shape, so huge ones stay small."""
    if c.name:
        return c.name
    if c.data.size == 1:
        return repr(c.data.item())
    values = np.array2string(c.data.ravel(), threshold=4, edgeitems=2, precision=4)
    return f"{_shorten(values)}\n{type_text(c)}"


def _input_label(v: Variable) -> str:
    return f"{v.name or '?'}\n{type_text(v)}"


def _is_scalar_constant(v: Variable) -> bool:
    return isinstance(v, Constant) and v.data.size == 1


def _attrs(**attrs: str) -> str:
    return "[" + ", ".join(f"{k}={quote(v)}" for k, v in attrs.items()) + "]"


class _Writer:
    """Numbers nodes in the order they are first met, so equal graphs give equal text."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.lines: list[str] = []
        self.counts = {"i": 0, "c": 0, "n": 0, "o": 0}

    def fresh(self, prefix: str) -> str:
        name = f"{prefix}{self.counts[prefix]}"
        self.counts[prefix] += 1
        return name

    def root(self, v: Variable) -> str:
        """The node of a graph input or constant (a new one per use for scalar constants)."""
        if _is_scalar_constant(v):
            name = self.fresh("c")
            attrs = {"label": constant_label(v), "tooltip": f"constant {type_text(v)}"}
            self.lines.append(f"  {name} {_attrs(shape='plain', fillcolor='#f3f4f6', **attrs)};")
            return name
        if id(v) not in self.names:
            if isinstance(v, Constant):
                name = self.fresh("c")
                label, tooltip = constant_label(v), f"constant {type_text(v)}"
                style = {"shape": "box", "style": "filled", "fillcolor": "#f3f4f6"}
            else:
                name = self.fresh("i")
                label, tooltip = _input_label(v), f"input {type_text(v)}"
                style = {"shape": "box", "style": "rounded,filled", "fillcolor": _INPUT_COLOR}
            self.names[id(v)] = name
            self.lines.append(f"  {name} {_attrs(label=label, tooltip=tooltip, **style)};")
        return self.names[id(v)]

    def source(self, v: Variable) -> str:
        return self.names[id(v)] if v.owner is not None else self.root(v)


def graph_dot(
    outputs: Sequence[Variable],
    names: Sequence[str] = (),
    groups: Mapping[int, str] | None = None,
    title: str = "",
) -> str:
    """DOT text of the graph computing `outputs`; `groups` maps id(Apply) -> kernel name, and
    the nodes of one kernel are drawn inside one box labelled with it; `names` label outputs."""
    outputs = list(outputs)
    for n, out in enumerate(outputs):
        if not isinstance(out, Variable):
            raise TypeError(f"graph_dot: outputs[{n}] is {type(out).__name__}, not a Variable")
    groups = groups or {}
    w = _Writer()
    # kernel name -> its nodes' lines; boxes in the order the caller listed them (plan order)
    clusters: dict[str, list[str]] = {g: [] for g in dict.fromkeys(groups.values())}
    edges: list[str] = []

    for node in toposort(outputs):
        ordered = len(node.inputs) > 1 and "commutative" not in _flags(node.op)
        sources = [w.source(i) for i in node.inputs]
        name = w.names[id(node.out)] = w.fresh("n")
        kind = OPS[node.op].kind if node.op in OPS else ""
        attrs = {
            "label": op_label(node),
            "tooltip": f"{node.op} -> {type_text(node.out)}",
            "fillcolor": _KIND_COLOR.get(kind, "#ffffff"),
        }
        line = f"  {name} {_attrs(**attrs)};"
        group = groups.get(id(node))
        if group is None:
            w.lines.append(line)
        else:
            clusters[group].append(line)
        for pos, src in enumerate(sources):
            # The operand order of sub, true_div, dot... is not visible from the layout.
            label = f" {_attrs(label=str(pos))}" if ordered else ""
            edges.append(f"  {src} -> {name}{label};")

    for n, out in enumerate(outputs):
        label = names[n] if n < len(names) and names[n] else f"output {n}"
        name = w.fresh("o")
        attrs = {"label": label, "tooltip": type_text(out), "fillcolor": _OUTPUT_COLOR}
        w.lines.append(f"  {name} {_attrs(shape='box', style='bold,filled', **attrs)};")
        edges.append(f"  {w.source(out)} -> {name};")

    header = [
        "digraph G {",
        f"  graph {_attrs(label=title, **_GRAPH)};",
        f"  node {_attrs(**_NODE)};",
        f"  edge {_attrs(**_EDGE)};",
    ]
    body = [*w.lines]
    for k, (group, lines) in enumerate((g, ls) for g, ls in clusters.items() if ls):
        body.append(f"  subgraph cluster_{k} {{")
        body.append(f"    graph {_attrs(label=group, **_CLUSTER)};")
        body.extend("  " + line for line in lines)
        body.append("  }")
    return "\n".join(header + body + edges + ["}"]) + "\n"


def _flags(op: str) -> frozenset[str]:
    return OPS[op].flags if op in OPS else frozenset()
