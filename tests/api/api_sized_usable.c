/* api_sized_usable.c - mp_usable_size, mp_good_size, mp_malloc_usable and
 * mp_free_sized.  These are mempool's own functions: the plain build only
 * reports them as skipped. */
#define _GNU_SOURCE
#include "api_common.h"

#ifndef MP_TEST_PLAIN

/* The sizes looked at: every size to 70000, then a sweep to 64 MiB. */
static size_t next_size(size_t n)
{
    if (n < 70000)
        return n + 1;
    return n + n / 16 + 1;
}

/* Usable size covers the request; the whole usable size can be written
 * without disturbing neighbours. */
TEST(usable_size_covers_request)
{
    enum { LIVE = 64 };
    unsigned char *live[LIVE] = { 0 };
    size_t live_u[LIVE] = { 0 }, live_seed[LIVE] = { 0 };
    int k = 0;
    for (size_t n = 0; n <= 64 * MiB && !TEST_FAILED(); n = next_size(n)) {
        unsigned char *p = mp_malloc(n);
        REQUIRE(p != NULL);
        size_t u = mp_usable_size(p);
        CHECK_MSG(u >= n, "mp_usable_size(mp_malloc(%zu)) = %zu", n, u);
        if (n <= 70000) {
            /* fill the whole usable size; the last LIVE blocks stay alive so
             * that writing past the request into a neighbour shows up */
            harness_fill(p, u, n);
            if (live[k]) {
                CHECK_PATTERN(live[k], live_u[k], live_seed[k]);
                mp_free(live[k]);
            }
            live[k] = p;
            live_u[k] = u;
            live_seed[k] = n;
            k = (k + 1) % LIVE;
        } else {
            p[0] = 1;
            p[u - 1] = 2;
            mp_free(p);
        }
    }
    for (int i = 0; i < LIVE; i++) {
        if (live[i])
            CHECK_PATTERN(live[i], live_u[i], live_seed[i]);
        mp_free(live[i]);
    }
}

TEST(usable_size_neighbours)
{
    /* many blocks of one size filled to their usable size, then checked */
    static const size_t sizes[] = { 1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 129, 500, 1000,
                                    1025, 3000, 4097, 10000, 33000, 70000, 200000 };
    enum { N = 200 };
    static unsigned char *p[N];
    static size_t u[N];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (int i = 0; i < N; i++) {
            p[i] = mp_malloc(sizes[s]);
            REQUIRE(p[i] != NULL);
            u[i] = mp_usable_size(p[i]);
            CHECK_GE(u[i], sizes[s]);
            harness_fill(p[i], u[i], (uint64_t)i + sizes[s]);
        }
        for (int i = 0; i < N; i++) {
            CHECK_PATTERN(p[i], u[i], (uint64_t)i + sizes[s]);
            mp_free(p[i]);
        }
    }
}

/* What a malloc of n may have handed out: its good size, or the next
 * class's when it borrowed a block the thread had cached (tcache.c). */
static bool usable_is_class_or_next(size_t n, size_t u)
{
    size_t g = mp_good_size(n);
    return u == g || u == mp_good_size(g + 1);
}

/* With nothing in the thread's cache, mp_good_size(n) ==
 * mp_usable_size(mp_malloc(n)); with blocks cached, the block is that size
 * or, borrowed, the next class's, mp_good_size(g + 1).  The good size is
 * >= n, monotone, and its own good size. */
TEST(good_size_matches_usable)
{
    size_t prev = 0;
    for (size_t n = 0; n <= 64 * MiB && !TEST_FAILED(); n = next_size(n)) {
        size_t g = mp_good_size(n);
        CHECK_MSG(g >= n, "mp_good_size(%zu) = %zu", n, g);
        CHECK_MSG(g >= prev, "mp_good_size not monotone: good(%zu) = %zu < %zu", n, g, prev);
        prev = g;
        void *cached = mp_malloc(n);
        mp_thread_flush();
        void *p = mp_malloc(n);
        REQUIRE(p != NULL && cached != NULL);
        size_t u = mp_usable_size(p), uc = mp_usable_size(cached);
        CHECK_MSG(u == g, "mp_good_size(%zu) = %zu but mp_usable_size(mp_malloc(%zu)) = %zu", n,
                  g, n, u);
        CHECK_MSG(usable_is_class_or_next(n, uc),
                  "mp_good_size(%zu) = %zu but a malloc with a cache had %zu", n, g, uc);
        if (n <= 256 * 1024) {          /* the header's bound on a borrowed block */
            size_t g2 = mp_good_size(g + 1);
            if (n > 128) CHECK_MSG((g2 - n) * 4 <= n, "n=%zu next class %zu", n, g2);
            else CHECK_MSG(g2 - n < 32, "n=%zu next class %zu", n, g2);
        }
        mp_free(p);
        mp_free(cached);
        size_t gg = mp_good_size(g);
        CHECK_MSG(gg == g, "mp_good_size(%zu) = %zu, mp_good_size(%zu) = %zu", n, g, g, gg);
    }
}

/* mp_malloc_usable reports exactly the usable size. */
TEST(malloc_usable_reports_usable)
{
    for (size_t n = 0; n <= 64 * MiB && !TEST_FAILED(); n = next_size(n) + (n > 5000 ? 97 : 0)) {
        size_t u = 0;
        unsigned char *p = mp_malloc_usable(n, &u);
        REQUIRE(p != NULL);
        CHECK_ALIGNED(p, n <= 8 ? 8 : 16);
        CHECK_MSG(u >= n, "mp_malloc_usable(%zu) reported %zu", n, u);
        CHECK_EQ(u, mp_usable_size(p));
        CHECK_MSG(usable_is_class_or_next(n, u),
                  "mp_malloc_usable(%zu) reported %zu, good size %zu", n, u, mp_good_size(n));
        if (u) {
            p[0] = 0x77;
            p[u - 1] = 0x78;
        }
        mp_free_sized(p, u);
        void *q = mp_malloc_usable(n, NULL);
        REQUIRE(q != NULL);
        mp_free(q);
    }
}

/* mp_free_sized accepts the requested size, the usable size and anything
 * between; memory is recycled (no leak). */
TEST(free_sized_accepts_request_to_usable)
{
    for (size_t n = 0; n <= 64 * MiB && !TEST_FAILED(); n = next_size(n) + (n > 2000 ? 51 : 0)) {
        void *p = mp_malloc(n);
        REQUIRE(p != NULL);
        mp_free_sized(p, n);
        p = mp_malloc(n);
        REQUIRE(p != NULL);
        size_t u = mp_usable_size(p);
        mp_free_sized(p, u);
        p = mp_malloc(n);
        REQUIRE(p != NULL);
        mp_free_sized(p, n + (u - n) / 2);
    }
    /* and a loop does not grow the heap */
    mp_stats_t a, b;
    mp_stats_get(&a);
    for (int i = 0; i < 200000; i++) {
        size_t n = (size_t)(i % 4096) + 1;
        void *p = mp_malloc(n);
        REQUIRE(p != NULL);
        mp_free_sized(p, n);
    }
    for (int i = 0; i < 300; i++) {
        size_t n = 3 * MiB + (size_t)i * 4096;
        void *p = mp_malloc(n);
        REQUIRE(p != NULL);
        mp_free_sized(p, n);
    }
    mp_stats_get(&b);
    CHECK_LE(b.in_use, a.in_use + 2 * MiB);
    CHECK_LE(b.committed, a.committed + 32 * MiB);
}

/* Sized free of blocks from calloc, realloc and aligned_alloc. */
TEST(free_sized_other_origins)
{
    for (size_t n = 1; n <= 8 * MiB; n = n * 2 + 7) {
        void *p = mp_calloc(n, 3);
        REQUIRE(p != NULL);
        mp_free_sized(p, n * 3);
        p = mp_malloc(n);
        REQUIRE(p != NULL);
        p = mp_realloc(p, n * 2 + 1);
        REQUIRE(p != NULL);
        mp_free_sized(p, n * 2 + 1);
        for (size_t align = 1; align <= 4 * MiB; align *= 16) {
            p = mp_aligned_alloc(align, n);
            REQUIRE(p != NULL);
            mp_free_sized(p, n);
            CHECK_EQ(mp_posix_memalign(&p, align < 8 ? 8 : align, n), 0);
            REQUIRE(p != NULL);
            mp_free_sized(p, mp_usable_size(p));
        }
    }
}

/* The malloc family's blocks answer mp_usable_size too. */
TEST(usable_size_of_malloc_blocks)
{
    for (size_t n = 1; n <= 4 * MiB; n = n * 3 + 1) {
        void *p = malloc(launder_size(n));
        REQUIRE(p != NULL);
        CHECK_GE(mp_usable_size(p), n);
        size_t u = mp_usable_size(p);
        CHECK_MSG(usable_is_class_or_next(n, u), "malloc(%zu): usable %zu, good size %zu", n,
                  u, mp_good_size(n));
        free(p);
    }
}
#endif /* !MP_TEST_PLAIN */

int main(void)
{
    api_init();
#ifdef MP_TEST_PLAIN
    harness_skip("mp_usable_size/mp_good_size/mp_malloc_usable/mp_free_sized",
                 "mp_ functions not linked in the plain build");
#else
    RUN(usable_size_covers_request);
    RUN(usable_size_neighbours);
    RUN(good_size_matches_usable);
    RUN(malloc_usable_reports_usable);
    RUN(free_sized_accepts_request_to_usable);
#ifdef MP_SANITIZE
    harness_skip("usable_size_of_malloc_blocks", "the malloc family is not mempool");
#else
    RUN(usable_size_of_malloc_blocks);
#endif
    /* last: a wrong-size report aborts the program */
    RUN(free_sized_other_origins);
#endif
    return harness_summary();
}
