/* test_heap.c - heaps (heap.c): malloc/calloc/realloc/free of every size,
 * usable sizes, stats, every bad input and bad free, destroy returning the
 * memory, poisoning, one heap shared by threads (objects crossing,
 * concurrent double frees) and a heap per thread. */
#define _GNU_SOURCE
#include "xtest.h"


static mp_heap_stats_t stats_of(mp_heap_t *h) {
    mp_heap_stats_t st;
    memset(&st, 0xff, sizeof st);
    CHECK_EQ(mp_heap_stats(h, &st), MP_OK);
    return st;
}

TEST(malloc_every_size) {
    mp_heap_t *h = mp_heap_create(0);
    REQUIRE(h != NULL);
    enum { N = 3000 };
    static struct range r[N];
    size_t k = 0, live_bytes = 0;
    for (size_t n = 0; n <= ((size_t)1 << 20) && k < N; n += 1 + n / 16) {
        void *p = mp_heap_malloc(h, n);
        REQUIRE(p != NULL);
        CHECK_MSG(((uintptr_t)p & 15) == 0, "%p (%zu bytes) not 16-aligned", p, n);
        size_t u = mp_heap_usable_size(h, p);
        CHECK_GE(u, n);
        live_bytes += u;
        harness_fill(p, n, (uintptr_t)p ^ n);
        r[k++] = (struct range){ (uintptr_t)p, n };
    }
    for (size_t i = 0; i < k; i++)
        CHECK(harness_verify((void *)r[i].p, r[i].n, r[i].p ^ r[i].n) == (size_t)-1);
    mp_heap_stats_t st = stats_of(h);
    CHECK_EQ(st.objects, k);
    CHECK_EQ(st.in_use, live_bytes);
    CHECK_GT(st.large, 0);
    CHECK_GE(st.bytes, st.in_use);
    qsort(r, k, sizeof *r, cmp_range);
    for (size_t i = 1; i < k; i++) CHECK(r[i - 1].p + (r[i - 1].n ? r[i - 1].n : 1) <= r[i].p);
    for (size_t i = 0; i < k; i++) CHECK_EQ(mp_heap_free(h, (void *)r[i].p), MP_OK);
    st = stats_of(h);
    CHECK_EQ(st.objects, 0);
    CHECK_EQ(st.in_use, 0);
    CHECK_EQ(st.large, 0);
    CHECK_LE(st.chunks, MP_MAX_CLASSES);    /* at most a spare per class */
    mp_heap_destroy(h);
}

TEST(calloc_and_realloc) {
    mp_heap_t *h = mp_heap_create(0);
    REQUIRE(h != NULL);
    /* calloc zeroes recycled memory */
    void *a = mp_heap_malloc(h, 200);
    memset(a, 0xee, 200);
    CHECK_EQ(mp_heap_free(h, a), MP_OK);
    unsigned char *z = mp_heap_calloc(h, 10, 20);
    REQUIRE(z != NULL);
    CHECK(harness_first_nonzero(z, 200) == (size_t)-1);
    unsigned char *zl = mp_heap_calloc(h, 1000, 1000);
    REQUIRE(zl != NULL);
    CHECK(harness_first_nonzero(zl, 1000000) == (size_t)-1);
    errno = 0;
    CHECK(mp_heap_calloc(h, SIZE_MAX / 2, 3) == NULL);
    CHECK_EQ(errno, EOVERFLOW);
    CHECK_EQ(mp_last_error(), MP_EOVERFLOW);
    CHECK_EQ(mp_heap_free(h, z), MP_OK);
    CHECK_EQ(mp_heap_free(h, zl), MP_OK);

    /* realloc through small and large sizes keeps the contents */
    unsigned char *p = mp_heap_realloc(h, NULL, 10);
    REQUIRE(p != NULL);
    harness_fill(p, 10, 42);
    size_t sizes[] = { 10, 100, 40000, 300000, 50, 5000, 2000000, 16 };
    size_t have = 10;
    for (size_t i = 1; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *q = mp_heap_realloc(h, p, sizes[i]);
        REQUIRE(q != NULL);
        size_t keep = have < sizes[i] ? have : sizes[i];
        CHECK(harness_verify(q, keep, 42) == (size_t)-1);
        harness_fill(q, sizes[i], 42);
        have = sizes[i];
        p = q;
    }
    CHECK_EQ(stats_of(h).objects, 1);
    CHECK(mp_heap_realloc(h, p, 0) == NULL);          /* frees */
    CHECK_EQ(stats_of(h).objects, 0);
    /* a bad pointer is refused and kept */
    void *b = mp_heap_malloc(h, 64);
    errno = 0;
    CHECK(mp_heap_realloc(h, (char *)b + 16, 100) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mp_last_error(), MP_EINTERIOR);
    int stack_obj;
    CHECK(mp_heap_realloc(h, &stack_obj, 100) == NULL);
    CHECK_EQ(mp_last_error(), MP_EFOREIGN);
    CHECK_EQ(mp_heap_free(h, b), MP_OK);
    CHECK(mp_heap_realloc(h, b, 100) == NULL);
    CHECK_EQ(mp_last_error(), MP_EDOUBLEFREE);
    mp_heap_stats_t st = stats_of(h);
    CHECK_EQ(st.errors.interior, 1);
    CHECK_EQ(st.errors.foreign, 1);
    CHECK_EQ(st.errors.double_free, 1);
    mp_heap_destroy(h);
}

static int global_obj[16];

/* Pointers into the first pages of the address space or near its top are
 * nobody's: refused, never looked up in memory.  (Any pointer below the
 * heap's chunk size once matched the span set's empty marker, 0, and the
 * heap read a chunk header at address 0.) */
TEST(wild_pointers_refused) {
    mp_heap_t *h = mp_heap_create(0);
    mp_slab_t *s = mp_slab_create(64, 10, 0, 0);
    mp_pool_t *p = mp_pool_create(64, 0, 0, 0, 0);
    REQUIRE(h && s && p);
    void *a = mp_heap_malloc(h, 100), *b = mp_slab_alloc(s), *c = mp_pool_alloc(p);
    REQUIRE(a && b && c);
    uintptr_t wild[] = { 1, 2, 3, 8, 64, 0x210, 4096 + 0x10, 65535, (uintptr_t)1 << 47,
                         ((uintptr_t)1 << 47) - 16, UINTPTR_MAX - 15, UINTPTR_MAX };
    for (size_t i = 0; i < sizeof wild / sizeof wild[0]; i++) {
        CHECK_MSG(mp_heap_free(h, (void *)wild[i]) == MP_EFOREIGN, "heap %#lx", (unsigned long)wild[i]);
        CHECK_MSG(mp_slab_free(s, (void *)wild[i]) == MP_EFOREIGN, "slab %#lx", (unsigned long)wild[i]);
        CHECK_MSG(mp_pool_free(p, (void *)wild[i]) == MP_EFOREIGN, "pool %#lx", (unsigned long)wild[i]);
    }
    CHECK_EQ(mp_heap_free(h, a), MP_OK);
    CHECK_EQ(mp_slab_free(s, b), MP_OK);
    CHECK_EQ(mp_pool_free(p, c), MP_OK);
    mp_heap_destroy(h);
    mp_slab_destroy(s);
    mp_pool_destroy(p);
}

TEST(bad_frees_refused_and_counted) {
    mp_heap_t *h = mp_heap_create(0), *g = mp_heap_create(0);
    mp_slab_t *s = mp_slab_create(64, 10, 0, 0);
    mp_pool_t *pl = mp_pool_create(64, 0, 10, 0, 0);
    mp_arena_t *ar = mp_arena_create(0, 0);
    REQUIRE(h && g && s && pl && ar);
    void *a = mp_heap_malloc(h, 64), *b = mp_heap_malloc(h, 64);
    void *L = mp_heap_malloc(h, 100000), *L2 = mp_heap_malloc(h, 200000);
    void *ga = mp_heap_malloc(g, 64), *gL = mp_heap_malloc(g, 100000);
    void *sa = mp_slab_alloc(s), *pa = mp_pool_alloc(pl), *aa = mp_arena_alloc(ar, 64);
    void *ms = mp_malloc(64), *ml = mp_malloc(1 << 20);
    int stack_obj;
    REQUIRE(a && b && L && L2 && ga && gL && sa && pa && aa && ms && ml);
    uintptr_t chunk = (uintptr_t)a & ~(uintptr_t)((256 << 10) - 1);

    CHECK_EQ(mp_heap_free(h, NULL), MP_OK);
    CHECK_EQ(mp_heap_free(h, (char *)a + 1), MP_EINTERIOR);
    CHECK_EQ(mp_heap_free(h, (char *)a + 16), MP_EINTERIOR);
    CHECK_EQ(mp_heap_free(h, (char *)a + 63), MP_EINTERIOR);
    CHECK_EQ(mp_heap_free(h, (void *)(chunk + 8)), MP_EINTERIOR);        /* header */
    CHECK_EQ(mp_heap_free(h, (void *)(chunk + (200 << 10))), MP_EINTERIOR); /* never carved */
    CHECK_EQ(mp_heap_free(h, (char *)L + 16), MP_EINTERIOR);            /* inside a large one */
    CHECK_EQ(mp_heap_free(h, (char *)L2 + 150000), MP_EINTERIOR);       /* on a later page */
    CHECK_EQ(mp_heap_free(h, ga), MP_EFOREIGN);
    CHECK_EQ(mp_heap_free(h, gL), MP_EFOREIGN);
    CHECK_EQ(mp_heap_free(h, sa), MP_EFOREIGN);
    CHECK_EQ(mp_heap_free(h, pa), MP_EFOREIGN);
    CHECK_EQ(mp_heap_free(h, aa), MP_EFOREIGN);
    CHECK_EQ(mp_heap_free(h, ms), MP_EFOREIGN);
    CHECK_EQ(mp_heap_free(h, ml), MP_EFOREIGN);
    CHECK_EQ(mp_heap_free(h, &stack_obj), MP_EFOREIGN);
    CHECK_EQ(mp_heap_free(h, global_obj), MP_EFOREIGN);
    CHECK_EQ(mp_heap_free(h, a), MP_OK);
    CHECK_EQ(mp_heap_free(h, a), MP_EDOUBLEFREE);
    CHECK_EQ(mp_heap_free(h, L), MP_OK);
    CHECK_EQ(mp_heap_free(h, L), MP_EDOUBLEFREE);
    CHECK_EQ(mp_heap_usable_size(h, a), 0);
    CHECK_EQ(mp_heap_usable_size(h, ga), 0);
    CHECK_GE(mp_heap_usable_size(h, L2), 200000);
    CHECK_EQ(mp_heap_usable_size(h, (char *)b + 8), 0);
    mp_heap_stats_t st = stats_of(h);
    CHECK_EQ(st.errors.double_free, 2);
    CHECK_EQ(st.errors.interior, 7);
    CHECK_EQ(st.errors.foreign, 9);
    CHECK_EQ(st.objects, 2);                   /* b, L2 */
    CHECK_EQ(stats_of(g).objects, 2);
    void *c = mp_heap_malloc(h, 64);           /* intact: a comes back */
    CHECK(c == a);
    CHECK_EQ(mp_heap_free(h, b), MP_OK);
    CHECK_EQ(mp_heap_free(h, c), MP_OK);
    CHECK_EQ(mp_heap_free(h, L2), MP_OK);
    CHECK_EQ(stats_of(h).objects, 0);
    mp_free(ms);
    mp_free(ml);
    mp_slab_destroy(s);
    mp_pool_destroy(pl);
    mp_arena_destroy(ar);
    mp_heap_destroy(h);
    mp_heap_destroy(g);
}

TEST(null_heap_and_flags) {
    errno = 0;
    CHECK(mp_heap_malloc(NULL, 10) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_heap_calloc(NULL, 1, 10) == NULL);
    CHECK(mp_heap_realloc(NULL, NULL, 10) == NULL);
    int x;
    CHECK_EQ(mp_heap_free(NULL, &x), MP_EINVAL);
    CHECK_EQ(mp_heap_usable_size(NULL, &x), 0);
    mp_heap_stats_t st;
    CHECK_EQ(mp_heap_stats(NULL, &st), MP_EINVAL);
    mp_heap_destroy(NULL);
    CHECK(mp_heap_create(MP_FLAG_CACHELINE) == NULL);
    CHECK_EQ(mp_last_error(), MP_EINVAL);
    mp_heap_t *h = mp_heap_create(0);
    REQUIRE(h != NULL);
    void *z = mp_heap_malloc(h, 0);            /* malloc(0): a unique object */
    void *z2 = mp_heap_malloc(h, 0);
    CHECK(z != NULL && z2 != NULL && z != z2);
    errno = 0;
    CHECK(mp_heap_malloc(h, SIZE_MAX) == NULL);
    CHECK_EQ(errno, EOVERFLOW);
    errno = 0;
    CHECK(mp_heap_malloc(h, (size_t)1 << 50) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(mp_heap_free(h, z), MP_OK);
    CHECK_EQ(mp_heap_free(h, z2), MP_OK);
    mp_heap_destroy(h);
}

TEST(destroy_returns_everything) {
    mp_heap_t *h = mp_heap_create(0);
    REQUIRE(h != NULL);
    mp_stats_t before, after;
    size_t n = 200000 / SCALE;
    uint64_t rng = 5;
    for (size_t i = 0; i < n; i++) {
        size_t sz = harness_rand(&rng) % 100 == 0 ? 50000 : 8 + harness_rand(&rng) % 500;
        void *p = mp_heap_malloc(h, sz);
        REQUIRE(p != NULL);
        *(size_t *)p = i;
    }
    mp_heap_stats_t st = stats_of(h);
    CHECK_EQ(st.objects, n);
    size_t held = st.bytes;
    mp_stats_get(&before);
    mp_heap_destroy(h);
    mp_stats_get(&after);
    /* the pages are back in the page heap (free, or already returned) */
    size_t back = (after.free_dirty + after.released) - (before.free_dirty + before.released);
    CHECK_MSG(back + (1 << 20) >= held, "held %zu, back %zu", held, back);
}

TEST(poison_catches_use_after_free) {
    mp_heap_t *h = mp_heap_create(MP_FLAG_POISON);
    REQUIRE(h != NULL);
    volatile unsigned char *p = launder_ptr(mp_heap_malloc(h, 100));
    REQUIRE(p != NULL);
    memset((void *)p, 0, 100);
    CHECK_EQ(mp_heap_free(h, (void *)p), MP_OK);
    CHECK_EQ(p[50], MP_XPOISON_BYTE);
    p[50] = 1;                                  /* use after free */
    CHECK(mp_heap_malloc(h, 100) == (void *)p);
    CHECK_EQ(stats_of(h).errors.poisoned, 1);
    mp_heap_destroy(h);
}

/* A freed object's first word is its free-list link, which poisoning
 * cannot cover.  A write there that makes the link point outside the
 * chunk's freed objects is reported when the object is handed out again,
 * and the list is not followed: the heap goes on with fresh objects.
 * (The heap once took the written word for the next object: a wild
 * pointer, and a bitmap write out of bounds.)  So is a link to the object
 * itself (a circular list's first node, say), which the heap took for a
 * freed object and handed out twice. */
static void overwritten_link(unsigned flags, bool self) {
    mp_heap_t *h = mp_heap_create(flags);
    REQUIRE(h != NULL);
    void *keep = mp_heap_malloc(h, 64);
    volatile uintptr_t *a = launder_ptr(mp_heap_malloc(h, 64));
    REQUIRE(keep != NULL && a != NULL);
    CHECK_EQ(mp_heap_free(h, (void *)a), MP_OK);
    a[0] = self ? (uintptr_t)a : 0x4141414141414141ull;   /* use after free */
    CHECK(mp_heap_malloc(h, 64) == (void *)a);      /* the object itself is fine */
    CHECK_EQ(stats_of(h).errors.poisoned, 1);
    void *p[200];
    for (int i = 0; i < 200; i++) {
        p[i] = mp_heap_malloc(h, 64);
        REQUIRE(p[i] != NULL);
        CHECK(p[i] != (void *)a && p[i] != keep);
        CHECK_EQ(mp_heap_usable_size(h, p[i]), 64);  /* one of the heap's */
        memset(p[i], 0x5a, 64);
    }
    for (int i = 0; i < 200; i++) CHECK_EQ(mp_heap_free(h, p[i]), MP_OK);
    CHECK_EQ(mp_heap_free(h, (void *)a), MP_OK);
    CHECK_EQ(mp_heap_free(h, keep), MP_OK);
    CHECK_EQ(stats_of(h).errors.poisoned, 1);
    mp_heap_destroy(h);
}

TEST(overwritten_free_link_is_caught) {
    overwritten_link(MP_FLAG_POISON, false);
    overwritten_link(0, false);
    overwritten_link(MP_FLAG_POISON, true);
    overwritten_link(0, true);
}

/* A write that makes a link skip to a later freed object cannot be told
 * from a real link; the skipped objects are lost to the chunk, which must
 * not then carve past its end when its list runs dry. */
TEST(skipping_free_link_never_leaves_the_chunk) {
    mp_heap_t *h = mp_heap_create(0);
    REQUIRE(h != NULL);
    enum { N = 4000 };   /* more than a 256 KiB chunk holds of 64 B */
    void **p = malloc(N * sizeof *p);
    REQUIRE(p != NULL);
    for (int i = 0; i < N; i++) REQUIRE((p[i] = mp_heap_malloc(h, 64)) != NULL);
    /* Free 0..9 of the first chunk: the list is 9 -> 8 -> ... -> 0. */
    for (int i = 0; i < 10; i++) CHECK_EQ(mp_heap_free(h, p[i]), MP_OK);
    *(void *volatile *)p[9] = p[2];                 /* skip 8..3 */
    for (int i = 0; i < 10; i++) p[i] = NULL;
    size_t n0 = stats_of(h).objects;
    void **q = malloc(N * sizeof *q);
    REQUIRE(q != NULL);
    for (int i = 0; i < N; i++) {
        q[i] = mp_heap_malloc(h, 64);
        REQUIRE(q[i] != NULL);
        CHECK_EQ(mp_heap_usable_size(h, q[i]), 64);
        memset(q[i], 0x33, 64);
    }
    CHECK_EQ(stats_of(h).objects, n0 + N);
    qsort(q, N, sizeof *q, cmp_ptr);
    for (int i = 1; i < N; i++) CHECK_MSG(q[i] != q[i - 1], "%p handed out twice", q[i]);
    for (int i = 0; i < N; i++) CHECK_EQ(mp_heap_free(h, q[i]), MP_OK);
    for (int i = 10; i < N; i++) CHECK_EQ(mp_heap_free(h, p[i]), MP_OK);
    CHECK_GE(stats_of(h).errors.poisoned, 1);       /* the chunk ran dry early */
    CHECK_EQ(stats_of(h).objects, 0);
    free(p);
    free(q);
    mp_heap_destroy(h);
}

/* A chunk whose objects are all free goes back to the page heap when its
 * bin keeps a spare already; a second free of one of its objects is still
 * a double free while those pages are a free run of their own (it was
 * "foreign"). */
TEST(double_free_after_chunk_released) {
    mp_heap_t *h = mp_heap_create(0);
    REQUIRE(h != NULL);
    enum { MAXN = 200 };
    void *v[MAXN];
    int n = 0;
    /* 4 KiB objects until one lands in a second chunk. */
    for (;;) {
        REQUIRE(n < MAXN);
        v[n] = mp_heap_malloc(h, 4096);
        REQUIRE(v[n] != NULL);
        if (n > 0 && ((uintptr_t)v[n] >> 18) != ((uintptr_t)v[0] >> 18)) break;
        n++;
    }
    void *other = v[n];
    CHECK_EQ(mp_heap_free(h, other), MP_OK);           /* its chunk: the spare */
    size_t chunks = stats_of(h).chunks;
    for (int i = 0; i < n; i++) CHECK_EQ(mp_heap_free(h, v[i]), MP_OK);
    CHECK_EQ(stats_of(h).chunks, chunks - 1);           /* the first: released */
    CHECK_EQ(mp_heap_free(h, v[1]), MP_EDOUBLEFREE);
    CHECK_EQ(mp_heap_free(h, other), MP_EDOUBLEFREE);
    CHECK_EQ(stats_of(h).errors.double_free, 2);
    CHECK_EQ(stats_of(h).errors.foreign, 0);
    mp_heap_destroy(h);
}

/* ---- threads ---------------------------------------------------------------------- */
/* Sizes mostly small, every 50th up to 60 KB; the stamp is the size and
 * the address. */
static void *heap_cross_make(void *h, uint64_t *rng, int i) {
    size_t n = 16 + harness_rand(rng) % (i % 50 == 0 ? 60000 : 400);
    size_t *o = mp_heap_malloc(h, n);
    if (o != NULL) {
        o[0] = n;
        o[1] = (uintptr_t)o;
    }
    return o;
}

static void heap_cross_take(void *h, void *obj) {
    size_t *q = obj;
    CHECK_EQ(q[1], (uintptr_t)q);
    CHECK_GE(mp_heap_usable_size(h, q), q[0]);
    CHECK_EQ(mp_heap_free(h, q), MP_OK);
}

TEST(shared_heap_objects_cross) {
    mp_heap_t *h = mp_heap_create(0);
    REQUIRE(h != NULL);
    xcross_t x = { .alloc = h, .make = heap_cross_make, .take = heap_cross_take,
                   .ring_len = 128, .iters = 100000 / SCALE };
    xcross_run(&x);
    size_t left = 0;
    for (size_t k = 0; k < x.ring_len; k++) left += x.ring[k] != NULL;
    mp_heap_stats_t st = stats_of(h);
    CHECK_EQ(st.objects, left);
    CHECK_EQ(st.errors.double_free + st.errors.foreign + st.errors.interior, 0);
    xcross_done(&x);
    mp_heap_destroy(h);                        /* frees what the ring holds */
}

static int heap_free_fn(void *a, void *p) { return mp_heap_free(a, p); }
/* mostly small objects, a few large (their spans stay free and unreused
 * while the round runs: nothing else allocates) */
static void heap_fill(xdfree_t *d) {
    for (int i = 0; i < d->n; i++) d->objs[i] = mp_heap_malloc(d->alloc, i % 25 == 0 ? 70000 : 48);
}
static void heap_round_check(xdfree_t *d) { CHECK_EQ(stats_of(d->alloc).objects, 0); }

TEST(concurrent_double_frees) {
    mp_heap_t *heap = mp_heap_create(0);
    REQUIRE(heap != NULL);
    xdfree_t d = { .alloc = heap, .free_fn = heap_free_fn, .fill = heap_fill,
                   .check = heap_round_check, .n = 100, .rounds = 100 / SCALE };
    xdfree_run(&d);
    long total = (long)d.n * d.rounds;
    CHECK_EQ(d.ok, total);
    CHECK_EQ(d.dbl + d.other, total * (T - 1));
    /* small double frees are always named; a large one may be named foreign
     * once its pages are reused, never accepted */
    CHECK_GE(d.dbl, (long)d.rounds * 96 * (T - 1));
    mp_heap_destroy(heap);
}

static void *own_heap_worker(void *v) {
    (void)v;
    for (int round = 0; round < 20 / (SCALE > 1 ? 4 : 1); round++) {
        mp_heap_t *h = mp_heap_create(0);
        if (h == NULL) {
            CHECK(h != NULL);
            return NULL;
        }
        uint64_t rng = (uint64_t)round + 1;
        for (int i = 0; i < 5000; i++) {
            void *p = mp_heap_malloc(h, 1 + harness_rand(&rng) % 2000);
            CHECK(p != NULL);
            if (i % 3 == 0) CHECK_EQ(mp_heap_free(h, p), MP_OK);
        }
        mp_heap_destroy(h);
    }
    return NULL;
}

TEST(heap_per_thread) {
    pthread_t th[T];
    for (int i = 0; i < T; i++) pthread_create(&th[i], NULL, own_heap_worker, NULL);
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
}

int main(void) {
    RUN(malloc_every_size);
    RUN(calloc_and_realloc);
    RUN(wild_pointers_refused);
    RUN(bad_frees_refused_and_counted);
    RUN(null_heap_and_flags);
    RUN(destroy_returns_everything);
    RUN(poison_catches_use_after_free);
    RUN(overwritten_free_link_is_caught);
    RUN(double_free_after_chunk_released);
    RUN(skipping_free_link_never_leaves_the_chunk);
    RUN(shared_heap_objects_cross);
    RUN(concurrent_double_frees);
    RUN(heap_per_thread);
    return harness_summary();
}
