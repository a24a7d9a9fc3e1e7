"""Comparing a result with the NumPy oracle's, for the backend and optimizer tests."""

import numpy as np


def assert_same(got, want, what: str, rtol: float = 0.0, atol: float = 0.0, zeros=True) -> None:
    """`got` is `want` (NumPy's): the same dtype and shape; ints and bools equal; floats with
    nan and infinities in the same places, and equal (with the sign of zero when `zeros`) or,
    when rtol > 0, close."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what, strict=True)
        return
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: nan places")
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg=f"{what}: inf places")
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf], err_msg=f"{what}: infinities")
    fin = np.isfinite(want)
    if rtol == 0 and atol == 0:
        np.testing.assert_array_equal(got[fin], want[fin], err_msg=what)
        if zeros:
            zero = want == 0
            np.testing.assert_array_equal(
                np.signbit(got[zero]), np.signbit(want[zero]), err_msg=f"{what}: sign of zero"
            )
    else:
        np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=atol, err_msg=what)
