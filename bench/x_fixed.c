/*
 * x_fixed.c - fixed-size objects: mempool's slab and pool against
 * mp_malloc and against the process's malloc (glibc, or whatever
 * LD_PRELOAD puts there: bench/run.sh runs it under mimalloc).
 *
 *   x_fixed <kind> <size> <threads> <pairs per thread> [batch]
 *     kind   slab | pool | poolc | mp | malloc
 *            (poolc: the pool through its thread-cache handle, mp_pool_cache)
 *     batch  objects allocated before they are freed, in allocation order
 *            (default 1: alloc+free pairs)
 *
 * Every object gets one 8-byte write.  mempool is loaded with dlopen
 * (MEMPOOL_SO, default <dir of this program>/../libmempool.so), so its mp_
 * calls go through pointers, as calls into a shared library go through the
 * PLT, and malloc stays the process's own.  One line of results:
 *   x_fixed kind=pool size=64 threads=8 pairs=... batch=1 mops=... ns=...
 * mops: pairs per second over all threads (from the start barrier to the
 * last thread's end); ns: nanoseconds per pair per thread (mean).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <mempool/explicit.h>
#define X_NAME "x_fixed"
#include "x_common.h"

enum { K_SLAB, K_POOL, K_POOLC, K_MP, K_MALLOC };

static __typeof__(&mp_slab_create) slab_create_fn;
static __typeof__(&mp_slab_alloc) slab_alloc_fn;
static __typeof__(&mp_slab_free) slab_free_fn;
static __typeof__(&mp_pool_create) pool_create_fn;
static __typeof__(&mp_pool_alloc) pool_alloc_fn;
static __typeof__(&mp_pool_free) pool_free_fn;
static __typeof__(&mp_pool_cache) pool_cache_fn;
static __typeof__(&mp_pool_cache_alloc) pool_cache_alloc_fn;
static __typeof__(&mp_pool_cache_free) pool_cache_free_fn;
static __typeof__(&mp_malloc) mp_malloc_fn;
static __typeof__(&mp_free) mp_free_fn;

static int kind, nthreads, batch;
static size_t size;
static long pairs;
static mp_slab_t *slab;
static mp_pool_t *pool;
static pthread_barrier_t start;

static void load_mempool(void) {
    void *lib = x_open_mempool();
    X_LOAD(lib, slab_create_fn, "mp_slab_create");
    X_LOAD(lib, slab_alloc_fn, "mp_slab_alloc");
    X_LOAD(lib, slab_free_fn, "mp_slab_free");
    X_LOAD(lib, pool_create_fn, "mp_pool_create");
    X_LOAD(lib, pool_alloc_fn, "mp_pool_alloc");
    X_LOAD(lib, pool_free_fn, "mp_pool_free");
    X_LOAD(lib, pool_cache_fn, "mp_pool_cache");
    X_LOAD(lib, pool_cache_alloc_fn, "mp_pool_cache_alloc");
    X_LOAD(lib, pool_cache_free_fn, "mp_pool_cache_free");
    X_LOAD(lib, mp_malloc_fn, "mp_malloc");
    X_LOAD(lib, mp_free_fn, "mp_free");
}

/* One pass of n pairs in batches; returns the number of refused frees. */
#define RUN_LOOP(ALLOC, FREE)                                               \
    do {                                                                    \
        for (long i = 0; i < n; i += batch) {                               \
            for (int j = 0; j < batch; j++) {                               \
                void *p_ = ALLOC;                                           \
                if (p_ == NULL) return -1;                                  \
                *(volatile uint64_t *)p_ = (uint64_t)i;                     \
                slot[j] = p_;                                               \
            }                                                               \
            for (int j = 0; j < batch; j++) {                               \
                void *p_ = slot[j];                                         \
                bad += (FREE) != 0;                                         \
            }                                                               \
        }                                                                   \
    } while (0)

static long run(long n, void **slot) {
    long bad = 0;
    size_t sz = size;
    switch (kind) {
    case K_SLAB: RUN_LOOP(slab_alloc_fn(slab), slab_free_fn(slab, p_)); break;
    case K_POOL: RUN_LOOP(pool_alloc_fn(pool), pool_free_fn(pool, p_)); break;
    case K_POOLC: {
        mp_pool_cache_t *pc = pool_cache_fn(pool);
        if (pc == NULL) return -1;
        RUN_LOOP(pool_cache_alloc_fn(pc), pool_cache_free_fn(pc, p_));
        break;
    }
    case K_MP: RUN_LOOP(mp_malloc_fn(sz), (mp_free_fn(p_), 0)); break;
    default: RUN_LOOP(malloc(sz), (free(p_), 0)); break;
    }
    return bad;
}

struct targ {
    double t0, t1;
    long bad;
};

static void *worker(void *v) {
    struct targ *a = v;
    void **slot = calloc((size_t)batch, sizeof *slot);
    if (slot == NULL) {
        a->bad = -1;
        return NULL;
    }
    run(batch * 2000L, slot);                 /* warm the caches */
    pthread_barrier_wait(&start);
    a->t0 = x_now();
    a->bad = run(pairs, slot);
    a->t1 = x_now();
    free(slot);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: x_fixed slab|pool|poolc|mp|malloc <size> <threads> <pairs per thread> [batch]\n");
        return 2;
    }
    const char *k = argv[1];
    kind = !strcmp(k, "slab") ? K_SLAB : !strcmp(k, "pool") ? K_POOL : !strcmp(k, "poolc") ? K_POOLC
         : !strcmp(k, "mp") ? K_MP : !strcmp(k, "malloc") ? K_MALLOC : -1;
    size = (size_t)strtoull(argv[2], NULL, 10);
    nthreads = atoi(argv[3]);
    pairs = atol(argv[4]);
    batch = argc > 5 ? atoi(argv[5]) : 1;
    if (kind < 0 || size < 8 || nthreads < 1 || pairs < 1 || batch < 1 || batch > 100000) {
        fprintf(stderr, "x_fixed: bad arguments\n");
        return 2;
    }
    pairs = (pairs + batch - 1) / batch * batch;
    load_mempool();
    if (kind == K_SLAB) slab = slab_create_fn(size, (size_t)nthreads * (size_t)batch, 0, 0);
    if (kind == K_POOL || kind == K_POOLC) pool = pool_create_fn(size, 0, (size_t)nthreads * (size_t)batch, 0, 0);
    if ((kind == K_SLAB && !slab) || ((kind == K_POOL || kind == K_POOLC) && !pool)) {
        perror("x_fixed: create");
        return 1;
    }
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    pthread_t *th = calloc((size_t)nthreads, sizeof *th);
    struct targ *arg = calloc((size_t)nthreads, sizeof *arg);
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, worker, &arg[i]) != 0) {
            perror("x_fixed: pthread_create");
            return 1;
        }
    double t0 = 1e300, t1 = 0, sum = 0;
    long bad = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        if (arg[i].t0 < t0) t0 = arg[i].t0;
        if (arg[i].t1 > t1) t1 = arg[i].t1;
        sum += arg[i].t1 - arg[i].t0;
        bad += arg[i].bad;
    }
    if (bad != 0) {
        fprintf(stderr, "x_fixed: %ld allocations or frees failed\n", bad);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double wall = t1 - t0;
    printf("x_fixed kind=%s size=%zu threads=%d pairs=%ld batch=%d mops=%.2f ns=%.2f time_s=%.4f maxrss_kb=%ld\n",
           k, size, nthreads, pairs, batch, (double)pairs * nthreads / wall / 1e6,
           sum / nthreads / (double)pairs * 1e9, wall, ru.ru_maxrss);
    return 0;
}
