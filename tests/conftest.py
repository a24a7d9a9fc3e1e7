"""Shared fixtures. `mode` parametrizes a test over every backend built so far; the NumPy
interpreter ("py") is the oracle the others are checked against."""

import numpy as np
import pytest

BACKENDS = ["py"]


@pytest.fixture(params=BACKENDS)
def mode(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
