"""Compiling C source into cached shared libraries: values, cache hits, corruption, races."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import eqsat
from eqsat.codegen import compile as cc
from eqsat.config import config

BACKEND_INDEPENDENT = True  # no compiled function here: one run covers every backend

REPO = str(Path(eqsat.__file__).resolve().parents[1])

ADD_SOURCE = """
#include <math.h>
double add(double a, double b) { return a + b; }
int is_nan(double x) { return isnan(x); }
"""
ADD_CDEF = "double add(double a, double b); int is_nan(double x);"

FILL_SOURCE = """
#include <math.h>
void fill(double *out, long n) {
    #pragma omp parallel for
    for (long i = 0; i < n; i++) out[i] = sqrt((double)i);
}
int has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
"""
FILL_CDEF = "void fill(double *out, long n); int has_openmp(void);"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setattr(config, "compiledir", str(path))
    return path


def _forbid_subprocesses(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", boom)


def _replace_file(path: str, data: bytes) -> None:
    # A new inode: this process may still have the old library mapped, and writing into it
    # in place would crash the test rather than test the cache.
    tmp = path + ".corrupt"
    Path(tmp).write_bytes(data)
    os.replace(tmp, path)


def _child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")])
    return env


def test_add_compiles_loads_and_keeps_ieee_semantics(cache_dir):
    library = cc.load(ADD_SOURCE, ADD_CDEF)
    assert library.lib.add(1.5, 2.25) == 3.75
    assert library.lib.is_nan(float("nan")) == 1  # would be 0 under -ffast-math
    assert library.lib.is_nan(1.0) == 0
    assert not library.cache_hit
    assert Path(library.path).parent == cache_dir
    assert cc._intact(Path(library.path).read_bytes())
    assert "-ffast-math" not in cc.FLAGS


def test_openmp_loop_fills_an_array():
    library = cc.load(FILL_SOURCE, FILL_CDEF)
    out = np.zeros(10_000)
    library.lib.fill(library.ffi.from_buffer("double[]", out), out.size)
    np.testing.assert_array_equal(out, np.sqrt(np.arange(out.size)))
    openmp = "-fopenmp" in cc._toolchain(config.compiledir).flags
    assert library.lib.has_openmp() == int(openmp)


def test_second_load_is_a_cache_hit_without_the_compiler(monkeypatch):
    first = cc.load(ADD_SOURCE, ADD_CDEF)
    cc._MEMO.clear()
    _forbid_subprocesses(monkeypatch)
    from_disk = cc.load(ADD_SOURCE, ADD_CDEF)
    assert from_disk.cache_hit
    assert from_disk.path == first.path
    assert from_disk.ffi is first.ffi  # one FFI per cdef
    assert from_disk.lib.add(2.0, 3.0) == 5.0
    memo = cc.load(ADD_SOURCE, ADD_CDEF)
    assert memo.cache_hit and memo.lib is from_disk.lib
    assert memo.seconds < from_disk.seconds


def test_fresh_interpreter_honours_compiledir_and_loads_warm_without_compiling(tmp_path):
    cc.load(ADD_SOURCE, ADD_CDEF)  # fills the cache directory set by the fixture
    script = f"""
import json, os, subprocess
import eqsat
from eqsat.codegen import compile as cc

def boom(*args, **kwargs):
    raise AssertionError("a subprocess was started")

subprocess.Popen = boom
library = cc.load({ADD_SOURCE!r}, {ADD_CDEF!r})
print(json.dumps({{"compiledir": eqsat.config.compiledir, "hit": library.cache_hit,
                  "value": library.lib.add(1.0, 2.0), "seconds": library.seconds}}))
"""
    env = _child_env(EQSAT_COMPILEDIR=config.compiledir)
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["compiledir"] == config.compiledir
    assert result["hit"] and result["value"] == 3.0


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: os.urandom(len(data)),  # garbage
        lambda data: data[: -cc._TRAILER_SIZE],  # a library without its trailer
    ],
    ids=["truncated", "garbage", "no-trailer"],
)
def test_corrupted_entry_is_rebuilt(corrupt):
    source = ADD_SOURCE + "/* corruption */\n"
    path = cc.load(source, ADD_CDEF).path
    _replace_file(path, corrupt(Path(path).read_bytes()))
    cc._MEMO.clear()
    library = cc.load(source, ADD_CDEF)
    assert not library.cache_hit
    assert library.path == path
    assert cc._intact(Path(path).read_bytes())
    assert library.lib.add(1.0, 1.0) == 2.0


def test_entry_that_does_not_dlopen_is_rebuilt(tmp_path, monkeypatch):
    source = ADD_SOURCE + "/* not a library */\n"
    name = Path(cc.load(source, ADD_CDEF).path).name
    # A different directory, so this process has never dlopened the path below.
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setattr(config, "compiledir", str(other))
    junk = b"this is not an ELF file" * 100
    (other / name).write_bytes(junk + cc._trailer(junk))
    library = cc.load(source, ADD_CDEF)
    assert not library.cache_hit
    assert library.path == str(other / name)
    assert library.lib.add(2.0, 2.0) == 4.0


def test_concurrent_processes_compile_the_same_sources(cache_dir, tmp_path):
    sources = [f"double add(double a, double b) {{ return a + b + {k}; }}\n" for k in range(3)]
    cdef = "double add(double a, double b);"
    script = f"""
import json, os, sys, time
from eqsat.codegen import compile as cc
from eqsat.config import config

cc._toolchain(config.compiledir)  # probe before the barrier, so the compiles race
open(os.path.join(sys.argv[1], "ready" + sys.argv[2]), "w").close()
while not os.path.exists(os.path.join(sys.argv[1], "go")):
    time.sleep(0.001)
results = []
for source in {sources!r}:
    library = cc.load(source, {cdef!r})
    results.append(library.lib.add(1.0, 2.0))
print(json.dumps(results))
"""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = _child_env(EQSAT_COMPILEDIR=str(cache_dir))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(barrier), str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready*"))) < len(children) and time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            break
        time.sleep(0.005)
    (barrier / "go").touch()
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == [3.0, 4.0, 5.0]
    entries = sorted(cache_dir.glob("*.so"))
    assert len(entries) == len(sources)
    assert all(cc._intact(entry.read_bytes()) for entry in entries)
    assert not list(cache_dir.glob("*.tmp"))
    library = cc.load(sources[2], cdef)
    assert library.cache_hit and library.lib.add(1.0, 2.0) == 5.0


def test_syntax_error_reports_the_compiler_message(cache_dir):
    with pytest.raises(cc.CompileError) as info:
        cc.load("double broken(double x) { return x + ; }\n", "double broken(double x);")
    message = str(info.value)
    assert "expected expression" in message
    assert "-O3" in message  # the command is part of the message
    assert not list(cache_dir.glob("*.so")) and not list(cache_dir.glob("*.tmp"))


def test_missing_compiler_is_a_compile_error(monkeypatch):
    monkeypatch.setenv("CC", "eqsat-no-such-compiler")
    assert cc.compiler() is None
    with pytest.raises(cc.CompileError, match="CC"):
        cc.load(ADD_SOURCE + "/* no compiler */\n", ADD_CDEF)
