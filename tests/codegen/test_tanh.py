"""The C backend's own tanh (c_ops._TANH) against mpmath.

Its float64 and float32 results are compared with mpmath's tanh at 40 digits, correctly rounded
to the dtype, on points chosen where the code changes path: the polynomial alone (|x| < ln2/4),
the neighbours of every reduction boundary (k*ln2/2 + ln2/4) and of the switch to the second form
of the quotient (k = 3), the range where exp(-2|x|) matters, the saturation to 1 and the clamp,
tiny and subnormal inputs; then signed zeros, infinities and nan. Bound: 2 ulp from the correctly
rounded value in either dtype (the largest error seen in 10^7 points is 2.33 ulp of the exact
value). A sweep of 10^6 points checks the same bound against NumPy's tanh, computed in float64
(rounded to float32 for that dtype).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import eqsat as theano
import eqsat.tensor as T
from eqsat.codegen.compile import compiler

pytestmark = pytest.mark.skipif(compiler() is None, reason="needs a C compiler")
BACKEND_INDEPENDENT = True  # always mode="c" (tests/conftest.py)
ULPS = 2
HALF_LN2 = np.log(2) / 2
SATURATES = {"float64": 19.06, "float32": 9.01}  # tanh rounds to 1 from about here on
LIMIT = {"float64": 20.0, "float32": 10.0}  # where the C code clamps |x|


@pytest.fixture(scope="module")
def tanh_c():
    """dtype -> the compiled tanh of a vector of it (one library for both)."""
    x64, x32 = T.dvector("x64"), T.fvector("x32")
    f = theano.function([x64, x32], [T.tanh(x64), T.tanh(x32)], mode="c")
    empty64, empty32 = np.zeros(0), np.zeros(0, np.float32)
    return {
        "float64": lambda v: f(v, empty32)[0],
        "float32": lambda v: f(empty64, v)[1],
    }


def neighbours(points, dtype: str, steps: int = 3) -> np.ndarray:
    """Each point (rounded to dtype) and its `steps` nearest floats on each side."""
    out = []
    for p in np.asarray(points, dtype):
        below = above = p
        out.append(p)
        for _ in range(steps):
            below = np.nextafter(below, -np.inf, dtype=dtype)
            above = np.nextafter(above, np.inf, dtype=dtype)
            out += [below, above]
    return np.array(out, dtype)


def sample_points(dtype: str, rng: np.random.Generator) -> np.ndarray:
    info = np.finfo(dtype)
    boundaries = (np.arange(8) + 0.5) * HALF_LN2  # k changes; from 2.5: the quotient's form
    pieces = [
        rng.uniform(-HALF_LN2 / 2, HALF_LN2 / 2, 600),
        rng.uniform(-1.5, 1.5, 1200),
        rng.uniform(-25, 25, 600),
        neighbours(boundaries, dtype),
        neighbours(boundaries * (1 + rng.uniform(-1e-3, 1e-3, (20, 1))), dtype, 0).ravel(),
        neighbours([SATURATES[dtype], LIMIT[dtype]], dtype, 20),
        rng.uniform(SATURATES[dtype] - 1, LIMIT[dtype] + 5, 200),
        np.geomspace(info.smallest_subnormal, 1e-2, 300),
        [info.smallest_subnormal, 3 * info.smallest_subnormal, info.tiny / 3, info.tiny],
        [info.eps, np.sqrt(info.eps), 1.0, 2.0, info.max],
    ]
    x = np.concatenate([np.asarray(p, dtype).ravel() for p in pieces])
    return np.concatenate([x, -x])


def correctly_rounded(x: np.ndarray, dtype: str) -> np.ndarray:
    """tanh of each (finite) element, from mpmath at 40 digits, rounded once to dtype."""
    bits = np.finfo(dtype).nmant + 1
    out = []
    with mpmath.workdps(40):
        for v in x.tolist():
            exact = mpmath.tanh(mpmath.mpf(v))
            with mpmath.workprec(bits):  # a float32 result is never subnormal here but for x
                out.append(float(+exact))
    return np.array(out, dtype)


def ulp_distance(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Floats between got and want (of one sign), counted through their bit patterns."""
    assert np.array_equal(np.signbit(got), np.signbit(want))
    ints = {4: np.int32, 8: np.int64}[got.dtype.itemsize]
    return np.abs(got.view(ints).astype(np.int64) - want.view(ints).astype(np.int64))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tanh_against_mpmath(tanh_c, dtype):
    x = sample_points(dtype, np.random.default_rng(7))
    got = tanh_c[dtype](x)
    assert got.dtype == dtype
    err = ulp_distance(got, correctly_rounded(x, dtype))
    worst = int(np.argmax(err))
    assert err[worst] <= ULPS, f"tanh({x[worst]!r}) = {got[worst]!r}: {err[worst]} ulp"
    tiny = np.abs(x) < np.finfo(dtype).tiny  # subnormal: tanh(x) is x
    np.testing.assert_array_equal(got[tiny], x[tiny])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tanh_special_values(tanh_c, dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan], dtype)
    got = tanh_c[dtype](x)
    np.testing.assert_array_equal(got[:4], [0.0, -0.0, 1.0, -1.0])
    assert list(np.signbit(got[:4])) == [False, True, False, True]
    assert np.isnan(got[4:]).all()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tanh_sweep_against_numpy(tanh_c, dtype):
    """Also past 2^15 elements, where the kernel runs on several threads."""
    rng = np.random.default_rng(11)
    x = np.concatenate(
        [rng.uniform(-25, 25, 500_000), np.geomspace(1e-30, 30, 250_000) * [[1], [-1]]], axis=None
    ).astype(dtype)
    want = np.tanh(x.astype(np.float64)).astype(dtype)  # within 1 ulp of float64 (glibc)
    err = ulp_distance(tanh_c[dtype](x), want)
    worst = int(np.argmax(err))
    # NumPy's float64 tanh adds its own error: 1 ulp more
    assert err[worst] <= ULPS + (dtype == "float64"), f"tanh({x[worst]!r}): {err[worst]} ulp"
