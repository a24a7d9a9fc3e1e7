"""BLAS calls cut into shares that run on several cores, each share a BLAS call of its own.

OpenBLAS threads a product by cutting it into parts that share packed panels and wait on each
other; on a skinny product (n*k small, as an MLP's 10-class layer has) that costs more than it
saves. `eq_gemm` instead cuts such a product into about `CHUNKS` blocks of rows of C, each a BLAS
call on its rows, which the worker pool (eqsat/codegen/pool.py) runs. Interleaved medians of
200 calls on this 2-core machine, hot caches (and after evicting them): h.T @ dz at 512x256x10
took 75.2 us through OpenBLAS (124.2), 41.0 in 8 blocks (81.8), 92.6 in 21 blocks (126.0: each
call packs b again and takes OpenBLAS's buffer lock); h @ W2 61.8 (106.1) and 32.2 (64.9);
dz @ W2.T 122.5 (157.3) and 58.0 (94.0). A block's m*n*k stays at most what OpenBLAS runs in the
calling thread (`block()`): the parts of a threaded product inside a pool chunk would wait for
each other in one thread. The blocks depend on the shapes and block() alone, so the results
do not depend on how many threads run them.

`eq_gemv` splits a matrix-vector product, which OpenBLAS runs on one core, into shares of y
(rows of A for y = A x, columns for y = A^T x), at most `CHUNKS`, one per `GEMV_SPLIT` elements of
A, on the pool (0.75x the time at 400x784 when OpenMP split it in two).
"""

from __future__ import annotations

import functools
import string
from typing import Any

import numpy as np

from eqsat.codegen import blas, pool
from eqsat.codegen.compile import CompileError, load

CHUNKS = 8  # blocks of a split product (fewer where a block would have under 8 rows)
SPLIT = 1 << 18  # m*n*k from which a skinny product is split
GEMV_SPLIT = 1 << 16  # m*n from which a gemv is split
# OpenBLAS runs a product of m*n*k <= 65536 * GEMM_MULTITHREAD_THRESHOLD (a build setting, 4 by
# default) in the calling thread; block() tries these sizes, largest first.
BLOCKS = (1 << 18, 1 << 17, 1 << 16)

_SOURCE = string.Template(r"""
#include <stdint.h>
typedef void (*gemv_t)(int, int, $I, $I, $R, const $R *, $I, const $R *, $I, $R, $R *, $I);
typedef void (*gemm_t)(int, int, int, $I, $I, $I, $R, const $R *, $I, const $R *, $I, $R, $R *,
                       $I);
typedef void (*eq_task)(void *, int64_t);
static gemv_t gemv;
static gemm_t gemm;
static void (*run)(eq_task, void *, int64_t);
static int64_t block;  /* m*n*k of a block at most (see block()) */

struct gemv_job {
    int order, trans; $I m, n; $R alpha; const $R *a; $I lda; const $R *x; $I incx; $R beta;
    $R *y; $I incy; int64_t chunks;
};

static void gemv_part(void *arg, int64_t c) {  /* rows of y: of A (y = A x) or A^T */
    const struct gemv_job *j = (const struct gemv_job *)arg;
    const int64_t size = j->trans == 111 ? j->m : j->n;
    const int64_t lo = size * c / j->chunks, hi = size * (c + 1) / j->chunks;
    if (j->trans == 111)
        gemv(j->order, j->trans, ($I)(hi - lo), j->n, j->alpha, j->a + lo * j->lda, j->lda,
             j->x, j->incx, j->beta, j->y + lo * j->incy, j->incy);
    else
        gemv(j->order, j->trans, j->m, ($I)(hi - lo), j->alpha, j->a + lo, j->lda, j->x,
             j->incx, j->beta, j->y + lo * j->incy, j->incy);
}

void eq_gemv(int order, int trans, $I m, $I n, $R alpha, const char *a, $I lda,
             const char *x, $I incx, $R beta, char *y, $I incy) {
    const int64_t size = trans == 111 ? m : n, work = (int64_t)m * n;
    int64_t chunks = work < $GEMV_SPLIT || !run ? 1 : (work + $GEMV_SPLIT - 1) / $GEMV_SPLIT;
    if (chunks > $CHUNKS) chunks = $CHUNKS;
    if (chunks > size) chunks = size;
    if (chunks < 1) chunks = 1;
    struct gemv_job j = {order, trans, m, n, alpha, (const $R *)a, lda, (const $R *)x, incx,
                         beta, ($R *)y, incy, chunks};
    if (chunks == 1) gemv_part(&j, 0);
    else run(gemv_part, &j, chunks);
}

struct rows_job {
    int ta, tb; $I n, k; $R alpha; const $R *a; $I lda; const $R *b; $I ldb; $R beta; $R *c;
    $I ldc; int64_t m, rows;
};

static void gemm_rows(void *arg, int64_t i) {
    const struct rows_job *j = (const struct rows_job *)arg;
    const int64_t lo = i * j->rows, hi = j->m - lo < j->rows ? j->m : lo + j->rows;
    const $R *a = j->ta == 111 ? j->a + lo * j->lda : j->a + lo;  /* rows of op(a) */
    gemm(101, j->ta, j->tb, ($I)(hi - lo), j->n, j->k, j->alpha, a, j->lda, j->b, j->ldb,
         j->beta, j->c + lo * j->ldc, j->ldc);
}

/* Row-major C = alpha op(a) op(b) + beta C, as cblas_?gemm(101, ...) takes it. */
void eq_gemm(int ta, int tb, $I m, $I n, $I k, $R alpha, const char *a, $I lda,
             const char *b, $I ldb, $R beta, char *c, $I ldc) {
    const int64_t panel = (int64_t)n * k, most = panel > 0 ? block / panel : 0;
    const int64_t even = (m + $CHUNKS - 1) / $CHUNKS;  /* (rows of $CHUNKS blocks) */
    const int64_t rows = even < 8 ? 8 : even > most ? most : even;
    if (!run || rows < 8 || m < 2 * rows || (int64_t)m * panel < $SPLIT) {
        gemm(101, ta, tb, m, n, k, alpha, (const $R *)a, lda, (const $R *)b, ldb, beta,
             ($R *)c, ldc);
        return;
    }
    struct rows_job j = {ta, tb, n, k, alpha, (const $R *)a, lda, (const $R *)b, ldb, beta,
                         ($R *)c, ldc, m, rows};
    run(gemm_rows, &j, (m + j.rows - 1) / j.rows);
}

void eq_set(void *gv, void *gm, void *pool, int64_t most) {
    gemv = (gemv_t)gv;
    gemm = (gemm_t)gm;
    run = (void (*)(eq_task, void *, int64_t))pool;
    block = most;
}
""")


@functools.cache
def functions(dtype: str) -> tuple[Any, Any] | None:
    """(eq_gemm, eq_gemv) for float64 or float32, compiled once (None where NumPy's CBLAS was
    not found or the C compiler failed). Their pointer parameters take char*."""
    found = blas.find()
    if found is None:
        return None
    (p, real), i = ("d", "double") if dtype == "float64" else ("s", "float"), found.int_type
    source = _SOURCE.substitute(I=i, R=real, CHUNKS=CHUNKS, SPLIT=SPLIT, GEMV_SPLIT=GEMV_SPLIT)
    cdef = (
        f"void eq_gemv(int, int, {i}, {i}, {real}, void *, {i}, void *, {i}, {real}, void *, "
        f"{i});\nvoid eq_gemm(int, int, {i}, {i}, {i}, {real}, void *, {i}, void *, {i}, "
        f"{real}, void *, {i});\nvoid eq_set(void *, void *, void *, int64_t);"
    )
    try:
        library = load(source, cdef)
    except CompileError:
        return None
    ffi = library.ffi
    library.lib.eq_set(
        ffi.cast("void *", found.functions[p + "gemv"]),
        ffi.cast("void *", found.functions[p + "gemm"]),
        ffi.cast("void *", pool.address() or 0),
        block(),
    )
    return library.lib.eq_gemm, library.lib.eq_gemv


@functools.cache
def block() -> int:
    """The largest m*n*k of BLOCKS that OpenBLAS runs in the calling thread: where the pool runs
    OpenBLAS's threads (pool.drive_blas), one product of each size, largest first, until one
    reaches the pool; elsewhere the smallest, which OpenBLAS never threads."""
    jobs = pool.blas_jobs()
    if jobs is None or blas.find() is None:
        return BLOCKS[-1]
    for size in BLOCKS[:-1]:
        before = jobs()
        blas.call_gemm(np.ones((size // (64 * 64), 64)), np.ones((64, 64)))
        if jobs() == before:
            return size
    return BLOCKS[-1]
