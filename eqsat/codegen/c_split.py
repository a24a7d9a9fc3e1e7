"""BLAS calls cut into shares that run on several cores, each share a BLAS call of its own.

OpenBLAS threads a product by cutting it into parts that share packed panels and wait on each
other; on a skinny product (one of n and k small, as an MLP's 10-class layer has) that costs
more than it saves: h @ W2 at 256x512x10 took 66.9 us on two cores, h.T @ dz 74.8, dz @ W2.T
114.6. `eq_gemm` instead cuts such a product into blocks of rows of C, each a BLAS call on its
rows, which the worker pool (eqsat/codegen/pool.py) runs: 35.7, 41.8 and 71.5 us. A block's
m*n*k stays at most `BLOCK` = OpenBLAS's SMP_THRESHOLD_MIN, below which OpenBLAS runs a product
in the calling thread whatever its thread settings: parts of a threaded product inside a pool
chunk would wait for each other in one thread. With op(a) = a^T, a block of rows of C would
read a strip of a's columns across all of a's rows (every page of it, for each block), so such a
product with a small C (an MLP's weight gradient h.T @ dz) is cut along its depth k instead:
each chunk a run of a's rows into a partial C of its own, added in chunk order (the in-step
time of the MLP's 512x256x10 update went from 131 to 102 us). The cuts depend on the shapes
alone, so the results do not depend on how many threads run them.

`eq_gemv` splits a matrix-vector product, which OpenBLAS runs on one core, over the cores with
OpenMP: rows of y = A x, columns of y = A^T x (0.75x the time at 400x784).
"""

from __future__ import annotations

import functools
import string
from typing import Any

from eqsat.codegen import blas, pool
from eqsat.codegen.compile import CompileError, load

BLOCK = 1 << 16  # m*n*k of one block of a split product (see above)
SPLIT = 1 << 18  # m*n*k from which a skinny product is split
GEMV_SPLIT = 1 << 16  # m*n from which a gemv is split

_SOURCE = string.Template(r"""
#include <stdint.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
typedef void (*gemv_t)(int, int, $I, $I, $R, const $R *, $I, const $R *, $I, $R, $R *, $I);
typedef void (*gemm_t)(int, int, int, $I, $I, $I, $R, const $R *, $I, const $R *, $I, $R, $R *,
                       $I);
typedef void (*eq_task)(void *, int64_t);
static gemv_t gemv;
static gemm_t gemm;
static void (*run)(eq_task, void *, int64_t);

void eq_gemv(int order, int trans, $I m, $I n, $R alpha, const char *a, $I lda,
             const char *x, $I incx, $R beta, char *y, $I incy) {
    const $R *A = (const $R *)a, *X = (const $R *)x;
    $R *Y = ($R *)y;
    #pragma omp parallel if ((int64_t)m * n >= $GEMV_SPLIT)
    {
        int t = 0, nt = 1;
        #ifdef _OPENMP
        t = omp_get_thread_num(); nt = omp_get_num_threads();
        #endif
        $I size = trans == 111 ? m : n, lo = size * t / nt, hi = size * (t + 1) / nt;
        if (hi > lo) {
            if (trans == 111)
                gemv(order, trans, hi - lo, n, alpha, A + lo * lda, lda, X, incx, beta,
                     Y + lo * incy, incy);
            else
                gemv(order, trans, m, hi - lo, alpha, A + lo, lda, X, incx, beta,
                     Y + lo * incy, incy);
        }
    }
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

struct depth_job {
    int ta, tb; $I m, n; const $R *a; $I lda; const $R *b; $I ldb; $R *parts;
    int64_t k, chunks, step;
};

/* Chunk i's share of the depth (k), in steps of at most BLOCK m*n*k, into its own partial C. */
static void gemm_depth(void *arg, int64_t i) {
    const struct depth_job *j = (const struct depth_job *)arg;
    const int64_t lo = j->k * i / j->chunks, hi = j->k * (i + 1) / j->chunks;
    $R *part = j->parts + i * (int64_t)j->m * j->n;
    for (int64_t s = lo; s < hi; s += j->step) {
        const int64_t e = hi - s < j->step ? hi : s + j->step;
        const $R *a = j->ta == 111 ? j->a + s : j->a + s * j->lda;  /* columns of op(a) */
        const $R *b = j->tb == 111 ? j->b + s * j->ldb : j->b + s;  /* rows of op(b) */
        gemm(101, j->ta, j->tb, j->m, j->n, ($I)(e - s), 1, a, j->lda, b, j->ldb, s == lo ? 0 : 1,
             part, j->n);
    }
}

/* Row-major C = alpha op(a) op(b) + beta C, as cblas_?gemm(101, ...) takes it. */
void eq_gemm(int ta, int tb, $I m, $I n, $I k, $R alpha, const char *a, $I lda,
             const char *b, $I ldb, $R beta, char *c, $I ldc) {
    const int64_t panel = (int64_t)n * k, out = (int64_t)m * n;
    $R *C = ($R *)c;
    if (run && ta == 112 && out > 0 && out * 8 <= $BLOCK && out * k >= $SPLIT && k >= 16) {
        /* op(a) = a^T: blocks of rows of C would each read a strip of a's columns across all
           its rows; cut the depth instead (rows of a), each chunk into its own partial C. */
        int64_t chunks = k / 8 < $MOST ? k / 8 : $MOST;
        $R *parts = ($R *)malloc(sizeof($R) * chunks * out);
        if (parts) {
            struct depth_job j = {ta, tb, m, n, (const $R *)a, lda, (const $R *)b, ldb, parts, k,
                                  chunks, $BLOCK / out};
            run(gemm_depth, &j, chunks);
            for (int64_t r = 0; r < m; r++)
                for (int64_t q = 0; q < n; q++) {
                    $R sum = parts[r * n + q];
                    for (int64_t i = 1; i < chunks; i++) sum += parts[i * out + r * n + q];
                    $R *at = C + r * ldc + q;  /* (beta 0: C is not read, as BLAS has it) */
                    *at = beta == 0 ? alpha * sum : beta * *at + alpha * sum;
                }
            free(parts);
            return;
        }
    }
    if (!run || panel == 0 || panel * 8 > $BLOCK || (int64_t)m * panel < $SPLIT) {
        gemm(101, ta, tb, m, n, k, alpha, (const $R *)a, lda, (const $R *)b, ldb, beta, C, ldc);
        return;
    }
    struct rows_job j = {ta, tb, n, k, alpha, (const $R *)a, lda, (const $R *)b, ldb, beta, C,
                         ldc, m, $BLOCK / panel};
    run(gemm_rows, &j, (m + j.rows - 1) / j.rows);
}

void eq_set(void *gv, void *gm, void *pool) {
    gemv = (gemv_t)gv;
    gemm = (gemm_t)gm;
    run = (void (*)(eq_task, void *, int64_t))pool;
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
    source = _SOURCE.substitute(
        I=i, R=real, BLOCK=BLOCK, SPLIT=SPLIT, GEMV_SPLIT=GEMV_SPLIT, MOST=pool.MOST_CHUNKS
    )
    cdef = (
        f"void eq_gemv(int, int, {i}, {i}, {real}, void *, {i}, void *, {i}, {real}, void *, "
        f"{i});\nvoid eq_gemm(int, int, {i}, {i}, {i}, {real}, void *, {i}, void *, {i}, "
        f"{real}, void *, {i});\nvoid eq_set(void *, void *, void *);"
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
    )
    return library.lib.eq_gemm, library.lib.eq_gemv
