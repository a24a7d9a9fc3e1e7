"""`python -m eqsat.explain`: reports on the functions a script compiles, or on one expression.

    python -m eqsat.explain [options] SCRIPT.py [script args ...]
    python -m eqsat.explain [options] -e EXPR --var NAME=TYPE ... [--grad NAME ...]

Options go before SCRIPT.py: everything after it is the script's own command line, as with
`python SCRIPT.py ...`. docs/explain.md describes the options and the report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import runpy
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from eqsat.runtime.function import Function, watch

TYPE_NAME = re.compile(r"^[bwilfd]?(scalar|vector|matrix|row|col|tensor3|tensor4)$")
DEFAULT_HTML = "explain.html"

# The converted values of each watched function's first call, by id(function), for --run.
_first_inputs: dict[int, list[np.ndarray]] = {}


class _Recording(Function):
    """A Function that keeps the values of its first call, then is a plain Function again (so
    the per-call path of the functions a script compiles stays as it is)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.__class__ = Function
        with contextlib.suppress(Exception):  # bad arguments: the call itself says so
            _first_inputs[id(self)] = [np.array(v, copy=True) for v in self._bind(args, kwargs)]
        return Function.__call__(self, *args, **kwargs)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m eqsat.explain",
        description="Explain what eqsat's optimizer and backend did to compiled functions: the "
        "graph before and after, the rules, the kernels, the timings.",
        epilog="Options go before SCRIPT.py; what follows it is the script's own arguments. "
        "See docs/explain.md.",
    )
    p.add_argument("script", nargs="?", metavar="SCRIPT.py", help="a script to run and report on")
    p.add_argument(
        "script_args", nargs=argparse.REMAINDER, metavar="...", help="the script's arguments"
    )
    p.add_argument(
        "-e",
        "--expr",
        metavar="EXPR",
        help='explain one expression, e.g. -e "log(1 + exp(x))" --var x=dvector',
    )
    p.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=TYPE",
        help="declare a variable of EXPR (TYPE: dvector, fmatrix, iscalar, ...)",
    )
    p.add_argument(
        "--grad",
        action="append",
        default=[],
        metavar="NAME",
        help="also compute EXPR's gradient with respect to NAME (of its sum, if EXPR "
        "is not a scalar)",
    )
    p.add_argument(
        "--function",
        metavar="NAME",
        help="report only the function of this name (function(..., name=NAME)) or "
        "creation index (0 is the first the script compiles)",
    )
    p.add_argument(
        "--format",
        choices=("text", "json", "html"),
        default="text",
        help="text (default), json (schema eqsat.explain/1) or html",
    )
    p.add_argument(
        "--out",
        metavar="PATH",
        help=f"write the report here (default: stdout; html: {DEFAULT_HTML})",
    )
    p.add_argument("--source", action="store_true", help="include each kernel's C source")
    p.add_argument(
        "--run",
        action="store_true",
        help="run each function once more (on the script's inputs from its first "
        "call, else random ones) timing it and each kernel",
    )
    p.add_argument(
        "--mode",
        choices=("c", "py"),
        help="the backend to compile for (default: eqsat.config.mode)",
    )
    p.add_argument(
        "--derive-budget",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="time to spend per function re-deriving the rewrites it uses (default 10)",
    )
    return p


def _declare(p: argparse.ArgumentParser, specs: list[str]) -> dict[str, Any]:
    import eqsat.tensor as T  # noqa: N812 - the Theano convention

    out: dict[str, Any] = {}
    for spec in specs:
        name, _, kind = spec.partition("=")
        name, kind = name.strip(), kind.strip()
        if not name.isidentifier() or not kind:
            p.error(f"--var {spec!r}: expected NAME=TYPE, e.g. x=dvector")
        if not TYPE_NAME.match(kind) or not callable(getattr(T, kind, None)):
            p.error(
                f"--var {spec!r}: unknown type {kind!r}; expected one of eqsat.tensor's "
                "constructors, e.g. dscalar, dvector, dmatrix, fvector, ivector, tensor3"
            )
        if name in out:
            p.error(f"--var {name!r} is declared twice")
        out[name] = getattr(T, kind)(name)
    return out


def _expression_function(p: argparse.ArgumentParser, args: argparse.Namespace) -> Function:
    import eqsat
    import eqsat.tensor as T  # noqa: N812
    from eqsat.graph import Variable

    variables = _declare(p, args.var)
    for name in args.grad:
        if name not in variables:
            p.error(f"--grad {name!r}: not a declared variable (declare it with --var)")
    scope = {k: getattr(T, k) for k in dir(T) if not k.startswith("_")}
    scope.update(T=T, **variables)
    try:
        expr = eval(args.expr, {"__builtins__": {}}, scope)  # noqa: S307 - the user's own text
        expr = T.as_tensor_variable(expr)
    except Exception as e:  # noqa: BLE001 - any failure to build EXPR is bad usage
        p.error(f"-e {args.expr!r}: {type(e).__name__}: {e}")
    outputs = [expr]
    if args.grad:
        cost = expr if expr.ndim == 0 else expr.sum()
        of = args.expr if expr.ndim == 0 else f"sum({args.expr})"
        try:
            grads = T.grad(cost, [variables[n] for n in args.grad])
        except Exception as e:  # noqa: BLE001
            p.error(f"--grad: cannot differentiate {of}: {type(e).__name__}: {e}")
        for name, g in zip(args.grad, grads, strict=True):
            if isinstance(g, Variable) and g.owner is not None and g.name is None and g is not expr:
                g.name = f"grad of {of} w.r.t. {name}"
        outputs += grads
    return eqsat.function(
        list(variables.values()),
        outputs,
        on_unused_input="ignore",
        mode=args.mode,
        name=args.expr,
    )


def _script_traceback(error: BaseException, script: str) -> None:
    """The script's traceback as Python would print it: frames from the script down."""
    tb = error.__traceback__
    path = os.path.abspath(script)
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != path:
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb or error.__traceback__, file=sys.stderr)


@contextlib.contextmanager
def _as_main(script: str, argv: list[str]) -> Iterator[None]:
    """sys.argv and sys.path as `python SCRIPT args` sets them."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [script, *argv]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        yield
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


def _run_script(script: str, argv: list[str], quiet: bool) -> tuple[list[Function], int]:
    """Run the script; the functions it compiled and an exit status (non-zero if it failed)."""
    made: list[Function] = []

    def seen(f: Function) -> None:
        made.append(f)
        if type(f) is Function:
            f.__class__ = _Recording

    status = 0
    # With a JSON report on stdout, the script's own prints go to stderr.
    out = contextlib.redirect_stdout(sys.stderr) if quiet else contextlib.nullcontext()
    with watch(seen), _as_main(script, argv), out:
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as e:
            code = e.code
            status = 0 if code is None else code if isinstance(code, int) else 1
            if not isinstance(code, int | None):
                print(code, file=sys.stderr)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - the script's failure is reported
            _script_traceback(e, script)
            status = 1
    for f in made:  # never called: back to plain Functions
        if type(f) is _Recording:
            f.__class__ = Function
    return made, status


def _pick(p: argparse.ArgumentParser, made: list[Function], which: str | None) -> list[int]:
    if which is None:
        return list(range(len(made)))
    if re.fullmatch(r"\d+", which):
        if int(which) < len(made):
            return [int(which)]
    else:
        named = [k for k, f in enumerate(made) if f.name == which]
        if named:
            return named
    listed = ", ".join(f"{k} {f.name!r}" if f.name else str(k) for k, f in enumerate(made))
    p.error(
        f"--function {which}: no function of that name or index; the script compiled "
        f"{listed or 'none'}"
    )
    raise AssertionError  # p.error exits


def _html_paths(out: str, reports: list[Any]) -> list[str]:
    if len(reports) == 1:
        return [out]
    stem, ext = os.path.splitext(out)
    paths = []
    for r in reports:
        fn = r.data["function"]
        tag = re.sub(r"[^\w.-]+", "_", fn["name"]) if fn["name"] else ""
        paths.append(f"{stem}-{fn['index']}{'-' + tag if tag else ''}{ext or '.html'}")
    return paths


def _write(args: argparse.Namespace, reports: list[Any]) -> None:
    if args.format == "html":
        for report, path in zip(
            reports, _html_paths(args.out or DEFAULT_HTML, reports), strict=True
        ):
            report.to_html(path)
            print(f"eqsat.explain: wrote {path}", file=sys.stderr)
        return
    if args.format == "json":
        data = [r.data for r in reports]
        text = json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False) + "\n"
    else:
        text = "\n\n".join(str(r) for r in reports)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"eqsat.explain: wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    p = _parser()
    args = p.parse_args(argv)
    if (args.script is None) == (args.expr is None):
        p.error("give either SCRIPT.py or -e EXPR (one of them)")
    if args.expr is None and (args.var or args.grad):
        p.error("--var and --grad declare the variables of -e EXPR; a script declares its own")
    if args.expr is not None and args.script_args:
        p.error(f"unexpected arguments after -e EXPR: {' '.join(args.script_args)}")
    if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        p.error(f"--out {args.out}: no such directory")
    if args.derive_budget < 0:
        p.error("--derive-budget must be a number of seconds >= 0")
    if args.mode:
        from eqsat.config import config

        config.mode = args.mode
    from eqsat.explain.report import build

    _first_inputs.clear()
    status = 0
    if args.expr is not None:
        if args.function not in (None, "0", args.expr):
            p.error(f"--function {args.function}: -e compiles one function, number 0")
        made = [_expression_function(p, args)]
    else:
        if not os.path.isfile(args.script):
            p.error(f"can't open file {args.script!r}: no such file")
        quiet = args.format == "json" and not args.out
        made, status = _run_script(args.script, args.script_args, quiet)
        if not made:
            if status == 0:
                print(f"eqsat.explain: {args.script} compiled no eqsat function", file=sys.stderr)
            return status or 1
    reports = [
        build(
            made[k],
            source=args.source,
            run=args.run,
            derive_budget_s=args.derive_budget,
            index=k,
            inputs=_first_inputs.get(id(made[k])),
        )
        for k in _pick(p, made, args.function)
    ]
    _write(args, reports)
    return status
