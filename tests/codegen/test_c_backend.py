"""The C backend (mode="c") against the NumPy oracle (mode="py").

- Every elementwise op the C renderer has a row for, on each dtype it claims, over special
  values (signed zeros, infinities, nan, subnormals, the ends of integer ranges, division by 0
  and by -1); casts between every pair of dtypes; literals of every dtype.
- Reductions over every axis subset, with and without keepdims, on contiguous, transposed and
  empty inputs; max/min of an empty axis raise.
- Kernels with several outputs, intermediates among them; outputs are fresh arrays.
- Shapes that would make a kernel read out of bounds raise ValueError and change no shared
  variable.
- Arrays past the OpenMP threshold: flat and strided loops, full and partial reductions.
- Hypothesis random graphs of elementwise ops and a reduction over inputs of random rank,
  dtype and broadcastable pattern, fed transposed, reversed, strided, zero-stride, size-0 and
  size-1 arrays.

Exact ops (arithmetic, comparisons, rounding, casts) must agree bit for bit; transcendental
functions within a few ulp (libm and NumPy's SIMD loops differ), and float sums and products
within the rounding error of a different summation order. The random graphs therefore apply
steps (floor, comparisons, //, casts to integers) and cancelling ops (add, sub) only to exact
values. Bugs this file found have a regression test each, under "found by this file".
"""

from __future__ import annotations

import itertools
import math
import operator
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import eqsat as theano
import eqsat.tensor as T
from eqsat.codegen import c as c_backend
from eqsat.codegen import pool
from eqsat.codegen.c_ops import EXPR
from eqsat.config import config
from eqsat.graph import Variable, ancestors
from eqsat.ops import OPS, apply, constant
from eqsat.runtime.compiled import CThunk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from compare import assert_same  # noqa: E402

BACKEND_INDEPENDENT = True  # compares the backends itself (tests/conftest.py)
INF, NAN = float("inf"), float("nan")
MODES = ("py", "c")
TABLE_DTYPES = ["float64", "float32", "int8", "int32", "int64", "uint8", "uint64", "bool"]
FLOATS = ("float32", "float64")
# Results of these ops may differ by a few ulp between libm and NumPy's own loops.
TRANSCENDENTAL = {
    "exp", "log", "log1p", "expm1", "log2", "log10", "sin", "cos", "tan", "tanh", "erf",
    "sigmoid", "softplus", "pow",
}  # fmt: skip
ULPS = 8  # what two implementations of one transcendental function may differ by


@pytest.fixture(scope="module", autouse=True)
def compiledir(tmp_path_factory):
    old = config.compiledir
    config.compiledir = str(tmp_path_factory.mktemp("c_backend"))
    yield
    config.compiledir = old


# --------------------------------------------------------------------------- helpers
def compile_both(inputs, outputs, **kwargs) -> dict:
    kwargs.setdefault("optimizer", None)
    kwargs.setdefault("on_unused_input", "ignore")
    return {m: theano.function(inputs, outputs, mode=m, **kwargs) for m in MODES}


def run_both(inputs, outputs, values, **kwargs) -> list[tuple[np.ndarray, np.ndarray]]:
    """(C result, NumPy result) of each output."""
    fs = compile_both(inputs, outputs, **kwargs)
    got, want = fs["c"](*values), fs["py"](*values)
    return list(zip(got, want, strict=True))


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def specials(dtype: str) -> np.ndarray:
    """Values at the edges of `dtype`'s arithmetic."""
    if dtype == "bool":
        return np.array([False, True])
    if dtype in FLOATS:
        big, tiny = (1e300, 5e-324) if dtype == "float64" else (3e38, 1e-45)
        values = [0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 0.5, 3.0, -7.0, big, -big, tiny, INF, -INF, NAN]
        return np.array(values, dtype)
    info = np.iinfo(dtype)
    values = [0, 1, -1, 2, 7, -7, info.min, info.min + 1, info.max, info.max - 1, info.max // 2]
    values.append(info.max // 2 + 1)  # 2**63 for uint64: one past int64's range
    return np.array(sorted({v for v in values if info.min <= v <= info.max}), dtype)


def all_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(a, len(b)), np.tile(b, len(a))


def c_node(op: str, dtypes: list[str]) -> Variable | None:
    """op over vectors of `dtypes` when the graph builder accepts it and C compiles it."""
    xs = [T.tensor(dt, broadcastable=(False,)) for dt in dtypes]
    try:
        out = apply(op, xs)
    except (TypeError, ValueError):
        return None
    return out if c_backend.fusable(out.owner) else None


# --------------------------------------------------------------------------- op tables
UNARY_OPS = sorted(op for op in EXPR if op != "cast" and OPS[op].arity == 1)
BINARY_OPS = sorted(op for op in EXPR if OPS[op].arity == 2)
BINARY_DTYPES = [(d, d) for d in TABLE_DTYPES] + [
    ("int32", "float32"), ("uint8", "int8"), ("bool", "float32"), ("int64", "uint64"),
]  # fmt: skip


def op_tolerance(op: str, dtype: str) -> float:
    return ULPS * eps(dtype) if op in TRANSCENDENTAL and dtype in FLOATS else 0.0


def check_op_table(ops: list[str], dtypes: list[str], values: list[np.ndarray]) -> None:
    """Each op over vectors of `dtypes`, one kernel each in one library, against NumPy; all
    failing ops are reported together."""
    xs = [T.tensor(d, broadcastable=(False,), name=f"x{k}") for k, d in enumerate(dtypes)]
    fs = compile_both(xs, [apply(op, xs) for op in ops])
    in_c = {n.op for k in fs["c"].thunk.plan.kernels for n in k.nodes}
    assert in_c == set(ops), f"not compiled: {set(ops) - in_c}"
    failures = []
    for op, got, want in zip(ops, fs["c"](*values), fs["py"](*values), strict=True):
        what = f"{op}({', '.join(dtypes)}) on {[v.tolist() for v in values]}"
        try:
            rtol = op_tolerance(op, str(want.dtype))
            assert_same(got, want, what, rtol=rtol)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("dtype", TABLE_DTYPES)
def test_unary_ops_on_special_values(dtype):
    ops = [op for op in UNARY_OPS if c_node(op, [dtype]) is not None]
    check_op_table(ops, [dtype], [specials(dtype)])


@pytest.mark.parametrize(("dx", "dy"), BINARY_DTYPES)
def test_binary_ops_on_special_values(dx, dy):
    """Includes division and remainder by 0 and -1, and INT_MIN // -1."""
    ops = [op for op in BINARY_OPS if c_node(op, [dx, dy]) is not None]
    check_op_table(ops, [dx, dy], list(all_pairs(specials(dx), specials(dy))))


CAST_TARGETS = TABLE_DTYPES + ["int16", "uint16", "uint32"]


def cast_inputs(src: str, dst: str) -> np.ndarray:
    """Values whose conversion to dst is defined in C: floats going to an integer type are in
    its range (NumPy and C both leave nan and out-of-range conversions unspecified)."""
    values = specials(src)
    if src in FLOATS and dst not in FLOATS and dst != "bool":
        values = np.array([0.0, -0.0, 1.0, 2.5, 0.5, 3.9, 7.0, 100.7, 127.0], src)
        if not dst.startswith("u"):
            values = np.concatenate([values, -values])
    return values


@pytest.mark.parametrize("src", TABLE_DTYPES)
def test_casts(src):
    x = T.tensor(src, broadcastable=(False,), name="x")
    fs = compile_both([x], [T.cast(x, dst) for dst in CAST_TARGETS if dst != src])
    for k, dst in enumerate(d for d in CAST_TARGETS if d != src):
        values = cast_inputs(src, dst)
        got, want = fs["c"](values)[k], fs["py"](values)[k]
        assert_same(got, want, f"cast {values.tolist()} from {src} to {dst}")


def test_switch_over_dtypes():
    combos = [
        ("bool", "float64", "float64"), ("float64", "int32", "float32"),
        ("int32", "bool", "uint8"), ("uint8", "int64", "bool"), ("float32", "float32", "int8"),
    ]  # fmt: skip
    ins, outs, values = [], [], []
    for cond_dt, a_dt, b_dt in combos:
        c, a, b = (T.tensor(d, broadcastable=(False,)) for d in (cond_dt, a_dt, b_dt))
        ins += [c, a, b]
        outs.append(T.switch(c, a, b))
        conds, avals = all_pairs(specials(cond_dt), specials(a_dt))
        values += [conds, avals, np.resize(specials(b_dt)[::-1], len(conds))]
    fs = compile_both(ins, outs)
    assert len(fs["c"].thunk.plan.kernels) == len(combos)
    for combo, got, want in zip(combos, fs["c"](*values), fs["py"](*values), strict=True):
        assert_same(got, want, f"switch{combo}")


@pytest.mark.parametrize("dtype", CAST_TARGETS)
def test_literals(dtype):
    """Constants become C literals: each special value of `dtype` comes back exactly."""
    i = T.lvector("i")
    values = specials(dtype)
    out = constant(values[-1], dtype)
    for k in range(len(values) - 2, -1, -1):  # switch(i == k, v_k, ...): one kernel
        out = T.switch(T.eq(i, k), constant(values[k], dtype), out)
    ((got, want),) = run_both([i], [out], [np.arange(len(values))])
    assert_same(got, want, f"literals {values.tolist()}")
    assert_same(got, values, f"literals {values.tolist()}")


# --------------------------------------------------------------------------- reductions
AXIS_SUBSETS = [a for k in range(4) for a in itertools.combinations(range(3), k)]


def reduction_values(op: str, dtype: str, shape, rng) -> np.ndarray:
    """Values whose sums and products are exact in any order, so the results compare exactly."""
    if dtype == "bool":
        return rng.random(shape) < 0.6
    if op == "prod":
        pool = [1, -1, 2, -2, 0.5] if dtype in FLOATS else [1, -1, 2, -1, 1, 3]
    else:
        pool = np.arange(-16, 17) / (8 if dtype in FLOATS else 1)
    return rng.choice(pool, shape).astype(dtype)


# Each dtype's ops alternate keepdims over the axis subsets, so every subset gets both.
REDUCTION_OPS = {"float32": ("sum", "prod", "max", "min"), "int32": ("sum", "prod", "min"),
                 "bool": ("sum", "max")}  # fmt: skip


def reduction_functions(op: str, dtype: str) -> tuple[list, dict]:
    x = T.tensor(dtype, broadcastable=(False, False, False), name="x")
    parity = REDUCTION_OPS[dtype].index(op) % 2
    cases = [(axis, (k + parity) % 2 == 1) for k, axis in enumerate(AXIS_SUBSETS)]
    if dtype == "float32":
        cases += [(None, op in ("sum", "max")), (-1, True), ((-3, 2), False)]
    outs = [getattr(T, op)(x, axis=axis, keepdims=keep) for axis, keep in cases]
    return cases, compile_both([x], outs)


def layouts(a: np.ndarray) -> dict[str, np.ndarray]:
    """`a` as a contiguous array, a transposed view, and a view with negative strides."""
    transposed = np.ascontiguousarray(a.transpose(2, 0, 1)).transpose(1, 2, 0)
    reversed_ = np.flip(np.flip(a, 1).copy(), 1)
    return {"contiguous": a, "transposed": transposed, "reversed": reversed_}


@pytest.mark.parametrize(("op", "dtype"), [(o, d) for d, ops in REDUCTION_OPS.items() for o in ops])
def test_reductions_over_every_axis_subset(op, dtype):
    cases, fs = reduction_functions(op, dtype)
    rng = np.random.default_rng(7)
    shapes = [(2, 3, 4), (1, 5, 1), (3, 1, 2)]
    if op in ("sum", "prod"):  # max and min of an empty axis raise: test_max_min_of_empty
        shapes += [(0, 3, 4), (2, 0, 4), (2, 3, 0)]
    for shape in shapes:
        for name, a in layouts(reduction_values(op, dtype, shape, rng)).items():
            got, want = fs["c"](a), fs["py"](a)
            for (axis, keep), g, w in zip(cases, got, want, strict=True):
                what = f"{op}({dtype} {name} {shape}, axis={axis}, keepdims={keep})"
                assert_same(g, w, what, zeros=False)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_of_empty(op):
    x = T.dtensor3("x")
    empty = np.zeros((2, 0, 3))
    for axis, keep in [(1, False), (None, True), ((0, 1), False)]:
        fs = compile_both([x], getattr(T, op)(x, axis=axis, keepdims=keep))
        for mode in MODES:
            with pytest.raises(ValueError):
                fs[mode](empty)
    cases = [(0, False), (0, True), ((0, 2), False), (2, True)]  # the empty axis is kept
    outs = [getattr(T, op)(x, axis=axis, keepdims=keep) for axis, keep in cases]
    for (axis, keep), (got, want) in zip(cases, run_both([x], outs, [empty]), strict=True):
        assert_same(got, want, f"{op} axis={axis} keepdims={keep}")


def test_reduction_of_nan_and_infinities():
    x = T.dmatrix("x")
    outs = [f(x, axis=a) for f in (T.sum, T.prod, T.max, T.min) for a in (None, 0, 1)]
    a = np.array([[1.0, NAN, 2.0], [INF, 3.0, -INF], [-0.0, 4.0, INF], [1.0, 2.0, 3.0]])
    for got, want in run_both([x], outs, [a]):
        assert_same(got, want, "reduction of specials", zeros=False)


# --------------------------------------------------------------------------- several outputs
@pytest.mark.parametrize("form", ["chain", "fused"])
def test_outputs_of_one_kernel_are_fresh_arrays(form):
    x = T.dvector("x")
    e, t = T.exp(x), T.tanh(x)
    if form == "chain":  # e is its own kernel: three kernels read it
        outs = [e, e * 2, (e * 3).sum()]
    else:  # e and the sum in one kernel, t and t + 1 in another; x and e twice
        outs = [e, (e * 3).sum(), x, e, t + 1, t, x[::-1]]
    fs = compile_both([x], outs)
    if form == "fused":
        writes = [len(k.outputs) for k in fs["c"].thunk.plan.kernels]
        assert max(writes) >= 2, writes
    a = np.linspace(-2, 2, 9)
    a0 = a.copy()
    got, want = fs["c"](a), fs["py"](a)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_same(g, w, f"output {k}", rtol=1e-14)
        assert g.flags.writeable and g.flags.owndata
        assert not np.shares_memory(g, a)
    for g, h in itertools.combinations(got, 2):
        assert not np.shares_memory(g, h)
    np.testing.assert_array_equal(a, a0)
    for g in got:  # writing into the outputs changes neither the input nor the next call
        g[...] = 0
    np.testing.assert_array_equal(a, a0)
    for k, (g, w) in enumerate(zip(fs["c"](a), want, strict=True)):
        assert_same(g, w, f"output {k} of the second call", rtol=1e-14)


def test_intermediate_of_a_reduction_kernel_is_an_output():
    x = T.tensor("float32", broadcastable=(False, True, False), name="x")
    y = T.fmatrix("y")
    e = T.exp(x) * y.dimshuffle(0, "x", 1)
    outs = [e, e.sum(axis=2), e.max(axis=(0, 1), keepdims=True), T.sqrt(e), e.sum()]
    rng = np.random.default_rng(3)
    xv = rng.uniform(-1, 1, (4, 1, 5)).astype("float32")
    yv = rng.uniform(0, 1, (4, 5)).astype("float32")
    for got, want in run_both([x, y], outs, [xv, yv]):
        assert_same(got, want, "float32 chain", rtol=1e-5)


# --------------------------------------------------------------------------- out of bounds
def test_mismatched_vectors_raise():
    x, y = T.dvectors("x", "y")
    fs = compile_both([x, y], [x + y, (x * y).sum()])
    for mode in MODES:
        with pytest.raises(ValueError):
            fs[mode](np.ones(3), np.ones(5))
        with pytest.raises(ValueError):
            fs[mode](np.ones(40000), np.ones(40001))


def test_mismatched_row_raises():
    m, r = T.dmatrix("m"), T.drow("r")
    fs = compile_both([m, r], [m + r, (m * r).sum(axis=0)])
    for mode in MODES:
        with pytest.raises(ValueError):
            fs[mode](np.ones((4, 3)), np.ones((1, 5)))
        with pytest.raises(ValueError):  # the row's broadcastable axis must have length 1
            fs[mode](np.ones((4, 3)), np.ones((4, 3)))


def test_kernel_checks_shapes_the_function_cannot():
    """x[1:] has a length only known at run time: the kernel itself must refuse it."""
    x, y = T.dvectors("x", "y")
    fs = compile_both([x, y], [x[1:] + y, (x[1:] * y).sum(), T.exp(x[1:] - y)])
    fits = (np.arange(4.0), np.ones(3))
    for got, want in zip(fs["c"](*fits), fs["py"](*fits), strict=True):
        assert_same(got, want, "shapes that fit", rtol=1e-15)
    for mode in MODES:
        for n in (5, 2, 0):
            with pytest.raises(ValueError, match="do not match"):
                fs[mode](np.arange(4.0), np.ones(n))


def test_kernel_refuses_mismatched_operands_directly():
    """The C function's own check, without the function's shape checks in front of it."""
    x, y = T.dvectors("x", "y")
    r = T.tensor("float64", broadcastable=(True, False), name="r")
    m = T.dmatrix("m")
    cases = [
        ([x + y], {x: np.ones(3), y: np.ones(5)}),
        ([(x * y).sum()], {x: np.ones(70000), y: np.ones(3)}),
        ([m + r], {m: np.ones((4, 3)), r: np.ones((1, 5))}),
        ([m + r], {m: np.ones((4, 3)), r: np.ones((2, 3))}),  # broadcastable axis of length 2
        ([(m * r).max(axis=1)], {m: np.ones((4, 3)), r: np.ones((3, 3))}),
    ]
    for outs, values in cases:
        thunk = CThunk(outs)
        assert thunk.plan.kernels
        with pytest.raises(ValueError, match="do not match"):
            thunk({id(v): a for v, a in values.items()})


def test_failing_call_leaves_shared_variables_unchanged():
    x = T.dvector("x")
    w0 = np.arange(4.0)
    w = theano.shared(w0.copy(), name="w")
    f = theano.function([x], (w * x).sum(), updates=[(w, w * 2 - x)], mode="c", optimizer=None)
    g = theano.function([x], x.sum(), updates=[(w, w + T.exp(x[1:]))], mode="c", optimizer=None)
    for fn, bad in ((f, 3), (f, 5), (g, 4), (g, 6), (g, 1)):  # g: only the kernel can tell
        with pytest.raises(ValueError):
            fn(np.ones(bad))
        np.testing.assert_array_equal(w.get_value(), w0)
    f(np.ones(4))
    np.testing.assert_array_equal(w.get_value(), w0 * 2 - 1)
    g(np.zeros(5))
    np.testing.assert_array_equal(w.get_value(), w0 * 2)


# --------------------------------------------------------------------------- large arrays
def test_large_elementwise_flat_and_strided():
    x = T.dmatrix("x")
    out = T.sqrt(T.abs_(x)) / (1 + T.exp(-x)) - T.tanh(x)
    rng = np.random.default_rng(0)
    base = rng.uniform(-5, 5, (700, 600))
    assert base.size % pool.CHUNK  # the flat loop's chunks (in the pool), the last one partial
    fs = compile_both([x], out)
    for a in (base, base.T, base[::2, ::-1], base[:, 100:400]):
        assert a.size > 1 << 15
        assert_same(fs["c"](a), fs["py"](a), f"large {a.shape}", rtol=1e-13, atol=1e-14)


def test_large_full_reduction_matches_fsum():
    x = T.dvector("x")
    values = np.random.default_rng(1).uniform(0, 1, 10**6)
    got = theano.function([x], x.sum(), mode="c", optimizer=None)(values)
    exact = math.fsum(values)
    assert abs(got - exact) <= 1e-12 * exact
    m = T.dmatrix("m")
    f = theano.function([m], [m.sum(), (m * 2).sum(), m.max(), m.min()], mode="c", optimizer=None)
    square = values.reshape(1000, 1000)
    for a in (square, square.T, square[::-1]):
        total, twice, high, low = f(a)
        assert abs(total - exact) <= 1e-12 * exact and abs(twice - 2 * exact) <= 2e-12 * exact
        assert (high, low) == (values.max(), values.min())
        assert all(f(a)[0] == total for _ in range(3))  # threads add their parts in order


def test_large_reductions_propagate_nan_from_any_thread():
    x = T.fvector("x")
    f = theano.function([x], [x.max(), x.min(), x.sum(), x.prod()], mode="c", optimizer=None)
    n = 300_000  # past c_backend.PARALLEL_CHEAP: both threads
    assert n > c_backend.PARALLEL_CHEAP
    for where in (0, 123_456, n - 1):
        a = np.ones(n, "float32")
        a[where] = NAN
        assert all(np.isnan(r) for r in f(a)), where
    a = np.zeros(n, "float32")
    a[200_000], a[270_000] = 5, -3  # in a later thread's share
    assert f(a)[:2] == [5, -3]


@pytest.mark.parametrize("keep", [False, True])
def test_large_row_and_column_sums(keep):
    m = T.dmatrix("m")
    outs = [m.sum(axis=1, keepdims=keep), m.sum(axis=0, keepdims=keep), (m * m).max(axis=0)]
    rng = np.random.default_rng(2)
    base = rng.uniform(-1, 1, (600, 700))
    fs = compile_both([m], outs)
    for a in (base, np.ascontiguousarray(base.T).T, base[::-1]):
        for g, w in zip(fs["c"](a), fs["py"](a), strict=True):
            assert_same(g, w, f"row/column sums keepdims={keep}", rtol=1e-12, atol=1e-10)


def test_column_sums_longer_than_a_row_of_partials():
    # the kept innermost axis runs in chunks of c_backend.CHUNK per thread, the reduced axes outside
    t3 = T.tensor("float64", broadcastable=(False, False, False), name="t3")
    sq = t3 * t3
    outs = [sq.sum(axis=1), sq, T.exp(t3).max(axis=(0, 1), keepdims=True)]
    rng = np.random.default_rng(5)
    a = rng.uniform(-1, 1, (3, 40, 2 * c_backend.CHUNK + 77))
    a[1, 7, c_backend.CHUNK + 3] = NAN  # in a later chunk
    (total, square, high) = theano.function([t3], outs, mode="c", optimizer=None)(a)
    np.testing.assert_allclose(total, (a * a).sum(axis=1), rtol=1e-13)
    np.testing.assert_array_equal(square, a * a)
    want = np.exp(a).max(axis=(0, 1), keepdims=True)  # (exp within an ulp: libmvec's)
    assert np.isnan(high[0, 0, c_backend.CHUNK + 3]) and np.isnan(want).sum() == 1
    np.testing.assert_allclose(high, want, rtol=4e-16)


def test_large_integer_division_by_zero_and_minus_one():
    x, y = T.ivectors("x", "y")
    low, high = np.iinfo("int32").min, np.iinfo("int32").max
    rng = np.random.default_rng(9)
    xv = rng.choice(np.array([low, -7, -1, 0, 1, 7, high], "int32"), 6 * 10**5)
    yv = rng.choice(np.array([0, -1, 1, 3, -3, low], "int32"), 6 * 10**5)
    fs = compile_both([x, y], [x // y, x % y, (x // y).sum(), (x % y).max()])
    for a, b in ((xv, yv), (xv[::2], yv[1::2])):
        for k, (got, want) in enumerate(zip(fs["c"](a, b), fs["py"](a, b), strict=True)):
            assert_same(got, want, f"output {k}")


def test_large_integer_and_float32_reductions():
    x, y = T.ivector("x"), T.fvector("y")
    rng = np.random.default_rng(4)
    xv = rng.integers(-(2**31), 2**31, 300_000, dtype="int32")
    yv = rng.uniform(0, 1, 300_000).astype("float32")
    outs = [x.sum(), (x * 3).sum(), x.max(), (x > 0).sum(), y.sum(), T.exp(y).sum()]
    for k, (got, want) in enumerate(run_both([x, y], outs, [xv, yv])):
        assert_same(got, want, f"output {k}", rtol=1e-5 if got.dtype.kind == "f" else 0)
    total = float(theano.function([y], y.sum(), mode="c", optimizer=None)(yv))
    assert abs(total - math.fsum(yv)) <= 2e-7 * math.fsum(yv)  # summed in double


# --------------------------------------------------------------------------- layouts
def test_odd_memory_layouts():
    """Zero strides, Fortran order, negative strides, unaligned data, 0-d arrays."""
    x = T.dmatrix("x")
    r = T.drow("r")
    s = T.dscalar("s")
    outs = [(x - r) * s, T.exp(x - r).sum(axis=0), (x / s).max(), T.maximum(x, s)]
    fs = compile_both([x, r, s], outs)
    rng = np.random.default_rng(5)
    base = rng.uniform(-3, 3, (5, 4))
    buf = bytearray(base.nbytes + 1)
    unaligned = np.frombuffer(buf, "float64", count=base.size, offset=1).reshape(5, 4)
    unaligned[:] = base
    read_only = base.copy()
    read_only.flags.writeable = False
    xs = [
        base, np.asfortranarray(base), base[::-1, ::-1], np.broadcast_to(base[:1], (5, 4)),
        np.broadcast_to(base[:, :1], (5, 4)), unaligned, base[:, 1:3], base[::2],
        base.astype(">f8"), read_only,
    ]  # fmt: skip
    for a in xs:
        row = rng.uniform(-1, 1, (1, 2 * a.shape[1]))[:, ::2]
        for sv in (np.float64(2.0), np.array(-0.5)):
            got, want = fs["c"](a, row, sv), fs["py"](a, row, sv)
            for k, (g, w) in enumerate(zip(got, want, strict=True)):
                assert_same(g, w, f"output {k} for strides {a.strides}", rtol=1e-13)


# --------------------------------------------------------------------------- found by this file
def test_sgn_of_signed_zeros_is_positive_zero():
    """NumPy's sign(-0.0) is +0.0 (eq_sign_D returned x for zeros)."""
    x = T.dvector("x")
    ((got, want),) = run_both([x], [T.sgn(x)], [np.array([-0.0, 0.0, NAN, -2.0])])
    assert_same(got, want, "sgn")
    assert not np.signbit(got[:2]).any()


@pytest.mark.parametrize("fn", [T.maximum, T.minimum])
def test_extremum_of_signed_zeros_is_the_second_operand(fn):
    """NumPy's maximum(0.0, -0.0) is -0.0: the second operand when they compare equal."""
    x, y = T.fvectors("x", "y")
    pair = np.array([0.0, -0.0], "float32")
    ((got, want),) = run_both([x, y], [fn(x, y)], [pair, pair[::-1].copy()])
    assert_same(got, want, fn.__name__)
    np.testing.assert_array_equal(np.signbit(got), [True, False])


def test_no_fused_multiply_add():
    """Each operation rounds as in NumPy: gcc's default -ffp-contract=fast (under -std=gnu11)
    fused x*y - x*z into an FMA, which gave 2e-16 for y == z."""
    x, y, z = T.dvectors("x", "y", "z")
    a = np.random.default_rng(6).uniform(-2, 2, (2, 1000))
    ((got, want),) = run_both([x, y, z], [x * y - x * z], [a[0], a[1], a[1]])
    assert not want.any()
    assert_same(got, want, "x*y - x*z with y == z")


def test_int64_uint64_comparisons_are_exact():
    """Not through float64, which rounds 2**63 - 1 and 2**63 to the same number."""
    x, y = T.lvector("x"), T.tensor("uint64", broadcastable=(False,), name="y")
    xv = np.array([2**63 - 1, -1, 2**62 + 1, 2**63 - 1], "int64")
    yv = np.array([2**63, 2**64 - 1, 2**62, 2**63 - 1], "uint64")
    outs = [T.lt(x, y), T.eq(x, y), T.ge(x, y), T.gt(y, x), T.neq(y, x), T.le(y, x)]
    results = run_both([x, y], outs, [xv, yv])
    for got, want in results:
        assert_same(got, want, f"comparisons of {xv.tolist()} with {yv.tolist()}")
    np.testing.assert_array_equal(results[0][0], [True, True, False, False])  # x < y


def test_float32_sums_accumulate_in_double():
    """As the reference does: a partial sum past float32's range does not overflow."""
    x = T.fvector("x")
    fs = compile_both([x], [x.sum(), x.prod(), x.sum(axis=0, keepdims=True)])
    for values in ([3e38, 3e38, -3e38], [1e30, 1e30, 1e-30]):
        a = np.array(values, "float32")
        for k, (got, want) in enumerate(zip(fs["c"](a), fs["py"](a), strict=True)):
            assert_same(got, want, f"output {k} of {values}")
    assert fs["c"](np.array([3e38, 3e38, -3e38], "float32"))[0] == np.float32(3e38)


def test_default_optimizer_on_fixed_graphs():
    x, y = T.dmatrices("x", "y")
    v = T.dvector("v")
    e = T.exp(x - x.max(axis=1, keepdims=True))
    graphs = [
        e / e.sum(axis=1, keepdims=True),
        T.log(1 + T.exp(x)) * 2 + y,
        1 / (1 + T.exp(-x)) - T.nnet.sigmoid(y),
        T.dot(x, y) + v,
        (x * 2 + x * 3).sum(axis=0) / T.sqrt((y**2).sum()),
        T.switch(T.gt(x, 0), x, 0.01 * x).mean(),
    ]
    rng = np.random.default_rng(8)
    values = [rng.uniform(-3, 3, (4, 4)), rng.uniform(-3, 3, (4, 4)), rng.uniform(-3, 3, 4)]
    f_c = theano.function([x, y, v], graphs, mode="c", on_unused_input="ignore")
    f_py = theano.function([x, y, v], graphs, mode="py", optimizer=None, on_unused_input="ignore")
    assert f_c.thunk.plan.kernels
    for k, (g, w) in enumerate(zip(f_c(*values), f_py(*values), strict=True)):
        assert_same(g, w, f"graph {k}", rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- random graphs
@dataclass
class Val:
    """A built expression, and how closely the two backends must agree on it."""

    var: Variable
    text: str
    tol: float = 0.0  # relative error bound between backends; 0 means bit for bit


FLOAT_LITERALS = [0.0, -0.0, 1.0, -1.0, 0.5, 2.5, -3.0, INF, NAN, 1e300]
INT_LITERALS = [0, 1, -1, 2, 7, -128, 255, 1000]
UNARY = {
    "neg": operator.neg, "abs": T.abs_, "sgn": T.sgn, "floor": T.floor, "ceil": T.ceil,
    "round": T.round, "sqr": T.sqr, "sqrt": T.sqrt, "invert": T.invert, "exp": T.exp,
    "log": T.log, "log1p": T.log1p, "expm1": T.expm1, "tanh": T.tanh, "erf": T.erf,
    "sigmoid": T.nnet.sigmoid, "softplus": T.nnet.softplus, "sin": T.sin, "cos": T.cos,
}  # fmt: skip
BINARY = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
    "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow,
    "maximum": T.maximum, "minimum": T.minimum, "lt": T.lt, "gt": T.gt, "le": T.le,
    "ge": T.ge, "eq": T.eq, "neq": T.neq, "and": T.and_, "or": T.or_, "xor": T.xor,
}  # fmt: skip
# The only ops that take an inexact operand (one of a transcendental function's results):
# they keep its relative error bounded (times this factor). Steps (rounding, comparisons,
# integer division, casts to integers) would turn an ulp into a different result, add and
# sub could cancel it into anything, log and sin amplify it near 1 and for large arguments.
CARRIES = {"neg": 1, "abs": 1, "sqrt": 1, "sqr": 2, "tanh": 1, "erf": 1, "exp": 1000,
           "expm1": 1000, "sigmoid": 1000, "softplus": 1000, "mul": 1, "div": 1,
           "maximum": 1, "minimum": 1}  # fmt: skip
LENGTHS = st.sampled_from([2, 3, 1, 7, 0, 4])
LAYOUTS = ["c", "f", "transposed", "reversed", "strided", "zero_stride"]


def _float_tol(var: Variable) -> float:
    return ULPS * eps(var.dtype) if var.dtype in FLOATS else 0.0


class GraphBuilder:
    """Draws and builds a random expression over `inputs` at once, so that each op can be
    chosen among those the operands' dtypes and exactness allow."""

    def __init__(self, draw, inputs: list[Variable], dtypes: list[str]) -> None:
        self.draw = draw
        self.inputs = inputs
        self.floats = any(d in FLOATS for d in dtypes)
        self.dtypes = dtypes
        self.built: list[Val] = []

    def expr(self, depth: int) -> Val:
        draw = self.draw
        if depth == 0 or draw(st.integers(0, 5)) == 0:
            val = self.leaf()
        else:
            form = draw(st.sampled_from(["unary", "binary", "binary", "switch", "cast", "view"]))
            val = getattr(self, form)(depth - 1)
        self.built.append(val)
        return val

    def leaf(self) -> Val:
        if self.draw(st.integers(0, 3)) > 0:
            k = self.draw(st.integers(0, len(self.inputs) - 1))
            return Val(self.inputs[k], f"x{k}")
        pool = FLOAT_LITERALS if self.floats and self.draw(st.booleans()) else INT_LITERALS
        value = self.draw(st.sampled_from(pool))
        if self.draw(st.booleans()):  # a bare Python number, whose dtype yields
            return Val(constant(value), repr(value))
        dtype = self.draw(st.sampled_from(self.dtypes))
        with np.errstate(all="ignore"):
            return Val(constant(np.asarray(value).astype(dtype), dtype), f"{dtype}({value!r})")

    def apply(self, name: str, fn, args: list[Val]) -> Val | None:
        """fn(*args) as a Val, or None when the builder refuses these dtypes."""
        if any(a.tol > 0 for a in args) and name not in CARRIES:
            return None
        try:
            with np.errstate(all="ignore"):  # float32 + 1e300 makes an inf constant
                var = fn(*[a.var for a in args])
        except (TypeError, ValueError, OverflowError):
            return None
        carried = CARRIES.get(name, 1) * sum(a.tol for a in args)
        tol = carried + (_float_tol(var) if carried > 0 or name in TRANSCENDENTAL else 0.0)
        if tol > 1e-4:
            return None
        return Val(var, f"{name}({', '.join(a.text for a in args)})", tol)

    def pick(self, table: dict, args: list[Val]) -> Val:
        """The drawn op of `table`, or the first op after it that accepts `args`."""
        names = sorted(table)
        start = self.draw(st.integers(0, len(names) - 1))
        for name in names[start:] + names[:start]:
            val = self.apply(name, table[name], args)
            if val is not None:
                return val
        return args[0]

    def unary(self, depth: int) -> Val:
        return self.pick(UNARY, [self.expr(depth)])

    def binary(self, depth: int) -> Val:
        return self.pick(BINARY, [self.expr(depth), self.expr(depth)])

    def switch(self, depth: int) -> Val:
        cond, a, b = self.expr(depth), self.expr(depth), self.expr(depth)
        if cond.tol > 0:
            return a
        try:
            var = T.switch(cond.var, a.var, b.var)
        except (TypeError, ValueError):
            return a
        return Val(var, f"switch({cond.text}, {a.text}, {b.text})", max(a.tol, b.tol))

    def cast(self, depth: int) -> Val:
        x = self.expr(depth)
        dst = self.draw(st.sampled_from(self.dtypes + ["float32", "float64", "int8", "bool"]))
        var = x.var
        if x.tol > 0 and dst not in FLOATS:  # a step: an ulp may change the result
            return x
        if var.dtype in FLOATS and dst not in FLOATS and dst != "bool":
            low = -1 if dst.startswith("u") else -100  # C converts only values in range
            var = T.switch(T.and_(T.gt(var, low), T.lt(var, 100)), var, 0)
        tol = x.tol + (eps(dst) if x.tol > 0 and dst in FLOATS else 0)
        return Val(T.cast(var, dst), f"cast({x.text}, {dst})", tol)

    def view(self, depth: int) -> Val:
        """A unary op on a host-made view: transposed (then transposed back) or reversed."""
        x = self.expr(depth)
        if x.var.ndim == 0:
            return x
        if x.var.ndim >= 2 and self.draw(st.booleans()):
            perm = self.draw(st.permutations(range(x.var.ndim)))
            inner = self.pick(UNARY, [Val(x.var.dimshuffle(*perm), x.text, x.tol)])
            back = tuple(int(i) for i in np.argsort(perm))
            return Val(inner.var.dimshuffle(*back), f"T{perm}({inner.text})", inner.tol)
        axes = [d for d in range(x.var.ndim) if not x.var.broadcastable[d]]
        if not axes:
            return x
        axis = self.draw(st.sampled_from(axes))
        index = (slice(None),) * axis + (slice(None, None, -1),)
        return Val(x.var[index], f"rev{axis}({x.text})", x.tol)


@dataclass
class Case:
    """A random function: its inputs, outputs, and the reduction among them if any."""

    inputs: list[Variable]
    outputs: list[Val]
    reduction: tuple | None  # (op, axes, keepdims, the reduced Val, the output's index)
    rank: int
    text: str


@st.composite
def cases(draw, dtypes: list[str]) -> Case:
    rank = draw(st.integers(0, 3))
    inputs = []
    for k in range(draw(st.integers(1, 3))):
        ndim = rank if draw(st.integers(0, 2)) else draw(st.integers(0, rank))
        bc = tuple(draw(st.integers(0, 3)) == 0 for _ in range(ndim))
        inputs.append(T.tensor(draw(st.sampled_from(dtypes)), broadcastable=bc, name=f"x{k}"))
    builder = GraphBuilder(draw, inputs, dtypes)
    e = builder.expr(draw(st.integers(1, 4)))
    assume(any(v in inputs for v in ancestors([e.var])))
    outputs = [e] if draw(st.booleans()) else []
    reduction = None
    op = draw(st.sampled_from([None, "sum", "prod", "max", "min"]))
    if op is not None:
        nd = e.var.ndim
        axes = draw(st.sets(st.integers(0, nd - 1))) if nd else set()
        axis = draw(st.sampled_from([None, tuple(sorted(axes))] + [-1 - a for a in axes]))
        keep = draw(st.booleans())
        r = getattr(T, op)(e.var, axis=axis, keepdims=keep)
        reduction = (op, T.normalize_axis(e.var, axis), keep, e, len(outputs))
        sloppy = r.dtype in FLOATS and op in ("sum", "prod")
        outputs.append(Val(r, f"{op}({e.text}, axis={axis}, keepdims={keep})", e.tol))
        if not sloppy and draw(st.booleans()):  # a kernel after the reduction's
            other = e if keep else builder.leaf()
            name = draw(st.sampled_from(["sub", "maximum", "mul", "add"]))
            post = builder.apply(name, BINARY[name], [other, outputs[-1]])
            outputs += [post] if post is not None else []
    if draw(st.booleans()) or not outputs:  # an intermediate, maybe computed inside a kernel
        outputs.append(draw(st.sampled_from(builder.built)))
    text = "; ".join(f"{v.name}: {v.type!r}" for v in inputs)
    text += "\n" + "\n".join(f"out{k} = {o.text}" for k, o in enumerate(outputs))
    return Case(inputs, outputs, reduction, rank, text)


def random_values(rng, dtype: str, shape, wild: bool) -> np.ndarray:
    """Small numbers of `dtype`; with `wild`, mixed with its special values."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in FLOATS:
        a = rng.normal(0, 3, shape)
    else:
        info = np.iinfo(dtype)
        a = rng.integers(max(info.min, -20), min(info.max, 20) + 1, shape)
    if wild:  # edge values in about a third of the places
        a = np.where(rng.random(shape) < 0.3, rng.choice(specials(dtype), shape), a)
    return np.asarray(a).astype(dtype)


def with_layout(a: np.ndarray, layout: str, axis: int) -> np.ndarray:
    """An array equal to `a` (or, for zero_stride, made of one of its slices) laid out so."""
    if a.ndim == 0 or a.size == 0:
        return a
    axis %= a.ndim
    if layout == "f":
        return np.asfortranarray(a)
    if layout == "transposed":
        perm = np.roll(np.arange(a.ndim), axis + 1)
        return np.ascontiguousarray(a.transpose(perm)).transpose(np.argsort(perm))
    if layout == "reversed":
        return np.flip(np.flip(a, axis).copy(), axis)
    if layout == "strided":
        return np.repeat(a, 2, axis=axis)[(slice(None),) * axis + (slice(None, None, 2),)]
    if layout == "zero_stride":
        return np.broadcast_to(a.take([0], axis=axis), a.shape)
    return a


@st.composite
def evaluations(draw, case: Case) -> list[tuple]:
    runs = []
    for _ in range(draw(st.integers(1, 3))):
        lengths = [draw(LENGTHS) for _ in range(case.rank)]
        layouts = [(draw(st.sampled_from(LAYOUTS)), draw(st.integers(0, 2))) for _ in case.inputs]
        runs.append((lengths, layouts, draw(st.integers(0, 2**32 - 1)), draw(st.booleans())))
    return runs


def input_values(case: Case, run) -> list[np.ndarray]:
    lengths, layouts, seed, wild = run
    rng = np.random.default_rng(seed)
    values = []
    for v, (layout, axis) in zip(case.inputs, layouts, strict=True):
        dims = lengths[case.rank - v.ndim :]
        shape = tuple(1 if bc else n for bc, n in zip(v.broadcastable, dims, strict=True))
        values.append(with_layout(random_values(rng, v.dtype, shape, wild), layout, axis))
    return values


def check_reduction(got, want, reduction, e_value, what: str) -> None:
    """A float sum or product: the two may add in different orders. Where no order can
    overflow, they agree within n roundings of the magnitudes added; a nan in the reduced
    elements gives nan in both."""
    op, axes, keep, e, _ = reduction
    dt = want.dtype
    assert (got.dtype, got.shape) == (dt, want.shape), f"{what}: {got.dtype}{got.shape}"
    e64 = np.asarray(e_value, "float64")
    n = max(1, math.prod(e64.shape[a] for a in axes))
    bound = 2 * (e.tol + (n + 1) * eps(dt))
    has_nan = np.any(np.isnan(e64), axis=axes, keepdims=keep)
    np.testing.assert_array_equal(np.isnan(got)[has_nan], True, err_msg=f"{what}: nan")
    with np.errstate(all="ignore"):
        if op == "sum":
            size = np.sum(np.abs(e64), axis=axes, keepdims=keep)
            fine = size < np.finfo(dt).max / 4
            atol, rtol = bound * size, 0.0
        else:
            logs = np.where((e64 == 0) | ~np.isfinite(e64), 0, np.abs(np.log2(np.abs(e64))))
            fine = np.all(np.isfinite(e64), axis=axes, keepdims=keep)
            fine &= np.sum(logs, axis=axes, keepdims=keep) < np.finfo(dt).maxexp - 8
            atol, rtol = 0.0, bound
        fine = np.broadcast_to(fine, want.shape)
        diff = np.abs(got.astype("float64") - want.astype("float64"))
        limit = np.broadcast_to(atol + rtol * np.abs(want.astype("float64")), want.shape)
        bad = fine & ~(diff <= limit)
    assert not bad.any(), f"{what}: {got[bad]} != {want[bad]} (limit {limit[bad]})"


def check_case(case: Case, runs: list) -> None:
    outs = [o.var for o in case.outputs]
    extra = [case.reduction[3].var] if case.reduction else []
    f_c = theano.function(case.inputs, outs, mode="c", optimizer=None, on_unused_input="ignore")
    f_py = theano.function(
        case.inputs, outs + extra, mode="py", optimizer=None, on_unused_input="ignore"
    )
    n_out = len(outs)
    for run in runs:
        values = input_values(case, run)
        copies = [np.array(a) for a in values]
        results = {}
        for mode, f in (("c", f_c), ("py", f_py)):
            try:
                results[mode] = f(*values)
            except Exception as e:  # noqa: BLE001 - the same error is expected of both
                results[mode] = e
        got, want = results["c"], results["py"]
        what = f"{case.text}\nshapes {[a.shape for a in values]}, run {run}"
        if isinstance(want, Exception):
            assert type(got) is type(want), f"{what}: NumPy raised {want!r}, C gave {got!r}"
            continue
        assert not isinstance(got, Exception), f"{what}: C raised {got!r}"
        for a, b in zip(values, copies, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{what}: an input was written")
        red = case.reduction
        for k, (val, g, w) in enumerate(zip(case.outputs, got, want[:n_out], strict=True)):
            reordered = red is not None and k == red[4] and red[0] in ("sum", "prod")
            if reordered and w.dtype.kind == "f":
                check_reduction(g, w, red, want[n_out], f"{what}\nout{k}")
                continue
            atol = float(np.finfo(w.dtype).tiny) * 1024 if val.tol > 0 else 0.0
            assert_same(g, w, f"{what}\nout{k}", rtol=val.tol, atol=atol, zeros=False)


SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
RANDOM_DTYPES = {  # (repeats weigh the draw)
    "float64": ["float64", "float64", "float64", "int32", "bool"],
    "float32": ["float32", "float32", "float32", "uint8", "int64"],
    "integer": ["int32", "int64", "uint8", "bool"],
}


@pytest.mark.parametrize("family", sorted(RANDOM_DTYPES))
@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_random_graphs_match_numpy(family, data):
    case = data.draw(cases(RANDOM_DTYPES[family]), label="case")
    check_case(case, data.draw(evaluations(case), label="runs"))


DIMSHUFFLES = [
    ((3, 4), (1, 0)), ((5,), ("x", 0)), ((), ("x",)), ((), ("x", "x")), ((3, 1, 4), (2, 0)),
    ((3, 1, 4), ("x", 2, "x", 0)), ((1, 1), ()), ((2, 3, 4), (2, 0, 1)), ((4, 1), ("x", 0, "x")),
]  # fmt: skip


@pytest.mark.parametrize(("shape", "order"), DIMSHUFFLES)
def test_dimshuffle_steps_are_views_equal_to_the_reference(shape, order):
    # a dimshuffle that is an output stays a host step: the glue's own view expression
    bc = tuple(n == 1 for n in shape)
    x = T.tensor("float64", broadcastable=bc, name="x")
    fs = compile_both([x], [x.dimshuffle(*order), x * 2])
    a = np.random.default_rng(3).standard_normal(shape)
    got, want = fs["c"].thunk.run(a)[0], fs["py"](a)[0]
    assert type(got) is np.ndarray and np.shares_memory(got, a)
    assert_same(got, want, f"dimshuffle{order} of {shape}")
