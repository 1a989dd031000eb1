/* test_slab.c - the slab allocator (slab.c): layout, growth, cap, every bad
 * input and bad free, stats, poisoning, and threads (free-list stripes
 * sharing objects, objects crossing threads, concurrent double frees, the
 * lock-free lists under pressure). */
#define _GNU_SOURCE
#include "xtest.h"

static mp_slab_stats_t stats_of(mp_slab_t *s) {
    mp_slab_stats_t st;
    memset(&st, 0xff, sizeof st);
    CHECK_EQ(mp_slab_stats(s, &st), MP_OK);
    return st;
}

/* n objects: distinct, aligned, at least `size` apart, writable. */
static void check_objects(void **p, size_t n, size_t size, size_t align) {
    for (size_t i = 0; i < n; i++) {
        CHECK_MSG(((uintptr_t)p[i] & (align - 1)) == 0, "%p not aligned to %zu", p[i], align);
        harness_fill(p[i], size, (uintptr_t)p[i]);
    }
    void **q = malloc(n * sizeof *q);
    memcpy(q, p, n * sizeof *q);
    qsort(q, n, sizeof *q, cmp_ptr);
    for (size_t i = 1; i < n; i++)
        CHECK_MSG((uintptr_t)q[i] - (uintptr_t)q[i - 1] >= size, "%p and %p overlap", q[i - 1], q[i]);
    free(q);
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(harness_verify(p[i], size, (uintptr_t)p[i]) == (size_t)-1, "%p damaged", p[i]);
}

TEST(create_sizes_and_alignment) {
    static const size_t sizes[] = { 1, 8, 15, 16, 17, 48, 64, 100, 256, 1000, 4096, 5000,
                                    65536, 1 << 20, 16 << 20 };
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        for (unsigned flags = 0; flags <= MP_FLAG_CACHELINE; flags++) {
            size_t sz = sizes[k];
            mp_slab_t *s = mp_slab_create(sz, 3, 0, flags);
            REQUIRE(s != NULL);
            mp_slab_stats_t st = stats_of(s);
            size_t align = flags & MP_FLAG_CACHELINE ? 64 : 16;
            CHECK_EQ(st.used, 0);
            CHECK_GE(st.capacity, 3);
            CHECK_EQ(st.free, st.capacity);
            CHECK_GE(st.obj_size, sz);
            CHECK_EQ(st.obj_size % align, 0);
            size_t n = sz >= (1 << 20) ? 9 : 40;
            void *p[40];
            for (size_t i = 0; i < n; i++) {
                p[i] = mp_slab_alloc(s);
                REQUIRE(p[i] != NULL);
            }
            check_objects(p, n, sz, align);
            st = stats_of(s);
            CHECK_EQ(st.used, n);
            for (size_t i = 0; i < n; i++) CHECK_EQ(mp_slab_free(s, p[i]), MP_OK);
            st = stats_of(s);
            CHECK_EQ(st.used, 0);
            CHECK_EQ(st.errors.double_free + st.errors.foreign + st.errors.interior, 0);
            mp_slab_destroy(s);
        }
    }
}

TEST(bad_create) {
    errno = 0;
    CHECK(mp_slab_create(0, 10, 0, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mp_last_error(), MP_EINVAL);
    errno = 0;
    CHECK(mp_slab_create(((size_t)16 << 20) + 1, 10, 0, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_slab_create(SIZE_MAX, 10, 0, 0) == NULL);
    CHECK_EQ(mp_last_error(), MP_EINVAL);
    CHECK(mp_slab_create(64, 10, 0, 0x100) == NULL);      /* unknown flag */
    CHECK_EQ(mp_last_error(), MP_EINVAL);
    CHECK(mp_slab_create(64, 10, 5, 0) == NULL);          /* initial > max */
    CHECK_EQ(mp_last_error(), MP_EINVAL);
    errno = 0;
    CHECK(mp_slab_create(64, SIZE_MAX / 2, 0, 0) == NULL); /* cannot hold that many */
    CHECK_EQ(errno, ENOMEM);
}

TEST(null_slab) {
    errno = 0;
    CHECK(mp_slab_alloc(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    int x;
    CHECK_EQ(mp_slab_free(NULL, &x), MP_EINVAL);
    mp_slab_stats_t st;
    CHECK_EQ(mp_slab_stats(NULL, &st), MP_EINVAL);
    mp_slab_destroy(NULL);
    mp_slab_t *s = mp_slab_create(32, 0, 0, 0);
    REQUIRE(s != NULL);
    CHECK_EQ(mp_slab_stats(s, NULL), MP_EINVAL);
    mp_slab_destroy(s);
}

TEST(grows_on_demand) {
    mp_slab_t *s = mp_slab_create(48, 10, 0, 0);
    REQUIRE(s != NULL);
    size_t n = 200000 / SCALE;
    void **p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i] = mp_slab_alloc(s);
        REQUIRE(p[i] != NULL);
        *(size_t *)p[i] = i;
    }
    qsort(p, n, sizeof *p, cmp_ptr);
    for (size_t i = 1; i < n; i++) CHECK((uintptr_t)p[i] - (uintptr_t)p[i - 1] >= 48);
    mp_slab_stats_t st = stats_of(s);
    CHECK_EQ(st.used, n);
    CHECK_GE(st.capacity, n);
    CHECK_GT(st.chunks, 1);
    CHECK_EQ(st.bytes % (64 << 10), 0);
    for (size_t i = 0; i < n; i++) CHECK_EQ(mp_slab_free(s, p[i]), MP_OK);
    CHECK_EQ(stats_of(s).used, 0);
    free(p);
    mp_slab_destroy(s);
}

TEST(hard_cap) {
    mp_slab_t *s = mp_slab_create(64, 0, 100, 0);
    REQUIRE(s != NULL);
    void *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = mp_slab_alloc(s);
        REQUIRE(p[i] != NULL);
    }
    errno = 0;
    CHECK(mp_slab_alloc(s) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(mp_last_error(), MP_ELIMIT);
    mp_slab_stats_t st = stats_of(s);
    CHECK_EQ(st.capacity, 100);
    CHECK_EQ(st.used, 100);
    CHECK_EQ(st.free, 0);
    CHECK_EQ(st.errors.limit, 1);
    CHECK_EQ(mp_slab_free(s, p[50]), MP_OK);
    void *q = mp_slab_alloc(s);
    CHECK(q == p[50]);
    CHECK(mp_slab_alloc(s) == NULL);
    for (int i = 0; i < 100; i++) CHECK_EQ(mp_slab_free(s, p[i]), MP_OK);
    mp_slab_destroy(s);
}

/* Objects freed onto one thread's stripe serve another thread: with the
 * slab at its cap, the second thread must find all 100 (a thread that
 * looked only at its own stripe would fail with MP_ELIMIT). */
struct stripe_arg {
    mp_slab_t *s;
    void *p[100];
    int got;
};

static void *take_all(void *v) {
    struct stripe_arg *a = v;
    for (a->got = 0; a->got < 100; a->got++)
        if ((a->p[a->got] = mp_slab_alloc(a->s)) == NULL) break;
    return NULL;
}

static void *free_all(void *v) {
    struct stripe_arg *a = v;
    for (int i = 0; i < a->got; i++) CHECK_EQ(mp_slab_free(a->s, a->p[i]), MP_OK);
    return NULL;
}

TEST(stripes_share_their_objects) {
    struct stripe_arg a = { .s = mp_slab_create(64, 0, 100, 0) };
    REQUIRE(a.s != NULL);
    for (int round = 0; round < 4; round++) {   /* each round on new threads: other stripes */
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, take_all, &a) == 0);
        pthread_join(t, NULL);
        CHECK_EQ(a.got, 100);
        CHECK_EQ(stats_of(a.s).used, 100);
        REQUIRE(pthread_create(&t, NULL, free_all, &a) == 0);
        pthread_join(t, NULL);
        CHECK_EQ(stats_of(a.s).used, 0);
    }
    CHECK_EQ(stats_of(a.s).capacity, 100);
    CHECK_EQ(stats_of(a.s).errors.limit, 0);
    mp_slab_destroy(a.s);
}

static int global_obj[64];

TEST(bad_frees_refused_and_counted) {
    mp_slab_t *s = mp_slab_create(64, 100, 0, 0);
    mp_slab_t *other = mp_slab_create(64, 100, 0, 0);
    mp_pool_t *pool = mp_pool_create(64, 0, 10, 0, 0);
    mp_heap_t *heap = mp_heap_create(0);
    mp_arena_t *arena = mp_arena_create(0, 0);
    REQUIRE(s && other && pool && heap && arena);
    void *a = mp_slab_alloc(s), *b = mp_slab_alloc(s);
    void *o = mp_slab_alloc(other);
    void *po = mp_pool_alloc(pool), *ho = mp_heap_malloc(heap, 64), *ao = mp_arena_alloc(arena, 64);
    void *small = mp_malloc(64), *large = mp_malloc(1 << 20);
    REQUIRE(a && b && o && po && ho && ao && small && large);
    int stack_obj;
    uintptr_t chunk = (uintptr_t)a & ~(uintptr_t)((64 << 10) - 1);

    CHECK_EQ(mp_slab_free(s, NULL), MP_EINVAL);
    CHECK_EQ(mp_slab_free(s, (char *)a + 1), MP_EINTERIOR);
    CHECK_EQ(mp_slab_free(s, (char *)a + 8), MP_EINTERIOR);
    CHECK_EQ(mp_slab_free(s, (char *)a + 16), MP_EINTERIOR);
    CHECK_EQ(mp_slab_free(s, (char *)a + 63), MP_EINTERIOR);
    CHECK_EQ(mp_slab_free(s, (void *)chunk), MP_EINTERIOR);          /* the header */
    CHECK_EQ(mp_slab_free(s, (void *)(chunk + 64)), MP_EINTERIOR);   /* state bytes */
    CHECK_EQ(mp_slab_free(s, (void *)(chunk + (60 << 10))), MP_EINTERIOR); /* never carved */
    CHECK_EQ(mp_slab_free(s, o), MP_EFOREIGN);                       /* another slab */
    CHECK_EQ(mp_slab_free(s, po), MP_EFOREIGN);
    CHECK_EQ(mp_slab_free(s, ho), MP_EFOREIGN);
    CHECK_EQ(mp_slab_free(s, ao), MP_EFOREIGN);
    CHECK_EQ(mp_slab_free(s, small), MP_EFOREIGN);
    CHECK_EQ(mp_slab_free(s, large), MP_EFOREIGN);
    CHECK_EQ(mp_slab_free(s, &stack_obj), MP_EFOREIGN);
    CHECK_EQ(mp_slab_free(s, global_obj), MP_EFOREIGN);
    CHECK_EQ(mp_slab_free(s, (void *)(uintptr_t)0x10), MP_EFOREIGN);
    CHECK_EQ(mp_slab_free(s, (void *)~(uintptr_t)0xfff), MP_EFOREIGN);
    CHECK_EQ(mp_last_error(), MP_EFOREIGN);
    CHECK_EQ(mp_slab_free(s, a), MP_OK);
    CHECK_EQ(mp_slab_free(s, a), MP_EDOUBLEFREE);
    CHECK_EQ(mp_last_error(), MP_EDOUBLEFREE);
    CHECK_EQ(mp_slab_free(other, a), MP_EFOREIGN);

    mp_slab_stats_t st = stats_of(s);
    CHECK_EQ(st.errors.double_free, 1);
    CHECK_EQ(st.errors.foreign, 10);
    CHECK_EQ(st.errors.interior, 7);
    CHECK_EQ(st.errors.bad_request, 1);
    CHECK_EQ(st.used, 1);                 /* b */
    /* still intact: the same objects come and go */
    void *c = mp_slab_alloc(s);
    CHECK(c == a);
    CHECK_EQ(mp_slab_free(s, b), MP_OK);
    CHECK_EQ(mp_slab_free(s, c), MP_OK);
    CHECK_EQ(stats_of(s).used, 0);
    CHECK_EQ(stats_of(other).errors.foreign, 1);
    CHECK_EQ(mp_slab_free(other, o), MP_OK);

    mp_free(small);
    mp_free(large);
    mp_pool_free(pool, po);
    mp_heap_free(heap, ho);
    mp_slab_destroy(s);
    mp_slab_destroy(other);
    mp_pool_destroy(pool);
    mp_heap_destroy(heap);
    mp_arena_destroy(arena);
}

/* Objects from a destroyed slab are refused by a new one. */
TEST(destroyed_slab_pointers_refused) {
    mp_slab_t *s = mp_slab_create(128, 10, 0, 0);
    REQUIRE(s != NULL);
    void *a = mp_slab_alloc(s);
    mp_slab_destroy(s);
    mp_slab_t *t = mp_slab_create(256, 10, 0, 0);
    REQUIRE(t != NULL);
    int r = mp_slab_free(t, a);
    CHECK(r == MP_EFOREIGN || r == MP_EINTERIOR);
    mp_slab_destroy(t);
}

/* Pointers into another thread's mp_malloc blocks, given to a slab's and a
 * pool's free while that thread allocates, writes and frees its blocks: all
 * refused with MP_EFOREIGN, and (under TSAN) without a data race.  The
 * foreign-pointer check read the page heap's span record for the block,
 * which the other thread's mallocs and frees rewrite (TSAN: 2 races); it
 * reads the class map's chunk mark now. */
static _Atomic(char *) foreign_cur;
static _Atomic int foreign_stop, foreign_enough;

static void *foreign_owner(void *arg) {
    (void)arg;
    /* until the main thread has tried enough pointers (it may not get a CPU
     * for a while), and not forever */
    for (int i = 0; i < 1000000 && !atomic_load(&foreign_enough); i++) {
        char *b = mp_aligned_alloc(1 << 16, 1 << 19);
        if (b == NULL) break;
        atomic_store(&foreign_cur, b);
        for (int k = 0; k < 20; k++) memset(b, i + k, 64);
        atomic_store(&foreign_cur, NULL);
        mp_free(b);
    }
    atomic_store(&foreign_stop, 1);
    return NULL;
}

TEST(foreign_pointers_while_others_allocate) {
    mp_pool_t *p = mp_pool_create(64, 0, 0, 0, 0);
    mp_slab_t *s = mp_slab_create(64, 0, 0, 0);
    REQUIRE(p != NULL && s != NULL);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, foreign_owner, NULL) == 0);
    long refused = 0, other = 0;
    while (!atomic_load(&foreign_stop)) {
        char *b = atomic_load(&foreign_cur);
        if (b == NULL) continue;
        int rp = mp_pool_free(p, b + 128), rs = mp_slab_free(s, b + 128);
        if (rp == MP_EFOREIGN && rs == MP_EFOREIGN) refused++;
        else other++;
        if (refused == 2000) atomic_store(&foreign_enough, 1);
    }
    pthread_join(t, NULL);
    CHECK_EQ(other, 0);
    CHECK_GT(refused, 0);
    mp_pool_destroy(p);
    mp_slab_destroy(s);
}

TEST(poison_catches_use_after_free) {
    mp_slab_t *s = mp_slab_create(64, 10, 0, MP_FLAG_POISON);
    REQUIRE(s != NULL);
    volatile unsigned char *p = launder_ptr(mp_slab_alloc(s));
    REQUIRE(p != NULL);
    memset((void *)p, 1, 64);
    CHECK_EQ(mp_slab_free(s, (void *)p), MP_OK);
    CHECK_EQ(p[10], MP_XPOISON_BYTE);
    p[10] = 7;                              /* use after free */
    void *q = mp_slab_alloc(s);             /* LIFO: the same object */
    CHECK(q == p);
    CHECK_EQ(stats_of(s).errors.poisoned, 1);
    /* an untouched freed object passes */
    CHECK_EQ(mp_slab_free(s, q), MP_OK);
    void *r = mp_slab_alloc(s);
    CHECK(r == q);
    CHECK_EQ(stats_of(s).errors.poisoned, 1);
    mp_slab_free(s, r);
    mp_slab_destroy(s);
}

/* ---- threads ------------------------------------------------------------------ */

/* The objects cross threads through xcross_t's ring; the stamp is two
 * words derived from the address. */
static void *slab_cross_make(void *s, uint64_t *rng, int i) {
    uint64_t *p = mp_slab_alloc(s);
    if (p != NULL) {
        p[0] = (uintptr_t)p ^ 0x5a5a5a5a;
        p[7] = (uintptr_t)p;
    }
    return p;
}

static void slab_cross_take(void *s, void *obj) {
    uint64_t *q = obj;
    CHECK_EQ(q[0], (uintptr_t)q ^ 0x5a5a5a5a);
    CHECK_EQ(q[7], (uintptr_t)q);
    CHECK_EQ(mp_slab_free(s, q), MP_OK);
}

TEST(threads_objects_cross) {
    mp_slab_t *s = mp_slab_create(64, 0, 0, 0);
    REQUIRE(s != NULL);
    xcross_t x = { .alloc = s, .make = slab_cross_make, .take = slab_cross_take,
                   .ring_len = 64, .iters = 200000 / SCALE };
    xcross_run(&x);
    for (size_t k = 0; k < x.ring_len; k++)
        if (x.ring[k]) CHECK_EQ(mp_slab_free(s, x.ring[k]), MP_OK);
    mp_slab_stats_t st = stats_of(s);
    CHECK_EQ(st.used, 0);
    CHECK_EQ(st.errors.double_free + st.errors.foreign + st.errors.interior, 0);
    xcross_done(&x);
    mp_slab_destroy(s);
}

/* Every thread frees every object of a round at once: each object must be
 * freed exactly once, the others refused as double frees. */
static int slab_free_fn(void *a, void *p) { return mp_slab_free(a, p); }
static void slab_fill(xdfree_t *d) {
    for (int i = 0; i < d->n; i++) d->objs[i] = mp_slab_alloc(d->alloc);
}
static void slab_round_check(xdfree_t *d) { CHECK_EQ(stats_of(d->alloc).used, 0); }

TEST(concurrent_double_frees) {
    mp_slab_t *slab = mp_slab_create(32, 256, 0, 0);
    REQUIRE(slab != NULL);
    xdfree_t d = { .alloc = slab, .free_fn = slab_free_fn, .fill = slab_fill,
                   .check = slab_round_check, .n = 256, .rounds = 200 / SCALE };
    xdfree_run(&d);
    long total = (long)d.n * d.rounds;
    CHECK_EQ(d.ok, total);
    CHECK_EQ(d.dbl, total * (T - 1));
    CHECK_EQ(d.other, 0);
    mp_slab_stats_t st = stats_of(slab);
    CHECK_EQ(st.errors.double_free, (uint64_t)(total * (T - 1)));
    /* the list is intact: all objects come back, once each */
    void **p = calloc((size_t)d.n, sizeof *p);
    for (int i = 0; i < d.n; i++) p[i] = mp_slab_alloc(slab);
    qsort(p, (size_t)d.n, sizeof *p, cmp_ptr);
    for (int i = 1; i < d.n; i++) CHECK(p[i] != p[i - 1]);
    for (int i = 0; i < d.n; i++) CHECK_EQ(mp_slab_free(slab, p[i]), MP_OK);
    free(p);
    mp_slab_destroy(slab);
}

/* ABA pressure: a small slab, many threads popping and pushing; an object
 * handed to two threads at once would show a foreign owner mark. */
static void *aba_worker(void *v) {
    mp_slab_t *s = v;
    uintptr_t me = (uintptr_t)pthread_self();
    void *held[3];
    for (int i = 0; i < 300000 / SCALE && !TEST_FAILED(); i++) {
        int k = 1 + i % 3;
        for (int j = 0; j < k; j++) {
            held[j] = mp_slab_alloc(s);
            if (held[j] == NULL) {
                CHECK(held[j] != NULL);
                return NULL;
            }
            *(_Atomic uintptr_t *)held[j] = me;
        }
        for (int j = 0; j < k; j++) {
            CHECK_EQ(*(_Atomic uintptr_t *)held[j], me);
            CHECK_EQ(mp_slab_free(s, held[j]), MP_OK);
        }
    }
    return NULL;
}

TEST(lock_free_list_under_pressure) {
    mp_slab_t *s = mp_slab_create(16, 0, 0, 0);
    REQUIRE(s != NULL);
    pthread_t th[T];
    for (int i = 0; i < T; i++) pthread_create(&th[i], NULL, aba_worker, s);
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    mp_slab_stats_t st = stats_of(s);
    CHECK_EQ(st.used, 0);
    CHECK_LE(st.capacity, 64 * 1024);     /* no runaway growth */
    mp_slab_destroy(s);
}

/* Every layout keeps its parts apart: the chunk header and state bytes,
 * then (slab) one link per object, then the objects, all inside the chunk.
 * Rounding the objects' base up to the granule once left room for one
 * object more than there were links, whose link was object 0's first word
 * (obj_size 16, 176, 368, 656, 1360, ...). */
TEST(layout_parts_never_overlap) {
    static const size_t initials[] = { 0, 1000, 20000, 100000, 1000000 };
    for (size_t sz = 1; sz <= 40000; sz += sz < 4096 ? 1 : 97) {
        for (size_t k = 0; k < sizeof initials / sizeof *initials; k++) {
            for (unsigned flags = 0; flags <= MP_FLAG_CACHELINE; flags += MP_FLAG_CACHELINE) {
                for (int links = 0; links <= 1; links++) {
                    mp_xlayout_t l;
                    REQUIRE(_mp_xlayout(sz, initials[k], flags, links, &l) == MP_OK);
                    size_t meta = MP_XCHUNK_HDR + (l.chunk_bytes >> l.sshift);
                    size_t objs_from = links ? l.links_off + 4 * (size_t)l.nobj : meta;
                    CHECK_MSG(l.nobj >= 8, "size %zu: %u objects", sz, l.nobj);
                    CHECK_MSG(!links || l.links_off >= meta, "size %zu: links inside the header", sz);
                    CHECK_MSG(l.base >= objs_from, "size %zu initial %zu flags %u links %d: "
                              "%u objects from %zu, but their links or states end at %zu",
                              sz, initials[k], flags, links, l.nobj, l.base, objs_from);
                    CHECK_MSG(l.base + (size_t)l.nobj * l.stride <= l.chunk_bytes,
                              "size %zu: objects past the chunk", sz);
                    CHECK_EQ(l.base % ((size_t)1 << l.sshift), 0);
                }
            }
        }
    }
}

/* The same, seen from outside: a whole chunk handed out, object 0 filled
 * first, is still intact; then the last object is freed and taken again. */
TEST(full_chunk_leaves_object_zero_alone) {
    static const size_t sizes[] = { 1, 16, 100, 176, 368, 656, 1345, 1360 };
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t sz = sizes[k];
        mp_slab_t *s = mp_slab_create(sz, 0, 0, 0);
        REQUIRE(s != NULL);
        void *first = mp_slab_alloc(s);
        REQUIRE(first != NULL);
        harness_fill(first, sz, (uintptr_t)first);
        size_t n = stats_of(s).capacity;                /* the first chunk's */
        REQUIRE(n >= 8);
        void **p = malloc(n * sizeof *p);
        REQUIRE(p != NULL);
        p[0] = first;
        for (size_t i = 1; i < n; i++) {
            p[i] = mp_slab_alloc(s);
            REQUIRE(p[i] != NULL);
            harness_fill(p[i], sz, (uintptr_t)p[i]);
        }
        CHECK_EQ(stats_of(s).capacity, n);             /* still one chunk */
        CHECK_EQ(mp_slab_free(s, p[n - 1]), MP_OK);
        void *again = mp_slab_alloc(s);
        CHECK(again == p[n - 1]);
        for (size_t i = 0; i + 1 < n; i++)
            CHECK_MSG(harness_verify(p[i], sz, (uintptr_t)p[i]) == (size_t)-1,
                      "size %zu: object %zu of %zu damaged", sz, i, n);
        free(p);
        mp_slab_destroy(s);
    }
}

TEST(strerror_names_every_code) {
    for (int c = MP_EINTERIOR; c <= MP_OK; c++) {
        const char *m = mp_strerror(c);
        CHECK(m != NULL && strcmp(m, "unknown error") != 0);
    }
    CHECK(strcmp(mp_strerror(12345), "unknown error") == 0);
    CHECK(strcmp(mp_strerror(MP_EDOUBLEFREE), "double free") == 0);
}

int main(void) {
    RUN(create_sizes_and_alignment);
    RUN(bad_create);
    RUN(null_slab);
    RUN(grows_on_demand);
    RUN(hard_cap);
    RUN(stripes_share_their_objects);
    RUN(bad_frees_refused_and_counted);
    RUN(destroyed_slab_pointers_refused);
    RUN(foreign_pointers_while_others_allocate);
    RUN(poison_catches_use_after_free);
    RUN(threads_objects_cross);
    RUN(concurrent_double_frees);
    RUN(lock_free_list_under_pressure);
    RUN(layout_parts_never_overlap);
    RUN(full_chunk_leaves_object_zero_alone);
    RUN(strerror_names_every_code);
    return harness_summary();
}
