"""The optimizer's results on disk, beside the compiled kernels.

Saturating a training graph costs 0.2-0.5 s, the same each time a script starts. What comes out
depends only on the graph (structure, types, constant values), the sizes of the shared values
(hints for the cost model), the optimizer's settings and eqsat's own code, so it is stored under
a hash of all of those in `config.compiledir`: a warm start rebuilds the optimized graph from
the file instead of deriving it again. Entries are written atomically and any unreadable one is
ignored (and rewritten). `config.opt_cache = False`, or EQSAT_OPT_CACHE=0, turns it off.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import egglog
import numpy as np

from eqsat.config import config
from eqsat.graph import Constant, Variable, from_flat, to_flat
from eqsat.runtime.shared import SharedVariable

_FORMAT = "eqsat-opt-1"


@functools.cache
def _code_version() -> str:
    """A hash of eqsat's sources: a change to a rule, the cost model or an op changes keys."""
    h = hashlib.sha256(_FORMAT.encode())
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    h.update(getattr(egglog, "__version__", "").encode())
    return h.hexdigest()


def _describe(v: Variable, k: int) -> tuple:
    if isinstance(v, Constant):
        return ("const", v.dtype, v.data.shape, v.data.tobytes(), repr(v.literal))
    size = v.get_value(borrow=True).shape if isinstance(v, SharedVariable) else None
    return ("leaf", k, v.dtype, v.type.shape, size)


def key(outputs: Sequence[Variable], settings: Any) -> str | None:
    """The cache key of optimizing `outputs` with `settings` (None: caching is off)."""
    if not config.opt_cache:
        return None
    roots, nodes, outs = to_flat(outputs)
    leaves = 0
    described = []
    for v in roots:
        described.append(_describe(v, leaves))
        leaves += not isinstance(v, Constant)
    text = repr((_code_version(), repr(settings), described, nodes, outs))
    return hashlib.sha256(text.encode()).hexdigest()


def _path(k: str) -> Path:
    return Path(config.compiledir) / f"opt-{k}.pkl"


def load(k: str, outputs: Sequence[Variable]) -> tuple[list[Variable], Any] | None:
    """The optimized outputs (on the roots of `outputs`) and the record, if stored."""
    try:
        with open(_path(k), "rb") as f:
            stored = pickle.load(f)
        roots = to_flat(outputs)[0]
        new_roots = [roots[r] if kind == "root" else r for kind, r in stored["roots"]]
        return from_flat(new_roots, stored["nodes"], stored["outputs"]), stored["record"]
    except Exception:  # noqa: BLE001 - a missing, stale or corrupt entry is a miss
        return None


def store(k: str, outputs: Sequence[Variable], new: Sequence[Variable], record: Any) -> None:
    """Write the result of optimizing `outputs` (best effort: a cache never fails a compile)."""
    index = {id(v): n for n, v in enumerate(to_flat(outputs)[0])}
    new_roots, nodes, outs = to_flat(new)
    try:
        entry = {
            "roots": [
                ("root", index[id(v)]) if id(v) in index else ("const", _copy(v)) for v in new_roots
            ],  # fmt: skip
            "nodes": nodes,
            "outputs": outs,
            "record": record,
        }
        directory = _path(k).parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".opt-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(entry, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, _path(k))
    except (OSError, pickle.PicklingError, TypeError):
        return


def _copy(v: Variable) -> Constant:
    """A constant the optimizer made (a folded literal): stored by value."""
    if not isinstance(v, Constant):
        raise TypeError(f"optimized graph has a new root that is not a constant: {v!r}")
    return Constant(np.array(v.data), name=v.name, literal=v.literal)
