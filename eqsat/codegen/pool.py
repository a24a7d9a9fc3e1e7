"""The worker threads that row passes and large elementwise loops hand chunks to, shared by
every compiled function.

`eq_pool_run(fn, ctx, n)` runs fn(ctx, 0) .. fn(ctx, n - 1). The calling thread claims chunks
itself, and the workers claim what is left, so a call never waits for a worker to wake: when all
of them sleep, the caller runs every chunk and returns. A worker spins for `SPIN_NS` after its
last chunk before it sleeps, so the next call of a training loop finds it awake. (OpenMP under
eqsat's passive wait policy wakes its second thread on every parallel region, which cost 23-45 us
on a VM: as much as splitting a 400x784 sweep saves. Spinning OpenMP threads instead, the policy
is global and they fought OpenBLAS's threads: one step took 42 ms.) Which chunks a worker takes
changes from call to call; what a chunk computes does not, so results don't either.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from eqsat.codegen.compile import CompileError, Library, load

SPIN_NS = 200_000
# Elements per chunk of an elementwise loop: 8-50 us of work, a multiple of any cache line;
# longer loops are cut into at most MOST_CHUNKS chunks, each a multiple of CHUNK
# (and no more threads than that are started).
CHUNK = 1 << 14
MOST_CHUNKS = 16
# OpenBLAS's threads spin (busy, in user mode) for about 0.1 s after each call they work on:
# 110 ms of CPU time measured after one 256x784x512 product. A chunk handed to a worker on the
# core such a thread spins on waits for the scheduler to switch between them; in an MLP step,
# where a product comes every few milliseconds, sharing the elementwise loops made the step
# 5.5-5.9 ms instead of 5.1. So for this long after a BLAS call, chunks run in the caller.
QUIET_NS = 120_000_000

_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <sched.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef void (*eq_task)(void *, int64_t);
typedef struct { eq_task fn; void *ctx; int64_t n; int64_t next, done; } job_t;
void eq_pool_run(eq_task fn, void *ctx, int64_t n);

static job_t *current;        /* the job being run, NULL between jobs */
static uint64_t posted;       /* jobs posted so far: a worker takes each one once */
static int busy, sleepers, workers = -1;
static int64_t blas_until;    /* before this time, BLAS's own threads may be spinning */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_SEQ_CST)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_SEQ_CST)
#define ADD(x, v) __atomic_fetch_add(&(x), (v), __ATOMIC_SEQ_CST)

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void claim(job_t *j) {
    int64_t c;
    while ((c = ADD(j->next, 1)) < j->n) {
        j->fn(j->ctx, c);
        ADD(j->done, 1);
    }
}

static void *worker(void *unused) {
    (void)unused;
    uint64_t seen = 0;
    for (;;) {
        int64_t until = now_ns() + $SPIN;
        int spins = 0;
        while (LOAD(posted) == seen) {
            if (++spins % 256 == 0 && now_ns() > until) {
                pthread_mutex_lock(&lock);
                ADD(sleepers, 1);
                while (LOAD(posted) == seen) pthread_cond_wait(&wake, &lock);
                ADD(sleepers, -1);
                pthread_mutex_unlock(&lock);
                break;
            }
            sched_yield();  /* (not a pause: BLAS's threads may want this core meanwhile) */
        }
        seen = LOAD(posted);
        /* busy tells eq_pool_run a worker may hold the job: it waits for 0 before returning,
           so the job (on its stack) outlives every worker that saw it. */
        ADD(busy, 1);
        job_t *j = LOAD(current);
        if (j) claim(j);
        ADD(busy, -1);
    }
    return NULL;
}

static void forked(void) {  /* the child has none of the workers, maybe a lock held by one */
    workers = -1; busy = 0; sleepers = 0; current = NULL;
    pthread_mutex_init(&lock, NULL);
    pthread_cond_init(&wake, NULL);
}

static void start(void) {
    int n = 1;
#ifdef _OPENMP
    n = omp_get_max_threads();  /* OMP_NUM_THREADS=1 runs every chunk on the caller */
#endif
    workers = 0;
    pthread_atfork(NULL, NULL, forked);
    /* The workers run this library's code until the process ends: it must stay mapped when
       Python, exiting, lets go of it (cffi closes a library it frees). */
    Dl_info self;
    if (!dladdr((void *)eq_pool_run, &self) || !self.dli_fname
        || !dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE))
        return;
    for (int i = 1; i < n && i < $MOST_CHUNKS; i++) {  /* (a job has at most that many chunks) */
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker, NULL) == 0) workers++;
        pthread_attr_destroy(&attr);
    }
}

void eq_pool_run(eq_task fn, void *ctx, int64_t n) {
    job_t j = {fn, ctx, n, 0, 0};
    if (n > 1 && LOAD(workers) < 0) {
        pthread_mutex_lock(&lock);
        if (workers < 0) start();
        pthread_mutex_unlock(&lock);
    }
    job_t *none = NULL;  /* a second caller while a job runs (another thread) goes inline */
    if (n <= 1 || workers == 0 || now_ns() < LOAD(blas_until)
        || !__atomic_compare_exchange_n(&current, &none, &j, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
        for (int64_t c = 0; c < n; c++) fn(ctx, c);
        return;
    }
    ADD(posted, 1);
    if (LOAD(sleepers) > 0) {
        pthread_mutex_lock(&lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&lock);
    }
    claim(&j);
    for (int s = 0; LOAD(j.done) < n; s++) {  /* a worker finishes the chunk it took */
        if (s < 4096) relax();
        else sched_yield();
    }
    STORE(current, NULL);
    while (LOAD(busy) > 0) relax();
}

void *eq_pool_address(void) { return (void *)eq_pool_run; }
void eq_pool_after_blas(void) { STORE(blas_until, now_ns() + $QUIET); }
"""

_CDEF = "void *eq_pool_address(void);\nvoid eq_pool_after_blas(void);"


@functools.cache
def _library() -> Library | None:
    try:
        source = _SOURCE.replace("$SPIN", str(SPIN_NS)).replace("$QUIET", str(QUIET_NS))
        return load(source.replace("$MOST_CHUNKS", str(MOST_CHUNKS)), _CDEF)
    except CompileError:
        return None


def address() -> int | None:
    """The address of eq_pool_run for compiled libraries to call, or None where the pool
    can't be built (row passes then run their chunks in the calling thread)."""
    library = _library()
    if library is None:
        return None
    return int(library.ffi.cast("intptr_t", library.lib.eq_pool_address()))


def after_blas() -> Callable[[], None]:
    """What to call after each BLAS call that may have used BLAS's own threads: for QUIET_NS
    after it, chunks run in the caller (a no-op where the pool can't be built)."""
    library = _library()
    return (lambda: None) if library is None else library.lib.eq_pool_after_blas


# What every compiled library declares: the pool's entry, set once after loading by
# eq_set_pool (until then, or where the pool could not be built, chunks run in the caller).
PRELUDE = f"""typedef void (*eq_task)(void *, int64_t);
static void (*eq_pool)(eq_task, void *, int64_t);
void eq_set_pool(void *pool) {{ eq_pool = (void (*)(eq_task, void *, int64_t))pool; }}
static void eq_run_chunks(eq_task fn, void *ctx, int64_t n) {{
    if (eq_pool && n > 1) eq_pool(fn, ctx, n);
    else for (int64_t c = 0; c < n; c++) fn(ctx, c);
}}
/* The chunk length of a loop of `total` elements: all of it below `from` (one chunk), else a
   multiple of CHUNK that makes at most {MOST_CHUNKS} chunks. (A thread's chunks of a new output
   then span whole pages: two threads faulting in the pages of one region wait on each other.) */
static inline int64_t eq_chunk(int64_t total, int64_t from) {{
    if (total < from) return total;
    const int64_t even = (total + {MOST_CHUNKS - 1}) / {MOST_CHUNKS};
    return (even + {CHUNK - 1}) / {CHUNK} * {CHUNK};
}}
"""
SETTER = "void eq_set_pool(void *pool);"
