/* api_malloc.c - malloc/free: zero sizes, every small size, a sweep of
 * sizes up to 64 MiB, many live objects, reuse of freed memory, and that the
 * malloc family really is mempool where it should be. */
#define _GNU_SOURCE
#include "api_common.h"

/* malloc(0) returns distinct pointers that can be freed. */
TEST(malloc_zero)
{
    enum { N = 1000 };
    static void *p[N];
    static struct api_range r[N];
    for (int i = 0; i < N; i++) {
        p[i] = A->malloc_fn(0);
        CHECK_MSG(p[i] != NULL, "malloc(0) #%d returned NULL", i);
        r[i].lo = (uintptr_t)p[i];
        r[i].n = 0;
    }
    /* distinct: no two equal */
    qsort(r, N, sizeof r[0], api_range_cmp);
    for (int i = 1; i < N; i++)
        CHECK_MSG(r[i].lo == 0 || r[i].lo != r[i - 1].lo, "malloc(0) returned %#jx twice",
                  (uintmax_t)r[i].lo);
    for (int i = 0; i < N; i++)
        A->free_fn(p[i]);
    /* and again after the frees */
    void *a = A->malloc_fn(0), *b = A->malloc_fn(0);
    CHECK(a != NULL);
    CHECK(b != NULL);
    CHECK(a != b);
    A->free_fn(a);
    A->free_fn(b);
}

TEST(free_null)
{
    errno = 0;
    A->free_fn(NULL);
    A->free_fn(launder_ptr(NULL));
    /* free(NULL) is a no-op: the heap still works afterwards */
    void *p = A->malloc_fn(10);
    CHECK(p != NULL);
    A->free_fn(p);
}

/* Every size from 0 to 5000, all alive at once: aligned, writable, and no
 * two blocks overlap (checked both by address ranges and by contents). */
TEST(every_size_0_to_5000)
{
    enum { MAXN = 5000 };
    static unsigned char *p[MAXN + 1];
    static struct api_range r[MAXN + 1];
    for (size_t n = 0; n <= MAXN; n++) {
        p[n] = A->malloc_fn(launder_size(n));
        REQUIRE(p[n] != NULL);
        CHECK_ALIGNED(p[n], min_align_for(n));
        harness_fill(p[n], n, 0x1234 + n);
        r[n].lo = (uintptr_t)p[n];
        r[n].n = n;
    }
    for (size_t n = 0; n <= MAXN && !TEST_FAILED(); n++)
        CHECK_PATTERN(p[n], n, 0x1234 + n);
    check_no_overlap(r, MAXN + 1);
    /* free every other one, reallocate them, check everything again */
    for (size_t n = 0; n <= MAXN; n += 2)
        A->free_fn(p[n]);
    for (size_t n = 0; n <= MAXN; n += 2) {
        p[n] = A->malloc_fn(launder_size(n));
        REQUIRE(p[n] != NULL);
        harness_fill(p[n], n, 0x777 + n);
    }
    for (size_t n = 0; n <= MAXN && !TEST_FAILED(); n++)
        CHECK_PATTERN(p[n], n, (n & 1 ? 0x1234 : 0x777) + n);
    for (size_t n = 0; n <= MAXN; n++) {
        r[n].lo = (uintptr_t)p[n];
        r[n].n = n;
    }
    check_no_overlap(r, MAXN + 1);
    for (size_t n = MAXN + 1; n-- > 0;)
        A->free_fn(p[n]);
}

/* Sizes from 5000 up to 64 MiB: each power of two, its neighbours, and
 * steps of ~1/8 in between.  Blocks up to 2 MiB stay alive until the end so
 * that overlaps between them show up. */
TEST(size_sweep_to_64mib)
{
    enum { MAXLIVE = 512 };
    static unsigned char *live[MAXLIVE];
    static size_t live_n[MAXLIVE];
    static struct api_range r[MAXLIVE];
    size_t nlive = 0;
    for (size_t base = 4096; base <= 64 * MiB; base *= 2) {
        for (int k = 0; k < 11; k++) {
            size_t n;
            if (k < 8)
                n = base + base / 8 * (size_t)k;
            else
                n = base + (size_t)(k - 9); /* base-1, base, base+1 */
            if (n < 5000 || n > 64 * MiB || (base > 4 * MiB && k % 2 == 1 && k < 8))
                continue;
            unsigned char *p = A->malloc_fn(launder_size(n));
            REQUIRE(p != NULL);
            CHECK_ALIGNED(p, 16);
            uint64_t seed = n * 31 + 7;
            fill_sparse(p, n, seed);
            CHECK_SPARSE(p, n, seed);
            if (n <= 2 * MiB && nlive < MAXLIVE) {
                live[nlive] = p;
                live_n[nlive] = n;
                nlive++;
            } else {
                A->free_fn(p);
            }
        }
    }
    for (size_t i = 0; i < nlive; i++) {
        CHECK_SPARSE(live[i], live_n[i], live_n[i] * 31 + 7);
        r[i].lo = (uintptr_t)live[i];
        r[i].n = live_n[i];
    }
    check_no_overlap(r, nlive);
    for (size_t i = 0; i < nlive; i++)
        A->free_fn(live[i]);
}

/* Several big blocks alive together. */
TEST(large_blocks_together)
{
    static const size_t sizes[] = { 256 * KiB, 256 * KiB + 1, 300 * KiB, 1 * MiB,
                                    1 * MiB + 4096, 3 * MiB + 17, 8 * MiB, 17 * MiB - 1,
                                    32 * MiB, 64 * MiB };
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *p[N];
    struct api_range r[N];
    for (int i = 0; i < N; i++) {
        p[i] = A->malloc_fn(launder_size(sizes[i]));
        REQUIRE(p[i] != NULL);
        CHECK_ALIGNED(p[i], 16);
        fill_sparse(p[i], sizes[i], 99 + (uint64_t)i);
        r[i].lo = (uintptr_t)p[i];
        r[i].n = sizes[i];
    }
    for (int i = 0; i < N; i++)
        CHECK_SPARSE(p[i], sizes[i], 99 + (uint64_t)i);
    check_no_overlap(r, N);
    for (int i = 0; i < N; i++)
        A->free_fn(p[i]);
}

/* 100000 live objects of random small sizes, freed in random order. */
TEST(many_random_small)
{
    enum { N = 100000 };
    static unsigned char *p[N];
    static size_t n[N];
    static struct api_range r[N];
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < N; i++) {
        n[i] = harness_rand(&rng) % 600;
        p[i] = A->malloc_fn(n[i]);
        REQUIRE(p[i] != NULL);
        harness_fill(p[i], n[i], (uint64_t)i);
        r[i].lo = (uintptr_t)p[i];
        r[i].n = n[i];
    }
    for (int i = 0; i < N && !TEST_FAILED(); i++)
        CHECK_PATTERN(p[i], n[i], (uint64_t)i);
    check_no_overlap(r, N);
    /* Fisher-Yates shuffle of the free order */
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(harness_rand(&rng) % (uint64_t)(i + 1));
        unsigned char *tp = p[i];
        p[i] = p[j];
        p[j] = tp;
        size_t tn = n[i];
        n[i] = n[j];
        n[j] = tn;
    }
    for (int i = 0; i < N; i++)
        A->free_fn(p[i]);
}

/* Freed memory is reused: a long malloc/free loop does not grow the heap. */
TEST(free_recycles)
{
    static const size_t sizes[] = { 16, 1000, 40000, 300 * KiB, 1 * MiB, 5 * MiB };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        size_t rounds = n >= MiB ? 300 : 20000;
        /* warm up, then measure */
        for (int i = 0; i < 10; i++) {
            unsigned char *p = A->malloc_fn(n);
            REQUIRE(p != NULL);
            memset(p, 1, n);
            A->free_fn(p);
        }
        size_t rss0 = harness_rss_bytes();
#ifndef MP_TEST_PLAIN
        mp_stats_t st0, st1;
        mp_stats_get(&st0);
#endif
        for (size_t i = 0; i < rounds; i++) {
            unsigned char *p = A->malloc_fn(n);
            REQUIRE(p != NULL);
            p[0] = 1;
            p[n - 1] = 2;
            p[n / 2] = 3;
            A->free_fn(p);
        }
        /* A leak would be rounds * n: 300 MiB or more for the big sizes. */
        size_t rss1 = harness_rss_bytes();
        if (!API_SANITIZED && rss0 && rss1)
            CHECK_MSG(rss1 <= rss0 + 32 * MiB, "size %zu: RSS grew from %zu to %zu", n, rss0,
                      rss1);
#ifndef MP_TEST_PLAIN
        mp_stats_get(&st1);
        if (A->has_usable) {
            CHECK_MSG(st1.committed <= st0.committed + 32 * MiB,
                      "size %zu: committed grew from %zu to %zu", n, st0.committed,
                      st1.committed);
            CHECK_MSG(st1.in_use <= st0.in_use + 4 * MiB,
                      "size %zu: in_use grew from %zu to %zu", n, st0.in_use, st1.in_use);
        }
#endif
    }
}

/* Blocks from the malloc family and from the mp_ functions are the same:
 * either kind of free accepts either kind of block. */
TEST(malloc_mp_interop)
{
#ifndef MP_TEST_PLAIN
    for (size_t n = 1; n <= 4 * MiB; n = n * 3 + 5) {
        void *p = malloc(n);
        REQUIRE(p != NULL);
        CHECK_GE(mp_usable_size(p), n);
        memset(p, 0x5a, n);
        mp_free(p);
        p = mp_malloc(n);
        REQUIRE(p != NULL);
        memset(p, 0x5b, n);
        p = realloc(p, n + 100);
        REQUIRE(p != NULL);
        CHECK_EQ(((unsigned char *)p)[n - 1], 0x5b);
        free(p);
        p = mp_calloc(1, n);
        REQUIRE(p != NULL);
        free(p);
        p = aligned_alloc(4096, n);
        REQUIRE(p != NULL);
        mp_free(p);
        p = mp_aligned_alloc(4096, n);
        REQUIRE(p != NULL);
        free(p);
    }
#endif
}

/* mp_free_sized of blocks from the malloc family, with the requested size.
 * (Run last: a wrong-size report aborts the program.) */
TEST(malloc_free_sized_interop)
{
#ifndef MP_TEST_PLAIN
    for (size_t n = 1; n <= 4 * MiB; n = n * 3 + 5) {
        void *p = malloc(n);
        REQUIRE(p != NULL);
        mp_free_sized(p, n);
        p = calloc(n, 1);
        REQUIRE(p != NULL);
        mp_free_sized(p, n);
        p = aligned_alloc(4096, n);
        REQUIRE(p != NULL);
        mp_free_sized(p, n);
    }
#endif
}

/* The malloc family is served by mempool: a big malloc shows in mempool's
 * statistics.  In the plain build this only applies under LD_PRELOAD
 * (run.sh sets MP_TEST_EXPECT_MEMPOOL=1 there). */
TEST(malloc_is_served_by_mempool)
{
    void (*stats_get)(mp_stats_t *) = NULL;
    size_t (*usable)(const void *) = NULL;
#ifdef MP_TEST_PLAIN
    stats_get = (void (*)(mp_stats_t *))dlsym(RTLD_DEFAULT, "mp_stats_get");
    usable = (size_t (*)(const void *))dlsym(RTLD_DEFAULT, "mp_usable_size");
    REQUIRE(stats_get != NULL && usable != NULL);
#else
    stats_get = mp_stats_get;
    usable = mp_usable_size;
#endif
    CHECK(malloc_is_mempool());
    mp_stats_t a, b, c;
    stats_get(&a);
    void *p = malloc(launder_size(8 * MiB));
    REQUIRE(p != NULL);
    stats_get(&b);
    CHECK_GE(b.in_use, a.in_use + 8 * MiB);
    CHECK_GE(b.large_in_use, a.large_in_use + 8 * MiB);
    CHECK_GE(usable(p), 8 * MiB);
    free(p);
    stats_get(&c);
    CHECK_LE(c.in_use + 8 * MiB, b.in_use);
    void *q = malloc(100);
    REQUIRE(q != NULL);
    CHECK_GE(usable(q), 100);
    free(q);
}

int main(void)
{
    api_init();
    RUN_ALL(malloc_zero);
    RUN_ALL(free_null);
    RUN_ALL(every_size_0_to_5000);
    RUN_ALL(size_sweep_to_64mib);
    RUN_ALL(large_blocks_together);
    RUN_ALL(many_random_small);
    RUN_ALL(free_recycles);
#if !defined(MP_TEST_PLAIN) && !defined(MP_SANITIZE)
    RUN(malloc_mp_interop);
#else
    harness_skip("malloc_mp_interop", "the malloc family is not mempool in this build");
#endif
#if defined(MP_TEST_PLAIN)
    if (getenv("MP_TEST_EXPECT_MEMPOOL"))
        RUN(malloc_is_served_by_mempool);
    else
        harness_skip("malloc_is_served_by_mempool", "plain build without LD_PRELOAD");
#elif defined(MP_SANITIZE)
    harness_skip("malloc_is_served_by_mempool", "sanitizer build keeps the sanitizer's malloc");
#else
    RUN(malloc_is_served_by_mempool);
#endif
    /* last: a wrong-size report aborts the program */
#if !defined(MP_TEST_PLAIN) && !defined(MP_SANITIZE)
    RUN(malloc_free_sized_interop);
#else
    harness_skip("malloc_free_sized_interop", "the malloc family is not mempool in this build");
#endif
    return harness_summary();
}
