"""The worker pool row passes hand their chunks to (eqsat/codegen/pool.py): every chunk runs
once, results don't depend on how many threads took the chunks, and concurrent callers, a
forked child and OMP_NUM_THREADS=1 all get the right answers. Once it runs BLAS's threaded
products, those are right (and NumPy's own, LAPACK's, a forked child's, concurrent threads')
and never hang."""

import os
import subprocess
import sys
import textwrap
import threading

import cffi
import numpy as np
import pytest

from eqsat.codegen import blas, c_rowpass, pool
from eqsat.codegen.compile import compiler

BACKEND_INDEPENDENT = True  # compiles in mode "c" and checks against NumPy itself
pytestmark = pytest.mark.skipif(
    compiler() is None or blas.find() is None, reason="needs a C compiler and NumPy's CBLAS"
)

_ffi = cffi.FFI()
_ffi.cdef("typedef void (*task)(void *, int64_t);")

# The tutorial's shape (1400 x 784) is past POOL_MIN: its rows go out in chunks.
N, K = 1400, 784

# A step computed in a fresh process (its pool built there), printed as the bytes of its
# results; the parent compares them with its own.
CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_rowpass import data, step
    f = step()
    results = [np.asarray(r) for r in f(*data({n}, {k}))]
    if {fork}:
        import os
        pid = os.fork()
        if pid == 0:  # the child: its pool has no threads until it starts them again
            again = [np.asarray(r) for r in f(*data({n}, {k}))]
            same = all(a.tobytes() == b.tobytes() for a, b in zip(again, results))
            os._exit(0 if same else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
    print("".join(r.tobytes().hex() for r in results))
    """
)


def run_child(env_extra: dict, fork: bool = False) -> str:
    tests = os.path.dirname(__file__)
    code = CHILD.format(tests=tests, n=N, k=K, fork=fork)
    env = {**os.environ, **env_extra}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_chunk_runs_once_whoever_takes_it():
    address = pool.address()
    if address is None:
        pytest.skip("the pool could not be built")
    run = _ffi.cast("void (*)(task, void *, int64_t)", address)
    for n in (0, 1, 2, 7, 100):
        seen = []
        callback = _ffi.callback("void(void *, int64_t)", lambda _ctx, c, seen=seen: seen.append(c))
        run(callback, _ffi.NULL, n)
        assert sorted(seen) == list(range(n))


def test_chunks_stay_in_the_caller_while_blas_threads_may_spin():
    # (what after_blas() does where the pool does not run BLAS's threads itself)
    address = pool.address()
    if address is None:
        pytest.skip("the pool could not be built")
    run = _ffi.cast("void (*)(task, void *, int64_t)", address)
    threads = []
    callback = _ffi.callback(
        "void(void *, int64_t)", lambda _ctx, _c: threads.append(threading.get_ident())
    )
    pool._library().lib.eq_pool_after_blas()
    run(callback, _ffi.NULL, 50)
    assert threads == [threading.get_ident()] * 50


def test_results_do_not_depend_on_the_number_of_threads():
    assert N * K >= c_rowpass.POOL_MIN
    one = run_child({"OMP_NUM_THREADS": "1"})
    two = run_child({"OMP_NUM_THREADS": "2"})
    assert one == two


def test_a_forked_child_computes_the_same():
    run_child({}, fork=True)


def test_concurrent_callers_get_their_own_results():
    from test_rowpass import data, expected, step

    f = step()
    inputs = [data(N, K, seed=s) for s in range(2)]
    wants = [expected(*d) for d in inputs]
    errors = []

    def caller(i: int) -> None:
        try:
            for _ in range(20):
                loss, grad, _ = f(*inputs[i])
                np.testing.assert_allclose(loss, wants[i][0], rtol=1e-12)
                np.testing.assert_allclose(grad, wants[i][1], rtol=1e-12, atol=1e-9)
        except AssertionError as e:
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_processes_exit_cleanly_after_using_the_pool():
    # The workers run the pool's code until the process ends. Before the pool pinned its
    # library, Python let go of it at exit and cffi closed it: 3 of 8 such processes crashed
    # when run together (the tutorial's script, whose row passes use the pool).
    script = os.path.join(
        os.path.dirname(__file__), "..", "..", "examples", "logistic_regression.py"
    )
    runs = [
        subprocess.Popen([sys.executable, script, "--steps", "3"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
        for _ in range(8)
    ]  # fmt: skip
    codes = [(p.wait(timeout=300), p.stderr.read().decode()[-500:]) for p in runs]
    assert all(code == 0 for code, _ in codes), codes


# Runs in a fresh process (the pool takes BLAS's threads over for the whole process): products
# through NumPy's `@` before and after, then what the test adds; prints "ok".
BLAS_CHILD = textwrap.dedent(
    """
    import os, sys, threading
    import numpy as np
    from eqsat.codegen import pool
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((600, 700)), rng.standard_normal((700, 500))
    want = np.einsum("ij,jk->ik", a, b, optimize=False)  # (NumPy's own loops, not BLAS)
    before = a @ b
    if not pool.drive_blas():
        sys.exit(print("no threads callback"))
    lib = pool._library().lib
    jobs = lib.eq_pool_blas_jobs()
    after = a @ b
    assert lib.eq_pool_blas_jobs() > jobs, "the pool did not run the product's parts"
    assert after.tobytes() == before.tobytes()  # the same parts, summed the same way
    np.testing.assert_allclose(after, want, rtol=1e-12, atol=1e-10)
    {more}
    print("ok")
    """
)


def run_blas_child(more: str = "", env_extra: dict | None = None) -> None:
    if pool.address() is None:
        pytest.skip("the pool could not be built")
    # Two BLAS threads, whatever this machine has: the product goes out in parts.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", **(env_extra or {})}
    code = BLAS_CHILD.format(more=textwrap.dedent(more).strip())
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    if done.stdout.strip() == "no threads callback":
        pytest.skip("this BLAS has no threads callback (OpenBLAS < 0.3.27, or another BLAS)")
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_blas_products_run_on_the_pool_and_agree():
    run_blas_child()


def test_more_blas_parts_than_pool_workers():
    # OMP_NUM_THREADS=1 starts no workers; OpenBLAS cuts into 4 parts: the pool starts 3.
    run_blas_child(
        "c = rng.standard_normal((900, 800))\n"
        "np.testing.assert_allclose(c @ c.T, np.einsum('ij,kj->ik', c, c, optimize=False),"
        " rtol=1e-12, atol=1e-9)",
        {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "4"},
    )


def test_lapack_after_the_pool_runs_blas():
    # LAPACK's threaded routines hand parts to OpenBLAS's server directly, around the callback.
    run_blas_child(
        """
        m = rng.standard_normal((800, 800)) + 800 * np.eye(800)
        x = np.linalg.solve(m, np.ones(800))
        np.testing.assert_allclose(m @ x, np.ones(800), atol=1e-9)
        s = m + m.T
        w, v = np.linalg.eigh(s)
        np.testing.assert_allclose(s @ v, v * w, atol=1e-7)
        """
    )


def test_threads_and_a_forked_child_multiply_right_on_the_pool():
    run_blas_child(
        """
        errors = []
        def worker(seed):
            r = np.random.default_rng(seed)
            for _ in range(20):
                x, y = r.standard_normal((300, 400)), r.standard_normal((400, 350))
                if not np.allclose(x @ y, np.einsum("ij,jk->ik", x, y, optimize=False)):
                    errors.append(seed)
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        pid = os.fork()
        if pid == 0:
            os._exit(0 if (a @ b).tobytes() == before.tobytes() else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        """
    )


@pytest.mark.parametrize(("value", "says"), [("blas", "False"), ("openblas", "ValueError")])
def test_blas_keeps_its_own_threads_when_asked(value, says):
    code = (
        "from eqsat.codegen import pool\n"
        "try:\n    print(pool.drive_blas())\n"
        "except ValueError as e:\n    print('ValueError', e)"
    )
    env = {**os.environ, "EQSAT_BLAS_THREADS": value}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip().startswith(says), done.stderr
    if says == "ValueError":
        assert "'openblas'" in done.stdout and "EQSAT_BLAS_THREADS" in done.stdout
