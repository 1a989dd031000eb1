/* test_pool.c - the pool allocator and the per-thread table (pool.c):
 * caches, flush, cap, every bad input and bad free (fast and slow paths),
 * the thread-cache handle (owner, other thread, poisoning pool), many pools
 * at once, thread exit, 10,000 short-lived threads, reuse of a
 * destroyed pool's id, objects crossing threads, concurrent double frees. */
#define _GNU_SOURCE
#include "xtest.h"


static mp_pool_stats_t stats_of(mp_pool_t *p) {
    mp_pool_stats_t st;
    memset(&st, 0xff, sizeof st);
    CHECK_EQ(mp_pool_stats(p, &st), MP_OK);
    return st;
}

/* p's error counts and live objects are these. */
static void check_counts(mp_pool_t *p, uint64_t dbl, uint64_t interior, uint64_t foreign,
                         uint64_t bad, size_t allocated) {
    mp_pool_stats_t st = stats_of(p);
    CHECK_EQ(st.errors.double_free, dbl);
    CHECK_EQ(st.errors.interior, interior);
    CHECK_EQ(st.errors.foreign, foreign);
    CHECK_EQ(st.errors.bad_request, bad);
    CHECK_EQ(st.allocated, allocated);
}

TEST(create_and_basic_use) {
    static const size_t sizes[] = { 1, 16, 24, 64, 100, 256, 4096, 10000, 1 << 20 };
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        for (unsigned flags = 0; flags <= MP_FLAG_CACHELINE; flags++) {
            mp_pool_t *p = mp_pool_create(sizes[k], 0, 50, 0, flags);
            REQUIRE(p != NULL);
            size_t align = flags ? 64 : 16, n = 60;
            void *o[60];
            for (size_t i = 0; i < n; i++) {
                o[i] = mp_pool_alloc(p);
                REQUIRE(o[i] != NULL);
                CHECK_EQ((uintptr_t)o[i] & (align - 1), 0);
                harness_fill(o[i], sizes[k], (uintptr_t)o[i]);
            }
            qsort(o, n, sizeof *o, cmp_ptr);
            for (size_t i = 1; i < n; i++) CHECK((uintptr_t)o[i] - (uintptr_t)o[i - 1] >= sizes[k]);
            for (size_t i = 0; i < n; i++) CHECK(harness_verify(o[i], sizes[k], (uintptr_t)o[i]) == (size_t)-1);
            mp_pool_stats_t st = stats_of(p);
            CHECK_EQ(st.allocated, n);
            CHECK_EQ(st.capacity, st.allocated + st.free);
            CHECK_GE(st.obj_size, sizes[k]);
            CHECK_EQ(st.threads, 1);
            for (size_t i = 0; i < n; i++) CHECK_EQ(mp_pool_free(p, o[i]), MP_OK);
            st = stats_of(p);
            CHECK_EQ(st.allocated, 0);
            CHECK_GT(st.cached, 0);
            CHECK_EQ(mp_pool_flush(p), MP_OK);
            st = stats_of(p);
            CHECK_EQ(st.cached, 0);
            CHECK_EQ(st.allocated, 0);
            mp_pool_destroy(p);
        }
    }
}

TEST(bad_create_and_null_pool) {
    CHECK(mp_pool_create(0, 0, 0, 0, 0) == NULL);
    CHECK_EQ(mp_last_error(), MP_EINVAL);
    errno = 0;
    CHECK(mp_pool_create(((size_t)16 << 20) + 1, 0, 0, 0, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_pool_create(64, 65537, 0, 0, 0) == NULL);
    CHECK(mp_pool_create(64, 0, 0, 0, 0x80) == NULL);
    CHECK(mp_pool_create(64, 0, 10, 9, 0) == NULL);
    CHECK_EQ(mp_last_error(), MP_EINVAL);
    errno = 0;
    CHECK(mp_pool_create(64, 0, SIZE_MAX / 2, 0, 0) == NULL);   /* fails at once */
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(mp_pool_alloc(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    int x;
    CHECK_EQ(mp_pool_free(NULL, &x), MP_EINVAL);
    CHECK_EQ(mp_pool_flush(NULL), MP_EINVAL);
    mp_pool_stats_t st;
    CHECK_EQ(mp_pool_stats(NULL, &st), MP_EINVAL);
    mp_pool_destroy(NULL);
}

TEST(cache_size_one_and_cap) {
    mp_pool_t *p = mp_pool_create(40, 1, 0, 70, 0);
    REQUIRE(p != NULL);
    void *o[70];
    for (int i = 0; i < 70; i++) {
        o[i] = mp_pool_alloc(p);
        REQUIRE(o[i] != NULL);
    }
    errno = 0;
    CHECK(mp_pool_alloc(p) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(mp_last_error(), MP_ELIMIT);
    mp_pool_stats_t st = stats_of(p);
    CHECK_EQ(st.capacity, 70);
    CHECK_EQ(st.allocated, 70);
    CHECK_EQ(st.errors.limit, 1);
    for (int i = 0; i < 70; i++) CHECK_EQ(mp_pool_free(p, o[i]), MP_OK);
    st = stats_of(p);
    CHECK_EQ(st.allocated, 0);
    CHECK_LE(st.cached, 1);
    for (int i = 0; i < 70; i++) CHECK((o[i] = mp_pool_alloc(p)) != NULL);
    for (int i = 0; i < 70; i++) CHECK_EQ(mp_pool_free(p, o[i]), MP_OK);
    mp_pool_destroy(p);
}

/* With a cap and the default cache, one thread's cache cannot hold the
 * capacity: a thread that allocated and freed one object of a pool capped
 * at 16 took a refill of all 16 into its cache, and another thread then got
 * MP_ELIMIT with none allocated. */
static void *take_all(void *arg) {
    mp_pool_t *p = arg;
    void *o[64];
    size_t n = 0;
    while (n < 64 && (o[n] = mp_pool_alloc(p)) != NULL) n++;
    for (size_t i = 0; i < n; i++) mp_pool_free(p, o[i]);
    return (void *)n;
}

TEST(capped_pool_cache_leaves_room) {
    for (size_t max = 16; max <= 64; max *= 2) {
        mp_pool_t *p = mp_pool_create(40, 0, 0, max, 0);
        REQUIRE(p != NULL);
        void *one = mp_pool_alloc(p);
        REQUIRE(one != NULL);
        CHECK_EQ(mp_pool_free(p, one), MP_OK);      /* now in this thread's cache */
        pthread_t t;
        void *got = NULL;
        REQUIRE(pthread_create(&t, NULL, take_all, p) == 0);
        pthread_join(t, &got);
        CHECK_GE((size_t)got, max - max / 16);
        CHECK_LE((size_t)got, max);
        mp_pool_destroy(p);
    }
}

static int global_obj[64];

/* Bad frees from the fast path (a chunk the cache knows) and the slow path. */
/* Before a thread's first free into a pool, its cache remembers no chunk:
 * no pointer may match that (it did for (void *)1, which then crashed). */
TEST(bad_frees_before_the_first_free) {
    mp_pool_t *p = mp_pool_create(64, 0, 0, 0, 0);
    REQUIRE(p != NULL);
    void *a = mp_pool_alloc(p);                     /* creates the cache */
    REQUIRE(a != NULL);
    for (uintptr_t bad = 1; bad < 4096; bad = bad * 2 + 1)
        CHECK_EQ(mp_pool_free(p, (void *)bad), MP_EFOREIGN);
    CHECK_EQ(mp_pool_free(p, (void *)(uintptr_t)64), MP_EFOREIGN);
    CHECK_EQ(mp_pool_free(p, a), MP_OK);
    mp_pool_destroy(p);
}

TEST(bad_frees_refused_and_counted) {
    mp_pool_t *p = mp_pool_create(64, 0, 100, 0, 0);
    mp_pool_t *q = mp_pool_create(64, 0, 100, 0, 0);
    mp_slab_t *s = mp_slab_create(64, 10, 0, 0);
    REQUIRE(p && q && s);
    void *a = mp_pool_alloc(p), *b = mp_pool_alloc(p), *c = mp_pool_alloc(p);
    void *qa = mp_pool_alloc(q), *sa = mp_slab_alloc(s);
    void *small = mp_malloc(64), *large = mp_malloc(600000);
    int stack_obj;
    REQUIRE(a && b && c && qa && sa && small && large);
    CHECK_EQ(mp_pool_free(p, c), MP_OK);            /* the cache now knows the chunk */

    CHECK_EQ(mp_pool_free(p, NULL), MP_EINVAL);
    CHECK_EQ(mp_pool_free(p, (char *)a + 1), MP_EINTERIOR);
    CHECK_EQ(mp_pool_free(p, (char *)a + 16), MP_EINTERIOR);
    CHECK_EQ(mp_pool_free(p, (char *)a + 32), MP_EINTERIOR);
    uintptr_t chunk = (uintptr_t)a & ~(uintptr_t)((64 << 10) - 1);
    CHECK_EQ(mp_pool_free(p, (void *)chunk), MP_EINTERIOR);
    CHECK_EQ(mp_pool_free(p, (void *)(chunk + (62 << 10))), MP_EINTERIOR); /* not carved */
    CHECK_EQ(mp_pool_free(p, qa), MP_EFOREIGN);
    CHECK_EQ(mp_pool_free(p, sa), MP_EFOREIGN);
    CHECK_EQ(mp_pool_free(p, small), MP_EFOREIGN);
    CHECK_EQ(mp_pool_free(p, large), MP_EFOREIGN);
    CHECK_EQ(mp_pool_free(p, &stack_obj), MP_EFOREIGN);
    CHECK_EQ(mp_pool_free(p, global_obj), MP_EFOREIGN);
    CHECK_EQ(mp_pool_free(p, c), MP_EDOUBLEFREE);   /* fast path */
    CHECK_EQ(mp_pool_free(p, (void *)a), MP_OK);
    CHECK_EQ(mp_pool_free(p, (void *)a), MP_EDOUBLEFREE);
    CHECK_EQ(mp_pool_free(q, a), MP_EFOREIGN);
    check_counts(p, 2, 5, 6, 1, 1);
    CHECK_EQ(mp_pool_free(p, b), MP_OK);
    CHECK_EQ(stats_of(p).allocated, 0);
    CHECK_EQ(mp_pool_free(q, qa), MP_OK);
    mp_slab_free(s, sa);
    mp_free(small);
    mp_free(large);
    mp_pool_destroy(p);
    mp_pool_destroy(q);
    mp_slab_destroy(s);
}

TEST(poison_catches_use_after_free) {
    mp_pool_t *p = mp_pool_create(48, 0, 10, 0, MP_FLAG_POISON);
    REQUIRE(p != NULL);
    volatile unsigned char *a = launder_ptr(mp_pool_alloc(p));
    REQUIRE(a != NULL);
    memset((void *)a, 0, 48);
    CHECK_EQ(mp_pool_free(p, (void *)a), MP_OK);
    CHECK_EQ(a[47], MP_XPOISON_BYTE);
    a[0] = 1;                                   /* use after free */
    CHECK(mp_pool_alloc(p) == a);               /* LIFO cache */
    CHECK_EQ(stats_of(p).errors.poisoned, 1);
    CHECK_EQ(mp_pool_free(p, (void *)a), MP_OK);
    CHECK_EQ(mp_pool_free(p, (void *)a), MP_EDOUBLEFREE);
    CHECK(mp_pool_alloc(p) == a);
    CHECK_EQ(stats_of(p).errors.poisoned, 1);
    mp_pool_destroy(p);
}

/* ---- the thread-cache handle (mp_pool_cache) ------------------------------ */
TEST(cache_handle_basic_and_bad_input) {
    errno = 0;
    CHECK(mp_pool_cache(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_pool_cache_alloc(NULL) == NULL);
    CHECK_EQ(mp_last_error(), MP_EINVAL);
    CHECK_EQ(mp_pool_cache_free(NULL, &errno), MP_EINVAL);

    mp_pool_t *p = mp_pool_create(40, 16, 0, 0, 0);
    mp_pool_t *q = mp_pool_create(40, 16, 0, 0, 0);
    REQUIRE(p && q);
    mp_pool_cache_t *c = mp_pool_cache(p);
    REQUIRE(c != NULL);
    CHECK(mp_pool_cache(p) == c);                 /* one cache per thread and pool */
    void *o[100];
    for (int i = 0; i < 100; i++) {               /* past the cache: refills */
        o[i] = mp_pool_cache_alloc(c);
        REQUIRE(o[i] != NULL);
        harness_fill(o[i], 40, (uintptr_t)i);
    }
    CHECK_EQ(stats_of(p).allocated, 100);
    for (int i = 0; i < 100; i++) CHECK(harness_verify(o[i], 40, (uintptr_t)i) == (size_t)-1);
    /* handle and pool calls mix: same cache */
    CHECK_EQ(mp_pool_free(p, o[0]), MP_OK);
    CHECK(mp_pool_cache_alloc(c) == o[0]);
    for (int i = 0; i < 100; i += 2) CHECK_EQ(mp_pool_cache_free(c, o[i]), MP_OK);  /* past the cache: flushes */
    CHECK(mp_pool_alloc(p) == o[98]);
    CHECK_EQ(mp_pool_cache_free(c, o[98]), MP_OK);
    /* every bad free, through the fast path's chunk test and past it */
    void *qa = mp_pool_alloc(q), *m = mp_malloc(40);
    int on_stack;
    REQUIRE(qa && m);
    CHECK_EQ(mp_pool_cache_free(c, o[0]), MP_EDOUBLEFREE);
    CHECK_EQ(mp_pool_cache_free(c, (char *)o[1] + 8), MP_EINTERIOR);
    CHECK_EQ(mp_pool_cache_free(c, (char *)o[1] + 16), MP_EINTERIOR);
    CHECK_EQ(mp_pool_cache_free(c, qa), MP_EFOREIGN);
    CHECK_EQ(mp_pool_cache_free(c, m), MP_EFOREIGN);
    CHECK_EQ(mp_pool_cache_free(c, &on_stack), MP_EFOREIGN);
    CHECK_EQ(mp_pool_cache_free(c, NULL), MP_EINVAL);
    CHECK_EQ(mp_pool_cache_free(c, (void *)(uintptr_t)1), MP_EFOREIGN);
    check_counts(p, 1, 2, 4, 1, 50);
    for (int i = 1; i < 100; i += 2) CHECK_EQ(mp_pool_cache_free(c, o[i]), MP_OK);
    CHECK_EQ(stats_of(p).allocated, 0);
    CHECK_EQ(mp_pool_free(q, qa), MP_OK);
    mp_free(m);
    mp_pool_destroy(p);
    mp_pool_destroy(q);
}

struct handle_arg {
    mp_pool_t *pool;
    mp_pool_cache_t *c;                           /* the main thread's */
    void *mine, *theirs;                          /* theirs: the main thread's object */
    int freed, refused;
    size_t threads;                               /* caches while the thread ran */
};

static void *other_thread_uses_handle(void *v) {
    struct handle_arg *a = v;
    a->mine = mp_pool_cache_alloc(a->c);          /* not the owner: its own cache */
    a->freed = mp_pool_cache_free(a->c, a->theirs);
    a->refused = mp_pool_cache_free(a->c, a->theirs);
    a->threads = stats_of(a->pool).threads;
    return NULL;
}

TEST(cache_handle_from_another_thread) {
    mp_pool_t *p = mp_pool_create(64, 8, 0, 0, 0);
    REQUIRE(p != NULL);
    struct handle_arg a = { .pool = p, .c = mp_pool_cache(p) };
    REQUIRE(a.c != NULL);
    a.theirs = mp_pool_cache_alloc(a.c);
    void *warm = mp_pool_cache_alloc(a.c);
    REQUIRE(a.theirs && warm);
    CHECK_EQ(mp_pool_cache_free(a.c, warm), MP_OK);  /* the owner's fast paths are warm */
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, other_thread_uses_handle, &a) == 0);
    pthread_join(t, NULL);
    REQUIRE(a.mine != NULL);
    CHECK_EQ(a.freed, MP_OK);
    CHECK_EQ(a.refused, MP_EDOUBLEFREE);
    CHECK_EQ(a.threads, 2);                       /* it made a cache of its own */
    /* the other thread's cache went back to the store when it exited; the
     * main thread's cache did not take what the other thread freed */
    mp_pool_stats_t st = stats_of(p);
    CHECK_EQ(st.threads, 1);
    CHECK_EQ(st.allocated, 1);                    /* a.mine */
    CHECK_EQ(mp_pool_cache_free(a.c, a.mine), MP_OK);
    CHECK_EQ(stats_of(p).allocated, 0);
    mp_pool_destroy(p);
}

TEST(cache_handle_of_a_poisoning_pool) {
    mp_pool_t *p = mp_pool_create(48, 0, 10, 0, MP_FLAG_POISON);
    REQUIRE(p != NULL);
    mp_pool_cache_t *c = mp_pool_cache(p);
    REQUIRE(c != NULL);
    volatile unsigned char *a = launder_ptr(mp_pool_cache_alloc(c));
    REQUIRE(a != NULL);
    memset((void *)a, 0, 48);
    CHECK_EQ(mp_pool_cache_free(c, (void *)a), MP_OK);
    CHECK_EQ(a[47], MP_XPOISON_BYTE);             /* the handle took the poisoning path */
    a[3] = 7;                                     /* use after free */
    CHECK(mp_pool_cache_alloc(c) == a);
    CHECK_EQ(stats_of(p).errors.poisoned, 1);
    CHECK_EQ(mp_pool_cache_free(c, (void *)a), MP_OK);
    mp_pool_destroy(p);
}

/* ---- many pools, each with its own per-thread state ------------------------- */
enum { NPOOLS = 300 };

static void *many_pools_worker(void *v) {
    mp_pool_t **pools = v;
    void *held[NPOOLS];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < NPOOLS; i++) {
            held[i] = mp_pool_alloc(pools[i]);
            CHECK(held[i] != NULL);
            if (held[i]) *(int *)held[i] = i;
        }
        for (int i = 0; i < NPOOLS; i++) {
            if (!held[i]) continue;
            CHECK_EQ(*(int *)held[i], i);
            CHECK_EQ(mp_pool_free(pools[(i + 1) % NPOOLS], held[i]), MP_EFOREIGN);
            CHECK_EQ(mp_pool_free(pools[i], held[i]), MP_OK);
        }
    }
    return NULL;
}

TEST(many_pools_at_once) {
    mp_pool_t **pools = calloc(NPOOLS, sizeof *pools);
    for (int i = 0; i < NPOOLS; i++) {
        pools[i] = mp_pool_create(16 + (size_t)(i % 7) * 16, 8, 0, 0, 0);
        REQUIRE(pools[i] != NULL);
    }
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, many_pools_worker, pools);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < NPOOLS; i++) {
        mp_pool_stats_t st = stats_of(pools[i]);
        CHECK_EQ(st.allocated, 0);
        CHECK_EQ(st.threads, 0);              /* caches went back at thread exit */
        CHECK_EQ(st.cached, 0);
        mp_pool_destroy(pools[i]);
    }
    free(pools);
}

/* ---- thread exit returns the cache ---------------------------------------------- */
static void *exit_worker(void *v) {
    mp_pool_t *p = v;
    void *o[100];
    for (int i = 0; i < 100; i++) o[i] = mp_pool_alloc(p);
    for (int i = 0; i < 100; i++) mp_pool_free(p, o[i]);
    mp_pool_stats_t st = stats_of(p);
    CHECK_EQ(st.threads, 1);
    CHECK_GT(st.cached, 0);
    return NULL;
}

/* A new pool, used by one thread running `worker`, which then exits: no
 * thread cache of it is left, nothing is allocated.  Its free objects. */
static size_t pool_after_thread(void *(*worker)(void *)) {
    mp_pool_t *p = mp_pool_create(32, 0, 0, 0, 0);
    if (p == NULL) { CHECK(p != NULL); return 0; }
    pthread_t t;
    pthread_create(&t, NULL, worker, p);
    pthread_join(t, NULL);
    mp_pool_stats_t st = stats_of(p);
    CHECK_EQ(st.threads, 0);
    CHECK_EQ(st.cached, 0);
    CHECK_EQ(st.allocated, 0);
    mp_pool_destroy(p);
    return st.free;
}

TEST(thread_exit_returns_cache) {
    CHECK_GE(pool_after_thread(exit_worker), 100);
}

/* ---- 10,000 short-lived threads ---------------------------------------------------- */
struct churn {
    mp_pool_t *p;
    void *_Atomic handoff;          /* an object left for the next thread */
};

static void *churn_thread(void *v) {
    struct churn *ch = v;
    void *o[16];
    for (int i = 0; i < 16; i++) {
        o[i] = mp_pool_alloc(ch->p);
        CHECK(o[i] != NULL);
    }
    for (int i = 1; i < 16; i++) CHECK_EQ(mp_pool_free(ch->p, o[i]), MP_OK);
    void *prev = atomic_exchange(&ch->handoff, o[0]);      /* crosses threads */
    if (prev) CHECK_EQ(mp_pool_free(ch->p, prev), MP_OK);
    return NULL;
}

TEST(ten_thousand_threads_leave_no_leak) {
    struct churn ch = { .p = mp_pool_create(64, 0, 0, 0, 0) };
    REQUIRE(ch.p != NULL);
    mp_stats_t before, after;
    /* 1,000 threads first, so that lazily made structures exist before
     * counting; then 10,000 */
    for (int round = 0; round < 2; round++) {
        int total = round == 0 ? 1000 : 10000;
        if (round == 1) mp_stats_get(&before);
        for (int done = 0; done < total && !TEST_FAILED(); done += 8) {
            pthread_t th[8];
            for (int i = 0; i < 8; i++) REQUIRE(pthread_create(&th[i], NULL, churn_thread, &ch) == 0);
            for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
        }
    }
    mp_stats_get(&after);
    mp_pool_stats_t st = stats_of(ch.p);
    CHECK_EQ(st.threads, 0);
    CHECK_EQ(st.cached, 0);
    CHECK_EQ(st.allocated, 1);              /* the last handoff */
    CHECK_LE(st.capacity, 16 * 1024);       /* objects were reused, not leaked */
    /* per-thread tables and caches were freed: mempool's own use is flat */
    CHECK_MSG(after.in_use <= before.in_use + (1 << 20), "in_use %zu -> %zu", before.in_use,
              after.in_use);
    CHECK_EQ(mp_pool_free(ch.p, atomic_load(&ch.handoff)), MP_OK);
    mp_pool_destroy(ch.p);
}

/* ---- a destroyed pool's id reused while a thread still has its entry ----------------- */
static void *helper_alloc_free(void *pool) {
    void *o = mp_pool_alloc(pool);
    CHECK_EQ(mp_pool_free(pool, o), MP_OK);   /* stays in this thread's cache */
    return o;
}

TEST(destroyed_pool_id_reused) {
    xhelper_t h;
    xhelper_start(&h, helper_alloc_free);
    for (int i = 0; i < 50; i++) {
        mp_pool_t *p = mp_pool_create(32 + (size_t)(i % 3) * 32, 0, 0, 0, 0);
        REQUIRE(p != NULL);
        void *o = xhelper_step(&h, p);
        CHECK(o != NULL);
        mp_pool_stats_t st = stats_of(p);
        CHECK_EQ(st.allocated, 0);
        CHECK_EQ(st.threads, 1);
        /* the object sits in the helper's cache: it is free, not ours */
        CHECK_EQ(mp_pool_free(p, o), MP_EDOUBLEFREE);
        mp_pool_destroy(p);              /* the helper keeps a stale entry */
    }
    xhelper_stop(&h);
}

/* ---- slabs and heaps take no place in the per-thread tables ------------------------------ */
static void *table_cap_after_use(void *pool) {
    void *o = mp_pool_alloc(pool);
    CHECK_EQ(mp_pool_free(pool, o), MP_OK);
    return (void *)(uintptr_t)_mp_xtls->cap;
}

TEST(heaps_and_slabs_leave_thread_tables_small) {
    /* Pools and arenas are numbered apart from slabs and heaps: with one
     * numbering, a pool made after 4000 heaps and slabs was number 4000,
     * and every thread that used it got a 4096-entry table (2 MiB for
     * each thread after 200,000 heaps). */
    enum { N = 2000 };
    static mp_heap_t *heaps[N];
    static mp_slab_t *slabs[N];
    for (int i = 0; i < N; i++) {
        heaps[i] = mp_heap_create(0);
        slabs[i] = mp_slab_create(64, 1, 0, 0);
        REQUIRE(heaps[i] != NULL && slabs[i] != NULL);
    }
    mp_pool_t *p = mp_pool_create(48, 0, 0, 0, 0);
    mp_arena_t *a = mp_arena_create(0, 0);
    REQUIRE(p != NULL && a != NULL);
    pthread_t t;
    void *cap;
    REQUIRE(pthread_create(&t, NULL, table_cap_after_use, p) == 0);
    pthread_join(t, &cap);
    CHECK_MSG((uintptr_t)cap <= 64, "a thread's table: %zu entries", (size_t)(uintptr_t)cap);
    CHECK(mp_arena_alloc(a, 100) != NULL);
    CHECK_MSG(_mp_xtls->cap <= 64, "this thread's table: %u entries", _mp_xtls->cap);
    mp_arena_destroy(a);
    mp_pool_destroy(p);
    for (int i = 0; i < N; i++) {
        mp_heap_destroy(heaps[i]);
        mp_slab_destroy(slabs[i]);
    }
}

/* ---- objects crossing threads ----------------------------------------------------------- */
static void *pool_cross_make(void *p, uint64_t *rng, int i) {
    uint64_t *o = mp_pool_alloc(p);
    if (o != NULL) {
        o[0] = (uintptr_t)o;
        o[3] = ~(uintptr_t)o;
    }
    return o;
}

static void pool_cross_take(void *p, void *obj) {
    uint64_t *q = obj;
    CHECK_EQ(q[0], (uintptr_t)q);
    CHECK_EQ(q[3], ~(uintptr_t)q);
    CHECK_EQ(mp_pool_free(p, q), MP_OK);
}

/* now and then, give the cache back to the store (objects cross there too) */
static void pool_cross_after(void *p, int i) {
    if (i % 4096 == 0) mp_pool_flush(p);
}

TEST(threads_objects_cross) {
    mp_pool_t *p = mp_pool_create(32, 32, 0, 0, 0);
    REQUIRE(p != NULL);
    xcross_t x = { .alloc = p, .make = pool_cross_make, .take = pool_cross_take,
                   .after = pool_cross_after, .ring_len = 256, .iters = 300000 / SCALE };
    xcross_run(&x);
    for (size_t k = 0; k < x.ring_len; k++)
        if (x.ring[k]) CHECK_EQ(mp_pool_free(p, x.ring[k]), MP_OK);
    mp_pool_stats_t st = stats_of(p);
    CHECK_EQ(st.allocated, 0);
    CHECK_EQ(st.errors.double_free + st.errors.foreign + st.errors.interior, 0);
    xcross_done(&x);
    mp_pool_destroy(p);
}

/* ---- concurrent double frees: exactly one free wins --------------------------------------- */
static int pool_free_fn(void *a, void *p) { return mp_pool_free(a, p); }
static void pool_flush_fn(void *a) { mp_pool_flush(a); }   /* let the main thread have them back */
static void pool_fill(xdfree_t *d) {
    for (int i = 0; i < d->n; i++) d->objs[i] = mp_pool_alloc(d->alloc);
}
static void pool_round_check(xdfree_t *d) { CHECK_EQ(stats_of(d->alloc).allocated, 0); }

TEST(concurrent_double_frees) {
    mp_pool_t *pool = mp_pool_create(64, 0, 0, 0, 0);
    REQUIRE(pool != NULL);
    xdfree_t d = { .alloc = pool, .free_fn = pool_free_fn, .after_frees = pool_flush_fn,
                   .fill = pool_fill, .check = pool_round_check, .n = 200,
                   .rounds = 200 / SCALE };
    xdfree_run(&d);
    long total = (long)d.n * d.rounds;
    CHECK_EQ(d.ok, total);
    CHECK_EQ(d.dbl, total * (T - 1));
    CHECK_EQ(d.other, 0);
    mp_pool_stats_t st = stats_of(pool);
    CHECK_EQ(st.allocated, 0);
    CHECK_EQ(st.errors.double_free, (uint64_t)(total * (T - 1)));
    /* nothing was duplicated: every object comes back once */
    size_t n = st.capacity;
    void **o = calloc(n, sizeof *o);
    for (size_t i = 0; i < n; i++) CHECK((o[i] = mp_pool_alloc(pool)) != NULL);
    qsort(o, n, sizeof *o, cmp_ptr);
    for (size_t i = 1; i < n; i++) CHECK(o[i] != o[i - 1]);
    for (size_t i = 0; i < n; i++) mp_pool_free(pool, o[i]);
    free(o);
    mp_pool_destroy(pool);
}

/* ---- no thread-specific keys left ------------------------------------------------ */
/* The thread caches of pools (and arenas) hang on a pthread key, created at
 * their first use: in a program that has used up every key by then, the
 * creation fails.  Unchecked, the key stayed 0, someone else's key (here
 * the library's own thread-cache key): the pool's cache was stored in that
 * key's slot, never went back at thread exit (its destructor was not ours),
 * and the other key's destructor got a pointer it did not own.  Now such a
 * thread has no cache for the pool and takes the locked paths. */
static void *keyless_worker(void *v) {
    mp_pool_t *p = v;
    void *o[100];
    for (int i = 0; i < 100; i++) CHECK((o[i] = mp_pool_alloc(p)) != NULL);
    for (int i = 0; i < 100; i++) CHECK_EQ(mp_pool_free(p, o[i]), MP_OK);
    free(malloc(64));                     /* the thread's own cache, at exit too */
    return NULL;
}

static int keyless_child(void) {
    pthread_key_t k;
    int n = 0;
    while (pthread_key_create(&k, NULL) == 0) n++;
    CHECK_GT(n, 0);
    pool_after_thread(keyless_worker);
    return harness_test_failures != 0;
}

TEST(no_keys_left) {
    static const char *const env[] = { "MP_TEST_KEYLESS_CHILD=1", NULL };
    CHECK(harness_rerun(env, NULL));
}

int main(void) {
    if (getenv("MP_TEST_KEYLESS_CHILD")) return keyless_child();
    RUN(create_and_basic_use);
    RUN(bad_create_and_null_pool);
    RUN(cache_size_one_and_cap);
    RUN(capped_pool_cache_leaves_room);
    RUN(bad_frees_before_the_first_free);
    RUN(bad_frees_refused_and_counted);
    RUN(poison_catches_use_after_free);
    RUN(cache_handle_basic_and_bad_input);
    RUN(cache_handle_from_another_thread);
    RUN(cache_handle_of_a_poisoning_pool);
    RUN(many_pools_at_once);
    RUN(thread_exit_returns_cache);
    RUN(ten_thousand_threads_leave_no_leak);
    RUN(destroyed_pool_id_reused);
    RUN(heaps_and_slabs_leave_thread_tables_small);
    RUN(threads_objects_cross);
    RUN(concurrent_double_frees);
    RUN(no_keys_left);
    return harness_summary();
}
