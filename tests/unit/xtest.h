/*
 * xtest.h - what the explicit allocators' unit tests (test_slab, test_pool,
 * test_arena, test_heap) share: the common includes, the work scale under
 * the sanitizers, pointer and range comparison for qsort, a lockstep helper
 * thread, the objects-crossing-threads driver and the concurrent
 * double-free driver.
 */
#ifndef MP_XTEST_H
#define MP_XTEST_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "mempool/explicit.h"
#include "xalloc.h"

#ifdef MP_SANITIZE
#define SCALE 10          /* the sanitizers are slow: a tenth of the work */
#else
#define SCALE 1
#endif

enum { T = 8 };           /* threads in the multi-thread tests */

static inline int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

struct range {
    uintptr_t p;
    size_t n;
};

static inline int cmp_range(const void *a, const void *b) {
    uintptr_t x = ((const struct range *)a)->p, y = ((const struct range *)b)->p;
    return x < y ? -1 : x > y;
}

/* A second thread in lockstep with the test: each xhelper_step(h, alloc)
 * runs step(alloc) on it and returns what step returned.  For tests of what
 * another thread's per-thread state does across resets and destroys. */
typedef struct xhelper {
    pthread_barrier_t go, done;
    void *(*step)(void *alloc);
    void *_Atomic alloc;
    void *_Atomic got;
    _Atomic int quit;
    pthread_t t;
} xhelper_t;

static void *xhelper_main(void *v) {
    xhelper_t *h = v;
    for (;;) {
        pthread_barrier_wait(&h->go);
        if (atomic_load(&h->quit)) break;
        atomic_store(&h->got, h->step(atomic_load(&h->alloc)));
        pthread_barrier_wait(&h->done);
    }
    return NULL;
}

static inline void xhelper_start(xhelper_t *h, void *(*step)(void *alloc)) {
    memset(h, 0, sizeof *h);
    h->step = step;
    pthread_barrier_init(&h->go, NULL, 2);
    pthread_barrier_init(&h->done, NULL, 2);
    REQUIRE(pthread_create(&h->t, NULL, xhelper_main, h) == 0);
}

static inline void *xhelper_step(xhelper_t *h, void *alloc) {
    atomic_store(&h->alloc, alloc);
    pthread_barrier_wait(&h->go);
    pthread_barrier_wait(&h->done);
    return atomic_load(&h->got);
}

static inline void xhelper_stop(xhelper_t *h) {
    atomic_store(&h->quit, 1);
    pthread_barrier_wait(&h->go);
    pthread_join(h->t, NULL);
    pthread_barrier_destroy(&h->go);
    pthread_barrier_destroy(&h->done);
}

/* Objects crossing threads: T threads each run `iters` times: `make` an
 * object (allocated and stamped; NULL is a failure), swap it into a random
 * slot of a shared ring, and hand what comes out - usually another thread's
 * object - to `take`, which checks its stamp and frees it.  `after`, if
 * set, runs at the end of each iteration.  What the ring holds when the
 * threads are done is the test's to judge; xcross_done frees the ring. */
typedef struct xcross {
    void *alloc;                                   /* the allocator under test */
    void *(*make)(void *alloc, uint64_t *rng, int i);
    void (*take)(void *alloc, void *obj);
    void (*after)(void *alloc, int i);             /* or NULL */
    size_t ring_len;
    int iters;
    void *_Atomic *ring;
} xcross_t;

static void *xcross_worker(void *v) {
    xcross_t *x = v;
    uint64_t rng = (uint64_t)pthread_self() | 1;
    for (int i = 0; i < x->iters && !TEST_FAILED(); i++) {
        void *o = x->make(x->alloc, &rng, i);
        if (o == NULL) {
            CHECK(o != NULL);
            break;
        }
        void *q = atomic_exchange(&x->ring[harness_rand(&rng) % x->ring_len], o);
        if (q) x->take(x->alloc, q);
        if (x->after) x->after(x->alloc, i);
    }
    return NULL;
}

static inline void xcross_run(xcross_t *x) {
    x->ring = calloc(x->ring_len, sizeof *x->ring);
    REQUIRE(x->ring != NULL);
    pthread_t th[T];
    for (int i = 0; i < T; i++) pthread_create(&th[i], NULL, xcross_worker, x);
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
}

static inline void xcross_done(xcross_t *x) {
    free(x->ring);
    x->ring = NULL;
}

/* Concurrent double frees: each round, `fill` allocates n objects into
 * objs; then all T threads free every one of them at once, so each object
 * must be freed exactly once and refused T-1 times; `check` runs after the
 * round.  The counts are left in ok / dbl / other for the test to judge. */
typedef struct xdfree {
    void *alloc;                          /* the allocator under test */
    int (*free_fn)(void *alloc, void *p);
    void (*after_frees)(void *alloc);     /* per thread after a round, or NULL */
    void (*fill)(struct xdfree *d);
    void (*check)(struct xdfree *d);      /* after each round, or NULL */
    void **objs;
    int n, rounds;
    _Atomic long ok, dbl, other;
    pthread_barrier_t bar;
} xdfree_t;

static void *xdfree_worker(void *v) {
    xdfree_t *d = v;
    for (int r = 0; r < d->rounds; r++) {
        pthread_barrier_wait(&d->bar);     /* objects ready */
        for (int i = 0; i < d->n; i++) {
            int rc = d->free_fn(d->alloc, d->objs[i]);
            if (rc == MP_OK) atomic_fetch_add(&d->ok, 1);
            else if (rc == MP_EDOUBLEFREE) atomic_fetch_add(&d->dbl, 1);
            else atomic_fetch_add(&d->other, 1);
        }
        if (d->after_frees) d->after_frees(d->alloc);
        pthread_barrier_wait(&d->bar);     /* round done */
    }
    return NULL;
}

static inline void xdfree_run(xdfree_t *d) {
    d->objs = calloc((size_t)d->n, sizeof *d->objs);
    pthread_barrier_init(&d->bar, NULL, T + 1);
    pthread_t th[T];
    for (int i = 0; i < T; i++) pthread_create(&th[i], NULL, xdfree_worker, d);
    for (int r = 0; r < d->rounds; r++) {
        d->fill(d);
        pthread_barrier_wait(&d->bar);
        pthread_barrier_wait(&d->bar);
        if (d->check) d->check(d);
    }
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&d->bar);
    free(d->objs);
    d->objs = NULL;
}

#endif
