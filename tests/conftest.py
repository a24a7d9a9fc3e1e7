"""Shared fixtures. Every test runs once per backend built so far (`backend`, autouse: it sets
`eqsat.config.mode`, so functions compiled without an explicit mode use it); `mode` is the same
value for tests that pass it explicitly. A module that never compiles a function, or compares
the backends itself, sets `BACKEND_INDEPENDENT = True` and runs once. The NumPy interpreter
("py") is the oracle the others are checked against."""

import numpy as np
import pytest

from eqsat.codegen.compile import compiler
from eqsat.config import config

BACKENDS = ["py", "c"] if compiler() else ["py"]


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames and not getattr(
        metafunc.module, "BACKEND_INDEPENDENT", False
    ):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def backend(request, monkeypatch):
    mode = getattr(request, "param", "py")
    monkeypatch.setattr(config, "mode", mode)
    # Tests see the optimizer run (tests/optimizer/test_optcache.py turns its cache back on).
    monkeypatch.setattr(config, "opt_cache", False)
    return mode


@pytest.fixture
def mode(backend):
    return backend


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
