"""The worker threads that row passes, large elementwise loops and BLAS's threaded products
share, one set for every compiled function.

`eq_pool_run(fn, ctx, n)` runs fn(ctx, 0) .. fn(ctx, n - 1). The calling thread claims chunks
itself, and the workers claim what is left, so a call never waits for a worker to wake: when all
of them sleep, the caller runs every chunk and returns. A worker spins for `SPIN_NS` after its
last chunk before it sleeps, so the next call of a training loop finds it awake. (OpenMP under
eqsat's passive wait policy wakes its second thread on every parallel region, which cost 23-45 us
on a VM: as much as splitting a 400x784 sweep saves. Spinning OpenMP threads instead, the policy
is global and they fought OpenBLAS's threads: one step took 42 ms.) Which chunks a worker takes
changes from call to call; what a chunk computes does not, so results don't either.

OpenBLAS's own threads spin for 0.1 s after every call, on the cores the loops after a product
need. `drive_blas` hands OpenBLAS's threaded calls to this pool instead (its threads callback,
OpenBLAS >= 0.3.27): OpenBLAS still cuts a product into parts, one per thread it would use, and
the pool runs them all at once (they wait on each other's packed panels, so the pool starts a
worker for each part but one, and a BLAS job waits for a running job to end rather than going
inline as a second elementwise caller does). In an MLP step the tanh after the first product
then runs on both cores (73 us instead of 132). Where the callback is not there, chunks instead
stay in the caller for `QUIET_NS` after each product.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import cffi

from eqsat.codegen import blas
from eqsat.codegen.compile import CompileError, Library, load
from eqsat.config import config

SPIN_NS = 200_000
# Elements per chunk of an elementwise loop: 8-50 us of work, a multiple of any cache line;
# longer loops are cut into at most MOST_CHUNKS chunks, each a multiple of CHUNK
# (and no more threads than that are started).
CHUNK = 1 << 14
MOST_CHUNKS = 16
MOST_THREADS = 63  # workers at most (OpenBLAS's parts of one product: one per its thread)
# OpenBLAS's threads spin (busy, in user mode) for about 0.1 s after each call they work on:
# 110 ms of CPU time measured after one 256x784x512 product. A chunk handed to a worker on the
# core such a thread spins on waits for the scheduler to switch between them; in an MLP step,
# where a product comes every few milliseconds, sharing the elementwise loops made the step
# 5.5-5.9 ms instead of 5.1. So where the pool does not run BLAS's threads (drive_blas), for
# this long after a BLAS call chunks run in the caller.
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
static int64_t blas_jobs;     /* BLAS calls whose parts the pool ran */
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

static __thread int in_chunk;  /* this thread is running a chunk */

static void claim(job_t *j) {
    int64_t c;
    while ((c = ADD(j->next, 1)) < j->n) {
        in_chunk++;
        j->fn(j->ctx, c);
        in_chunk--;
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

static int pinned;

static void add_workers(int want) {  /* under lock */
    while (workers < want && workers < $MOST_THREADS) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int ok = pthread_create(&t, &attr, worker, NULL) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break;
        workers++;
    }
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
    pinned = 1;
    /* (a loop has at most that many chunks; a BLAS job adds what it needs) */
    add_workers((n < $MOST_CHUNKS ? n : $MOST_CHUNKS) - 1);
}

static void started(void) {
    if (LOAD(workers) < 0) {
        pthread_mutex_lock(&lock);
        if (workers < 0) start();
        pthread_mutex_unlock(&lock);
    }
}

/* Run a job that `current` holds: the workers take chunks beside the caller. */
static void share(job_t *j) {
    ADD(posted, 1);
    if (LOAD(sleepers) > 0) {
        pthread_mutex_lock(&lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&lock);
    }
    claim(j);
    for (int s = 0; LOAD(j->done) < j->n; s++) {  /* a worker finishes the chunk it took */
        if (s < 4096) relax();
        else sched_yield();
    }
    STORE(current, NULL);
    while (LOAD(busy) > 0) relax();
}

void eq_pool_run(eq_task fn, void *ctx, int64_t n) {
    job_t j = {fn, ctx, n, 0, 0};
    if (n > 1) started();
    job_t *none = NULL;  /* a second caller while a job runs (another thread) goes inline */
    if (n <= 1 || workers == 0 || now_ns() < LOAD(blas_until)
        || !__atomic_compare_exchange_n(&current, &none, &j, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
        for (int64_t c = 0; c < n; c++) fn(ctx, c);
        return;
    }
    share(&j);
}

/* OpenBLAS's threads callback: run dojob(i, data + i * size, arg) for i < num, all at once
   (the parts of a threaded product wait on each other's packed panels, so each needs a thread
   of its own while the others run). */
typedef void (*eq_dojob)(int, void *, int);
typedef struct { eq_dojob dojob; char *data; size_t size; int arg; } blas_job_t;

static void blas_part(void *ctx, int64_t c) {
    blas_job_t *b = (blas_job_t *)ctx;
    b->dojob((int)c, b->data + (size_t)c * b->size, b->arg);
}

void eq_pool_blas(int sync, eq_dojob dojob, int num, size_t size, void *data, int arg) {
    (void)sync;  /* (OpenBLAS always asks to wait) */
    blas_job_t b = {dojob, (char *)data, size, arg};
    job_t j = {blas_part, &b, num, 0, 0};
    /* In a chunk the caller is a row pass's gemv, whose parts stand alone, so they run here in
       turn; a chunk's products (eqsat/codegen/c_split.py) are kept to sizes OpenBLAS runs whole. */
    if (num <= 1 || in_chunk) {
        for (int c = 0; c < num; c++) blas_part(&b, c);
        return;
    }
    started();
    if (LOAD(workers) < num - 1) {
        pthread_mutex_lock(&lock);
        add_workers(num - 1);
        pthread_mutex_unlock(&lock);
    }
    for (;;) {  /* another thread's job ends without waiting on anything */
        job_t *none = NULL;
        if (__atomic_compare_exchange_n(&current, &none, &j, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            break;
        sched_yield();
    }
    ADD(blas_jobs, 1);
    share(&j);
}

int64_t eq_pool_blas_jobs(void) { return LOAD(blas_jobs); }
int eq_pool_pinned(void) { started(); return pinned; }
void *eq_pool_blas_address(void) { return (void *)eq_pool_blas; }

void *eq_pool_address(void) { return (void *)eq_pool_run; }
void eq_pool_after_blas(void) { STORE(blas_until, now_ns() + $QUIET); }
"""

_CDEF = """void *eq_pool_address(void);
void eq_pool_after_blas(void);
int eq_pool_pinned(void);
void *eq_pool_blas_address(void);
int64_t eq_pool_blas_jobs(void);"""


@functools.cache
def _library() -> Library | None:
    try:
        source = _SOURCE.replace("$SPIN", str(SPIN_NS)).replace("$QUIET", str(QUIET_NS))
        source = source.replace("$MOST_CHUNKS", str(MOST_CHUNKS))
        return load(source.replace("$MOST_THREADS", str(MOST_THREADS)), _CDEF)
    except CompileError:
        return None


def address() -> int | None:
    """The address of eq_pool_run for compiled libraries to call, or None where the pool
    can't be built (row passes then run their chunks in the calling thread)."""
    library = _library()
    if library is None:
        return None
    return int(library.ffi.cast("intptr_t", library.lib.eq_pool_address()))


@functools.cache
def drive_blas() -> bool:
    """Make the pool run BLAS's threaded calls (OpenBLAS's threads callback), so that BLAS's own
    threads don't spin on the cores after each call; whether it does."""
    if config.blas_threads not in ("eqsat", "blas"):
        raise ValueError(
            "config.blas_threads (EQSAT_BLAS_THREADS) must be 'eqsat' or 'blas', got "
            f"{config.blas_threads!r}"
        )
    library, found = _library(), blas.find()
    if config.blas_threads == "blas" or library is None or found is None:
        return False
    if not library.lib.eq_pool_pinned():  # (its workers could not outlive the library)
        return False
    ffi = cffi.FFI()
    names = [p.format(f="set_threads_callback_function") for p in _SETTERS]
    ffi.cdef("\n".join(f"void {n}(void *);" for n in names))
    lib = ffi.dlopen(found.path)
    for name in names:
        try:
            setter = getattr(lib, name)
        except AttributeError:
            continue
        setter(library.lib.eq_pool_blas_address())
        _HELD.append((ffi, lib))
        return True
    return False


def blas_jobs() -> Callable[[], int] | None:
    """The count of BLAS calls whose parts the pool has run, where it runs them (drive_blas)."""
    return _library().lib.eq_pool_blas_jobs if drive_blas() else None


_SETTERS = ("scipy_openblas_{f}64_", "scipy_openblas_{f}", "openblas_{f}")
_HELD: list[object] = []


def after_blas() -> Callable[[], None]:
    """What to call after each BLAS call that may have used BLAS's own threads: for QUIET_NS
    after it, chunks run in the caller (a no-op where the pool can't be built, or runs BLAS's
    threaded calls itself)."""
    library = _library()
    if library is None or drive_blas():
        return lambda: None
    return library.lib.eq_pool_after_blas


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
/* Chunks of a loop of `total` elements cut along an axis of `rows`: one below `from`, else
   about one per CHUNK elements, at most {MOST_CHUNKS} and at most one per row; eq_parts, at
   least 8 along the axis (a 64-byte line of doubles: two threads never write the same line). */
static inline int64_t eq_rows(int64_t total, int64_t from, int64_t rows) {{
    int64_t n = total < from ? 1 : (total + {CHUNK - 1}) / {CHUNK};
    if (n > {MOST_CHUNKS}) n = {MOST_CHUNKS};
    if (n > rows) n = rows;
    return n < 1 ? 1 : n;
}}
static inline int64_t eq_parts(int64_t total, int64_t from, int64_t span) {{
    return eq_rows(total, from, span / 8);
}}
/* Where chunk c of `chunks` starts along an axis of `span` (c == chunks: the end). */
static inline int64_t eq_cut(int64_t span, int64_t c, int64_t chunks) {{
    return c >= chunks ? span : span * c / chunks / 8 * 8;
}}
"""
SETTER = "void eq_set_pool(void *pool);"
