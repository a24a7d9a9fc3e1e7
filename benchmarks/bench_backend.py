"""eqsat's backends against hand-written NumPy, PyTensor and JAX. Run by hand:

    python3 benchmarks/bench_backend.py [--quick] [--modes c,py] [--only a,b,c,d,e]

Workloads: (a) the Theano tutorial's logistic-regression training step (N=400 and 4000,
feats=784; outputs [prediction, xent], updates on w and b); (b) a 2-layer MLP training step
(batch 256, 784 -> 512 -> 10, tanh, softmax cross-entropy with integer labels, SGD on W1, b1,
W2, b2; output the cost); (c) elementwise chains on 10**7 float64 elements, beside the
memory-bandwidth floor measured with NumPy; (d) the per-call overhead of f(x) = x*2 on a float64
scalar called with a Python float; (e) the compile time of (a)'s training function with a cold
and a warm compile cache, each in a fresh subprocess.

Rows: eqsat in each of --modes ("n/a" where a mode raises NotImplementedError or ValueError at
function creation), NumPy written by hand (forward and backward), PyTensor with its C backend
(mode="CVM") and with its default backend (mode="NUMBA"), and jax.jit on the CPU with float64.
Each row gives the median time of one call, the number of timed calls (more for fast rows, at
least a few for slow ones; timed in turns with the other rows of its workload, each turn after
untimed calls for 20 ms), the time relative to eqsat ("x eqsat", >1 is slower; mode c if it works,
else the first mode that does), and whether one call from the starting state agrees with
the NumPy version (allclose, rtol 1e-6): "MISMATCH" marks fast code that computes something else.
Training steps change their parameters on every call, as training does. Peers that are not
installed are reported so (`pip install -e ".[bench]"` installs them). --quick is a smoke run.
Times are only as quiet as the machine: the header prints its load average. BLAS and XLA use
every core unless told otherwise (e.g. OPENBLAS_NUM_THREADS=1).
Not a test: pytest's testpaths (tests/) keep it out.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import eqsat
from eqsat.explain.text import seconds as fmt_time

PEERS = ("numpy", "pytensor CVM", "pytensor NUMBA", "jax jit")
RTOL = 1e-6
LR = 0.1  # SGD learning rate of (a) and (b)
RESULT_TAG = "BENCH_BACKEND_RESULT"  # marks the compile child's answer on its stdout
# Seconds between two rows' turns: OpenBLAS's threads (SciPy's, which PyTensor's NUMBA backend
# calls; NumPy's where eqsat does not run them) spin for 0.1 s after each call, on the cores the
# next row would use.
SETTLE = 0.15
# Untimed calls at the start of each turn, at least WARM of them and for at least WARM_S: the
# caches hold the last row's data, and threads (eqsat's pool, XLA's) wake from the pause (an
# eqsat LR step at N=400 timed 103 us in turns after 2 such calls, 65 us alone).
WARM, WARM_S = 2, 0.02

Call = Callable[[], Any]


@dataclass(frozen=True)
class Settings:
    """How long to time each row and how large the workloads are."""

    budget: float  # seconds of timed calls per row, once min_runs are done
    min_runs: int
    max_runs: int
    sizes: tuple[int, ...]  # N of (a)
    elements: int  # vector length of (c)
    loops: int  # (d): calls per timed sample
    samples: int  # (d): timed samples
    rounds: int  # turns in which the rows of one workload are timed, each with its share


FULL = Settings(1.0, 5, 1000, (400, 4000), 10**7, 10_000, 7, 5)
QUICK = Settings(0.2, 3, 20, (400,), 10**6, 1_000, 3, 1)


class Unavailable(Exception):
    """A row that cannot run here; `check` fills its check column, `note` goes under the table."""

    def __init__(self, check: str, note: str = "") -> None:
        super().__init__(check)
        self.check, self.note = check, note


@dataclass
class Row:
    name: str
    seconds: float | None = None
    runs: str = "-"
    check: str = "-"
    note: str = ""


# --- implementations ------------------------------------------------------------------------


def import_peer(module: str) -> Any:
    """Import a peer, or raise Unavailable("not installed")."""
    if importlib.util.find_spec(module) is None:
        raise Unavailable("not installed", f"{module} is not installed; pip install -e '.[bench]'")
    return importlib.import_module(module)


def import_jax() -> Any:
    """JAX with float64 enabled (it is float32-only otherwise)."""
    jax = import_peer("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


@dataclass
class TheanoLike:
    """eqsat in one mode, or PyTensor in one mode: Theano's API behind `lib` and `T`."""

    lib: Any
    T: Any
    function: Callable[..., Any]  # (inputs, outputs, updates=None) -> compiled function


def theano_like(name: str) -> TheanoLike:
    """'eqsat py', 'eqsat c', 'pytensor CVM' or 'pytensor NUMBA'."""
    package, mode = name.split()
    if package == "eqsat":

        def function(inputs: list, outputs: Any, updates: Any = None) -> Any:
            try:
                return eqsat.function(inputs, outputs, updates=updates, mode=mode)
            except (NotImplementedError, ValueError) as err:
                raise Unavailable("n/a", str(err)) from err

        return TheanoLike(eqsat, eqsat.tensor, function)
    pytensor = import_peer("pytensor")
    if mode == "NUMBA":
        import_peer("numba")

    def function(inputs: list, outputs: Any, updates: Any = None) -> Any:
        return pytensor.function(inputs, outputs, updates=updates, mode=mode)

    return TheanoLike(pytensor, pytensor.tensor, function)


@dataclass
class Graph:
    """A training step in Theano's API: function(inputs, outputs, updates), called with args."""

    inputs: list
    outputs: list
    updates: list
    shared: list
    args: tuple


def theano_call(tl: TheanoLike, graph: Graph) -> Call:
    """One call of the compiled graph; returns its outputs, then the shared variables' values."""
    f = tl.function(graph.inputs, graph.outputs, graph.updates)

    def call() -> list:
        return [*f(*graph.args), *(s.get_value(borrow=True) for s in graph.shared)]

    return call


def jax_sgd_step(jax: Any, loss: Callable) -> Callable:
    """jit of step(params, *data) -> (outputs, new params); loss returns (cost, outputs)."""

    def step(params: tuple, *data: Any) -> tuple:
        grads, outputs = jax.grad(loss, has_aux=True)(params, *data)
        return outputs, tuple(p - LR * g for p, g in zip(params, grads, strict=True))

    return jax.jit(step)


def jax_call(jax: Any, step: Callable, params: tuple, data: tuple) -> Call:
    """One training step; the parameters stay JAX arrays between calls."""
    state = [params]

    def call() -> list:
        outputs, state[0] = step(state[0], *data)
        return jax.block_until_ready([*outputs, *state[0]])

    return call


# --- (a) logistic regression ----------------------------------------------------------------


def lr_data(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.standard_normal((n, 784)),
        "y": rng.integers(0, 2, n).astype("float64"),
        "w": rng.standard_normal(784),
    }


def lr_graph(tl: TheanoLike, data: dict[str, np.ndarray]) -> Graph:
    """The tutorial's code, verbatim but for the module names."""
    T = tl.T  # noqa: N806 - Theano's name
    x, y = T.dmatrix("x"), T.dvector("y")
    w = tl.lib.shared(data["w"].copy(), name="w")
    b = tl.lib.shared(np.asarray(0.0), name="b")  # PyTensor makes a float a scalar-type shared
    p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
    prediction = p_1 > 0.5
    xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w**2).sum()
    gw, gb = tl.lib.grad(cost, [w, b])
    updates = [(w, w - LR * gw), (b, b - LR * gb)]
    return Graph([x, y], [prediction, xent], updates, [w, b], (data["x"], data["y"]))


def softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def lr_numpy(data: dict[str, np.ndarray]) -> Call:
    """By hand, in the stable form (p_1 saturates: N(0, 784) logits give log(0) naively)."""
    x, y, n = data["x"], data["y"], len(data["y"])
    state = [data["w"].copy(), np.float64(0.0)]

    def call() -> list:
        w, b = state
        z = x @ w + b
        p_1 = np.exp(-softplus(-z))  # sigmoid(z), without overflow
        xent = y * softplus(-z) + (1 - y) * softplus(z)
        g = (p_1 - y) / n  # d cost / d z
        state[:] = [w - LR * (x.T @ g + 0.02 * w), b - LR * g.sum()]
        return [p_1 > 0.5, xent, *state]

    return call


def lr_jax_loss(jax: Any, stable: bool) -> Callable:
    """The tutorial's cost in jax.numpy; `stable` writes it with softplus as a JAX user would."""
    jnp = jax.numpy

    def loss(params: tuple, x: Any, y: Any) -> tuple:
        w, b = params
        if stable:
            z = x @ w + b
            p_1 = jax.nn.sigmoid(z)
            xent = y * jax.nn.softplus(-z) + (1 - y) * jax.nn.softplus(z)
        else:
            p_1 = 1 / (1 + jnp.exp(-(x @ w) - b))
            xent = -y * jnp.log(p_1) - (1 - y) * jnp.log(1 - p_1)
        return xent.mean() + 0.01 * (w**2).sum(), (p_1 > 0.5, xent)

    return loss


def lr_jax_state(jax: Any, data: dict[str, np.ndarray]) -> tuple[tuple, tuple]:
    params = (jax.device_put(data["w"]), jax.device_put(np.float64(0.0)))
    return params, (jax.device_put(data["x"]), jax.device_put(data["y"]))


def lr_make(data: dict[str, np.ndarray]) -> Callable[[str], Call]:
    def make(name: str) -> Call:
        if name == "numpy":
            return lr_numpy(data)
        if name.startswith("jax"):
            jax = import_jax()
            step = jax_sgd_step(jax, lr_jax_loss(jax, stable="stable" in name))
            return jax_call(jax, step, *lr_jax_state(jax, data))
        tl = theano_like(name)
        return theano_call(tl, lr_graph(tl, data))

    return make


# --- (b) MLP --------------------------------------------------------------------------------


def mlp_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    batch, n_in, n_hidden, n_out = 256, 784, 512, 10
    return {
        "x": rng.standard_normal((batch, n_in)),
        "labels": rng.integers(0, n_out, batch).astype("int32"),
        "W1": rng.standard_normal((n_in, n_hidden)) * np.sqrt(1 / n_in),
        "b1": np.zeros(n_hidden),
        "W2": rng.standard_normal((n_hidden, n_out)) * np.sqrt(1 / n_hidden),
        "b2": np.zeros(n_out),
    }


PARAMS = ("W1", "b1", "W2", "b2")


def mean_xent(T: Any, z: Any, labels: Any) -> Any:  # noqa: N803 - Theano's name
    """Mean categorical cross-entropy of softmax(z) against integer labels."""
    if hasattr(T, "nnet"):  # eqsat has Theano's T.nnet
        return T.mean(T.nnet.categorical_crossentropy(T.nnet.softmax(z), labels))
    p = T.special.softmax(z, axis=-1)  # PyTensor dropped T.nnet
    return -T.mean(T.log(p[T.arange(labels.shape[0]), labels]))


def mlp_graph(tl: TheanoLike, data: dict[str, np.ndarray]) -> Graph:
    T = tl.T  # noqa: N806 - Theano's name
    x, labels = T.dmatrix("x"), T.ivector("labels")
    params = [tl.lib.shared(data[k].copy(), name=k) for k in PARAMS]
    w1, b1, w2, b2 = params
    h = T.tanh(T.dot(x, w1) + b1)
    cost = mean_xent(T, T.dot(h, w2) + b2, labels)
    grads = tl.lib.grad(cost, params)
    updates = [(v, v - LR * g) for v, g in zip(params, grads, strict=True)]
    return Graph([x, labels], [cost], updates, params, (data["x"], data["labels"]))


def mlp_numpy(data: dict[str, np.ndarray]) -> Call:
    x, labels = data["x"], data["labels"]
    rows = np.arange(len(labels))
    state = [data[k].copy() for k in PARAMS]

    def call() -> list:
        w1, b1, w2, b2 = state
        h = np.tanh(x @ w1 + b1)
        z = h @ w2 + b2
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        cost = -np.log(p[rows, labels]).mean()
        dz = p
        dz[rows, labels] -= 1
        dz /= len(labels)
        dh = (dz @ w2.T) * (1 - h * h)
        grads = [x.T @ dh, dh.sum(axis=0), h.T @ dz, dz.sum(axis=0)]
        state[:] = [v - LR * g for v, g in zip(state, grads, strict=True)]
        return [cost, *state]

    return call


def mlp_jax_loss(jax: Any) -> Callable:
    jnp = jax.numpy

    def loss(params: tuple, x: Any, labels: Any) -> tuple:
        w1, b1, w2, b2 = params
        p = jax.nn.softmax(jnp.tanh(x @ w1 + b1) @ w2 + b2, axis=-1)
        cost = -jnp.log(p[jnp.arange(labels.shape[0]), labels]).mean()
        return cost, (cost,)

    return loss


def mlp_make(data: dict[str, np.ndarray]) -> Callable[[str], Call]:
    def make(name: str) -> Call:
        if name == "numpy":
            return mlp_numpy(data)
        if name.startswith("jax"):
            jax = import_jax()
            params = tuple(jax.device_put(data[k]) for k in PARAMS)
            args = (jax.device_put(data["x"]), jax.device_put(data["labels"]))
            return jax_call(jax, jax_sgd_step(jax, mlp_jax_loss(jax)), params, args)
        tl = theano_like(name)
        return theano_call(tl, mlp_graph(tl, data))

    return make


# --- (c) elementwise, (d) per-call overhead -------------------------------------------------


def chain(m: Any, x: Any, y: Any) -> Any:
    """The elementwise chain, in any of np, jax.numpy and T."""
    return m.exp(-x * x) * m.log1p(y * y) + m.tanh(x - y) * 0.5


def simplifiable(m: Any, x: Any, a: Any, b: Any, c: Any) -> Any:
    """Equal to x*(b + c) for nonzero a; every implementation gets it unsimplified."""
    return m.log(m.exp(x)) * (a * b + a * c) / a


def elementwise_make(expr: Callable, arrays: Sequence[np.ndarray]) -> Callable[[str], Call]:
    def make(name: str) -> Call:
        if name == "numpy":
            return lambda: expr(np, *arrays)
        if name.startswith("jax"):
            jax = import_jax()
            f = jax.jit(lambda *v: expr(jax.numpy, *v))
            args = [jax.device_put(a) for a in arrays]
            return lambda: f(*args).block_until_ready()
        tl = theano_like(name)
        inputs = [tl.T.dvector(f"v{i}") for i in range(len(arrays))]
        f = tl.function(inputs, expr(tl.T, *inputs))
        return lambda: f(*arrays)

    return make


def overhead_make(name: str) -> Call:
    """f(x) = x*2 on a float64 scalar, called with a Python float."""
    if name == "numpy":
        return lambda: np.multiply(1.5, 2.0)
    if name.startswith("jax"):
        f = import_jax().jit(lambda x: x * 2)
        return lambda: f(1.5).block_until_ready()
    tl = theano_like(name)
    x = tl.T.dscalar("x")
    f = tl.function([x], x * 2)
    return lambda: f(1.5)


# --- timing and tables ----------------------------------------------------------------------


def time_calls(call: Call, s: Settings, loops: int = 1) -> list[float]:
    """Seconds per call of samples of `loops` calls: one round's share of a row's budget."""
    samples: list[float] = []
    budget, least = s.budget / s.rounds, -(-s.min_runs // s.rounds)
    most = max(least, s.max_runs // s.rounds)
    gc.disable()  # as timeit does: a collection inside a sample is noise
    try:
        start = time.perf_counter()
        for n in itertools.count():
            if n >= WARM and time.perf_counter() - start >= WARM_S:
                break
            call()
        start = time.perf_counter()
        while len(samples) < most and (
            len(samples) < least or time.perf_counter() - start < budget
        ):
            t = time.perf_counter()
            for _ in range(loops):
                call()
            samples.append((time.perf_counter() - t) / loops)
    finally:
        gc.enable()
    return samples


def snapshot(result: Any) -> list[np.ndarray]:
    """Copies of a call's results (a backend may reuse its buffers on the next call)."""
    items = result if isinstance(result, list | tuple) else [result]
    return [np.array(r) for r in items]


def agrees(got: list[np.ndarray], want: list[np.ndarray]) -> bool:
    return len(got) == len(want) and all(
        g.shape == w.shape and np.allclose(g, w, rtol=RTOL) for g, w in zip(got, want, strict=True)
    )


def mismatch_note(got: list[np.ndarray], want: list[np.ndarray]) -> str:
    """Where a result differs: its non-finite values, or its largest relative difference."""
    if len(got) != len(want):
        return f"{len(got)} results, expected {len(want)}"
    notes = []
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g.shape != w.shape:
            notes.append(f"result {i} has shape {g.shape}, expected {w.shape}")
        elif not np.allclose(g, w, rtol=RTOL):
            g, w = g.astype(float), w.astype(float)
            finite = np.isfinite(g) & np.isfinite(w)
            rel = np.abs(g - w)[finite] / np.maximum(np.abs(w[finite]), 1e-300)
            worst = f"{rel.max():.2g}" if rel.size else "-"
            bad = int(g.size - np.isfinite(g).sum())
            notes.append(f"result {i}: {bad} non-finite, elsewhere max relative difference {worst}")
    return "; ".join(notes)


def prepare(
    name: str, make: Callable[[str], Call], want: list | None
) -> tuple[Row, Call | None, list | None]:
    """Build and call once from the starting state to check against `want`: the row (its time
    not set yet), the call to time (None where it can't run) and the result."""
    try:
        call = make(name)
        with np.errstate(all="ignore"):  # naive forms overflow; the check says if that matters
            got = snapshot(call())
    except Unavailable as why:
        return Row(name, check=why.check, note=why.note), None, None
    except Exception as err:  # one broken implementation must not stop the others
        return Row(name, check="error", note=f"{type(err).__name__}: {err}"), None, None
    check = "reference" if want is None else "ok" if agrees(got, want) else "MISMATCH"
    note = mismatch_note(got, want) if check == "MISMATCH" else ""
    return Row(name, check=check, note=note), call, got


def eqsat_reference(times: dict[str, float | None]) -> tuple[str, float | None]:
    """'eqsat c' if it ran, else the first eqsat mode that did (dicts keep --modes order)."""
    ran = [k for k, v in times.items() if k.startswith("eqsat ") and v is not None]
    name = "eqsat c" if "eqsat c" in ran else ran[0] if ran else "eqsat"
    return name, times.get(name)


def ratio(seconds: float | None, ref: float | None) -> str:
    return "-" if seconds is None or not ref else f"{seconds / ref:.2f}"


def print_table(headers: list[str], cells: list[list[str]]) -> None:
    width = [max(len(row[i]) for row in [headers, *cells]) for i in range(len(headers))]
    for row in [headers, ["-" * w for w in width], *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, width, strict=True)).rstrip())


def print_rows(title: str, rows: list[Row]) -> None:
    ref_name, ref = eqsat_reference({r.name: r.seconds for r in rows})
    print(f"\n{title}")
    cells = [[r.name, fmt_time(r.seconds), r.runs, ratio(r.seconds, ref), r.check] for r in rows]
    print_table(["", "median", "runs", f"x {ref_name}", "check"], cells)
    for r in rows:
        if r.note:
            print(f"  {r.name}: {r.note}")


def bench(
    make: Callable[[str], Call],
    names: list[str],
    s: Settings,
    loops: int = 1,
    extra: Sequence[tuple[str, Call]] = (),
) -> list[Row]:
    """Rows for `names`, the NumPy one built first as the reference of the others' check, then
    the `extra` (name, call) rows, unchecked. The rows are timed in turns, `s.rounds` of them,
    so that a machine that slows down or speeds up halfway through a workload (this VM does)
    weighs on every row alike."""
    numpy_row, numpy_call, want = prepare("numpy", make, None)
    rows = [(numpy_row, numpy_call) if n == "numpy" else prepare(n, make, want)[:2] for n in names]
    rows += [(Row(name), call) for name, call in extra]
    samples: list[list[float]] = [[] for _ in rows]
    with np.errstate(all="ignore"):
        for _ in range(s.rounds):
            for (_, call), times in zip(rows, samples, strict=True):
                if call is not None:
                    time.sleep(SETTLE)  # (the last row's threads stop spinning)
                    times += time_calls(call, s, loops)
    for (row, call), times in zip(rows, samples, strict=True):
        if call is not None:
            row.seconds = statistics.median(times)
            row.runs = str(len(times)) if loops == 1 else f"{len(times)} x {loops}"
    return [row for row, _ in rows]


# --- workloads ------------------------------------------------------------------------------


def bench_a(names: list[str], s: Settings) -> None:
    for n in s.sizes:
        rows = bench(lr_make(lr_data(n)), [*names, "jax jit, stable loss"], s)
        title = f"(a) logistic regression training step, N={n}, feats=784"
        print_rows(title, rows)


def bench_b(names: list[str], s: Settings) -> None:
    rows = bench(mlp_make(mlp_data()), names, s)
    print_rows("(b) MLP training step, batch 256, 784 -> 512 -> 10", rows)


def bench_c(names: list[str], s: Settings) -> None:
    n = s.elements
    rng = np.random.default_rng(0)
    x, y, a, b, c = (rng.standard_normal(n) for _ in range(5))
    # The floor: the time to move the bytes with nothing to compute. np.add(x, y, out=out) reads
    # 2 arrays and writes 1 (24 bytes a element) into a buffer that is already paged in.
    out = np.empty(n)
    floor = ("floor: np.add(x, y, out=)", lambda: np.add(x, y, out=out))
    rows = bench(elementwise_make(chain, [x, y]), names, s, extra=[floor])
    add = rows[-1].seconds
    print(f"\n(c) memory bandwidth of np.add(x, y, out=): {24 * n / add / 1e9:.1f} GB/s")
    print_rows(f"(c) exp(-x*x)*log1p(y*y) + tanh(x-y)*0.5, {n:.0e} float64", rows)
    rows = bench(elementwise_make(simplifiable, [x, a, b, c]), names, s, extra=[floor])
    # x*(b+c) reads 3 arrays and writes 1: 32 bytes a element, 4/3 of np.add's at its bandwidth
    add = rows.pop()
    rows.append(Row("floor: 4/3 x np.add(x, y, out=)", add.seconds * 4 / 3, add.runs))
    print_rows(f"(c) log(exp(x))*(a*b + a*c)/a  (= x*(b+c)), {n:.0e} float64", rows)


def bench_d(names: list[str], s: Settings) -> None:
    fixed = dataclasses.replace(s, min_runs=s.samples, max_runs=s.samples)
    rows = bench(overhead_make, names, fixed, loops=s.loops)
    print_rows("(d) per-call overhead, f(x) = x*2 on a float64 scalar, f(1.5)", rows)


# --- (e) compile time, in subprocesses ------------------------------------------------------


def compile_child(name: str, n: int) -> dict:
    """In a fresh process: seconds to create (a)'s training function and to make its 1st call."""
    data = lr_data(n)
    try:
        if name.startswith("jax"):
            jax = import_jax()
            step = jax_sgd_step(jax, lr_jax_loss(jax, stable=False))
            params, args = lr_jax_state(jax, data)
            start = time.perf_counter()
            f = step.lower(params, *args).compile()  # trace, lower to XLA, compile
            created = time.perf_counter()
            jax.block_until_ready(f(params, *args))
        else:
            tl = theano_like(name)
            graph = lr_graph(tl, data)
            start = time.perf_counter()
            f = tl.function(graph.inputs, graph.outputs, graph.updates)
            created = time.perf_counter()
            f(*graph.args)  # numba compiles on the first call
    except Unavailable as why:
        return {"check": why.check, "note": why.note}
    return {"function": created - start, "call": time.perf_counter() - created}


def child_env(cache: str) -> dict[str, str]:
    """The environment of a compile child whose every compile cache lives under `cache`."""
    env = dict(os.environ)
    flags = [f for f in [env.get("PYTENSOR_FLAGS", "")] if f]
    env.update(
        EQSAT_COMPILEDIR=os.path.join(cache, "eqsat"),
        PYTENSOR_FLAGS=",".join([*flags, f"base_compiledir={os.path.join(cache, 'pytensor')}"]),
        NUMBA_CACHE_DIR=os.path.join(cache, "numba"),
        JAX_COMPILATION_CACHE_DIR=os.path.join(cache, "jax"),
        # JAX caches only compilations over 1 s by default; cache them all, as the others do
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    )
    return env


def run_child(name: str, n: int, env: dict[str, str]) -> dict:
    command = [sys.executable, __file__, "--compile-child", name, "--n", str(n)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"check": "error", "note": f"exit {done.returncode}: {tail}"}


def bench_e(names: list[str], s: Settings) -> None:
    n = s.sizes[0]
    results = {}
    for name in [k for k in names if k != "numpy"]:
        with tempfile.TemporaryDirectory(prefix="bench_backend_") as cache:
            env = child_env(cache)
            results[name] = [run_child(name, n, env) for _ in ("cold", "warm")]
    totals = {
        k: [r["function"] + r["call"] if "function" in r else None for r in v]
        for k, v in results.items()
    }
    ref_name, _ = eqsat_reference({k: t[0] for k, t in totals.items()})
    ref = totals.get(ref_name, [None, None])
    print(f"\n(e) compile time of (a)'s training function (N={n}), each in a new process;")
    print("    cold: empty compile caches, warm: the same caches again; x eqsat: function+call")
    headers = ["", "cold function", "cold 1st call", "warm function", "warm 1st call"]
    cells = []
    for name, (cold, warm) in results.items():
        times = [fmt_time(r.get(k)) for r in (cold, warm) for k in ("function", "call")]
        ratios = [ratio(t, r) for t, r in zip(totals[name], ref, strict=True)]
        cells.append([name, *times, *ratios, cold.get("check", "-")])
    print_table([*headers, f"x {ref_name} cold", "warm", "check"], cells)
    for name, (cold, _) in results.items():
        if cold.get("note"):
            print(f"  {name}: {cold['note']}")


# --- main -----------------------------------------------------------------------------------


def versions() -> str:
    found = []
    for dist in ("numpy", "pytensor", "numba", "jax", "jaxlib"):
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{dist} not installed")
    return ", ".join(found)


WORKLOADS = {"a": bench_a, "b": bench_b, "c": bench_c, "d": bench_d, "e": bench_e}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few runs, small sizes")
    parser.add_argument("--modes", default="c,py", help="eqsat modes, comma-separated")
    parser.add_argument("--only", default="a,b,c,d,e", help="workloads, comma-separated")
    parser.add_argument("--compile-child", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=400, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compile_child:
        print(RESULT_TAG + json.dumps(compile_child(args.compile_child, args.n)))
        return
    settings = QUICK if args.quick else FULL
    names = [f"eqsat {m.strip()}" for m in args.modes.split(",") if m.strip()] + list(PEERS)
    print(f"python {platform.python_version()}, {versions()}, {os.cpu_count()} CPUs")
    threads = {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")}
    print(f"load average {os.getloadavg()[0]:.2f} (other work skews the times), threads {threads}")
    print(
        f"each row: median of its runs, timed for {settings.budget} s after "
        f"{settings.min_runs} runs (at most {settings.max_runs}), in {settings.rounds} turns "
        "taken in turn with the other rows"
    )
    start = time.perf_counter()
    for key in args.only.split(","):
        WORKLOADS[key.strip()](names, settings)
    print(f"\ntotal {time.perf_counter() - start:.0f} s, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
