"""`eqsat.explain(f)`: what the optimizer and the backend did to a compiled function, and why.

    report = eqsat.explain(f)
    print(report)               # the text report
    report.to_json()            # schema "eqsat.explain/1" (eqsat/explain/schema.json)
    report.to_html("f.html")    # one self-contained page with the graphs drawn

The command line is `python -m eqsat.explain` (eqsat/explain/cli.py); docs/explain.md has both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the report machinery loads only when a report is asked for
    from eqsat.explain.report import Report
    from eqsat.runtime.function import Function


def explain(
    f: Function,
    *,
    source: bool = False,
    run: bool | Sequence[Any] = False,
    derive_budget_s: float = 10.0,
) -> Report:
    """The report on compiled function `f`: `source=True` keeps each kernel's C code; `run=True`
    runs it once on random inputs (or `run=[values...]` on those) timing each kernel."""
    from eqsat.explain.report import build

    return build(f, source=source, run=run, derive_budget_s=derive_budget_s)


__all__ = ["explain"]
