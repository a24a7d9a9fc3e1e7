"""Shared helpers for the tensor API tests: compile-and-run, and random data in a domain."""

from __future__ import annotations

from typing import Any

import numpy as np

import eqsat as theano


def run(inputs: list, outputs: Any, *values: Any, mode: str) -> Any:
    """Compile `outputs` of `inputs` with the given backend and call it on `values`."""
    return theano.function(list(inputs), outputs, mode=mode)(*values)


def rand(
    rng: np.random.Generator, shape: tuple, dtype: str = "float64", low: float = -2, high: float = 2
) -> np.ndarray:
    """Random data of `dtype` in [low, high): uniform floats, integers, or bools."""
    kind = np.dtype(dtype).kind
    if kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if kind in "iu":
        return rng.integers(int(low), int(high) + 1, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def assert_same(got: Any, want: Any, rtol: float | None = None) -> None:
    """`got` is an ndarray equal to `want` in shape and dtype, and close in value."""
    want = np.asarray(want)
    assert isinstance(got, np.ndarray), type(got)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if rtol is None:
        rtol = 1e-5 if want.dtype == np.float32 else 1e-12
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
    else:
        np.testing.assert_array_equal(got, want)
