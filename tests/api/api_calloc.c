/* api_calloc.c - calloc: zeroed memory (also when the memory is recycled
 * from dirty freed blocks), zero counts, and multiplication overflow. */
#define _GNU_SOURCE
#include "api_common.h"

TEST(calloc_zeroed_sizes)
{
    for (size_t n = 0; n <= 5000; n++) {
        unsigned char *p = A->calloc_fn(1, n);
        REQUIRE(p != NULL);
        CHECK_ALIGNED(p, min_align_for(n));
        CHECK_ZERO(p, n);
        A->free_fn(p);
        if (n % 8 == 0) {
            p = A->calloc_fn(n / 8, 8);
            REQUIRE(p != NULL);
            CHECK_ZERO(p, n);
            A->free_fn(p);
        }
    }
    for (size_t n = 5000; n <= 64 * MiB; n = n * 2 + 4093) {
        unsigned char *p = A->calloc_fn(n, 1);
        REQUIRE(p != NULL);
        CHECK_ALIGNED(p, 16);
        CHECK_ZERO(p, n);
        A->free_fn(p);
    }
}

/* Dirty a block, free it, calloc the same size: must read as zero even
 * though the allocator probably hands back the same memory. */
TEST(calloc_recycled_is_zero)
{
    static const size_t sizes[] = { 1,     8,     16,    24,       100,      512,
                                    1000,  4096,  5000,  32 * KiB, 100 * KiB, 256 * KiB,
                                    300 * KiB, 1 * MiB, 3 * MiB + 5, 8 * MiB };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        int cnt = n >= MiB ? 3 : 8;
        for (int round = 0; round < (n >= MiB ? 2 : 4); round++) {
            /* several at once, so that freed blocks are reused out of order */
            unsigned char *d[8];
            for (int i = 0; i < cnt; i++) {
                d[i] = A->malloc_fn(n);
                REQUIRE(d[i] != NULL);
                memset(d[i], 0xa5, n);
            }
            for (int i = 0; i < cnt; i++)
                A->free_fn(d[i]);
            for (int i = 0; i < cnt; i++) {
                d[i] = A->calloc_fn(1, n);
                REQUIRE(d[i] != NULL);
                CHECK_ZERO(d[i], n);
                memset(d[i], 0x5a, n);
            }
            for (int i = 0; i < cnt; i++)
                A->free_fn(d[i]);
        }
    }
}

/* Large blocks written and freed, then calloc'd at other sizes: each new
 * block lies across pages that were written, pages fresh from the OS and
 * (mp_trim between the frees) released ones next to written ones, and the
 * page heap's record of which of them read as zero (calloc skips writing
 * those) is cut and joined as spans split and merge.  Every byte must read
 * zero. */
TEST(calloc_large_after_dirty_frees)
{
    enum { N = 8, ROUNDS = 24 };
    uint64_t x = 0xa5a5f00dull;
    for (int round = 0; round < ROUNDS && !TEST_FAILED(); round++) {
        unsigned char *d[N];
        for (int i = 0; i < N; i++) {
            size_t n = 300 * KiB + harness_rand(&x) % (2 * MiB - 300 * KiB);
            d[i] = A->malloc_fn(n);
            REQUIRE(d[i] != NULL);
            memset(d[i], 0xa5, n);
        }
        /* Half freed, maybe given back to the OS while the other half, still
         * written, sits between them; then the other half. */
        for (int i = 0; i < N; i += 2)
            A->free_fn(d[(i + round) % N]);
#ifndef MP_TEST_PLAIN
        if (round % 2 == 1)
            mp_trim();
#endif
        for (int i = 1; i < N; i += 2)
            A->free_fn(d[(i + round) % N]);
        /* Each written and, one time in two, the one before it freed: the
         * next may then lie across pages freed just now. */
        for (int i = 0; i < N; i++) {
            size_t n = 260 * KiB + harness_rand(&x) % (3 * MiB);
            d[i] = A->calloc_fn(1, n);
            REQUIRE(d[i] != NULL);
            CHECK_ZERO(d[i], n);
            memset(d[i], 0xa5, n);
            if (i % 2 == 1) {
                A->free_fn(d[i - 1]);
                d[i - 1] = NULL;
            }
        }
        for (int i = 0; i < N; i++)
            A->free_fn(d[i]);
    }
}

/* After mp_trim has given pages back, calloc'd memory is still zero (and
 * contents of live blocks survive the trim). */
TEST(calloc_after_trim)
{
#ifndef MP_TEST_PLAIN
    enum { N = 64 };
    unsigned char *d[N];
    unsigned char *keep = A->malloc_fn(100 * KiB);
    REQUIRE(keep != NULL);
    harness_fill(keep, 100 * KiB, 42);
    for (int i = 0; i < N; i++) {
        d[i] = A->malloc_fn(300 * KiB);
        REQUIRE(d[i] != NULL);
        memset(d[i], 0xff, 300 * KiB);
    }
    for (int i = 0; i < N; i++)
        A->free_fn(d[i]);
    mp_trim();
    for (int i = 0; i < N; i++) {
        d[i] = A->calloc_fn(300, KiB);
        REQUIRE(d[i] != NULL);
        CHECK_ZERO(d[i], 300 * KiB);
    }
    for (int i = 0; i < N; i++)
        A->free_fn(d[i]);
    CHECK_PATTERN(keep, 100 * KiB, 42);
    A->free_fn(keep);
#endif
}

TEST(calloc_zero_count)
{
    void *a = A->calloc_fn(0, 0), *b = A->calloc_fn(0, 100), *c = A->calloc_fn(100, 0);
    CHECK(a != NULL);
    CHECK(b != NULL);
    CHECK(c != NULL);
    CHECK(a != b && b != c && a != c);
    A->free_fn(a);
    A->free_fn(b);
    A->free_fn(c);
}

TEST(calloc_overflow)
{
    static const size_t pairs[][2] = {
        { SIZE_MAX, 2 },
        { 2, SIZE_MAX },
        { SIZE_MAX, SIZE_MAX },
        { SIZE_MAX / 2 + 1, 2 },
        { (size_t)1 << 32, (size_t)1 << 32 },
        { ((size_t)1 << 32) + 1, ((size_t)1 << 32) - 1 },
        { SIZE_MAX / 16 + 1, 16 },
        { SIZE_MAX / 3 + 1, 3 },
        { 65537, SIZE_MAX / 65536 },
        /* no overflow, but more than PTRDIFF_MAX bytes */
        { (size_t)PTRDIFF_MAX / 2 + 1, 2 },
        { 1, (size_t)PTRDIFF_MAX + 1 },
        { ((size_t)1 << 31), ((size_t)1 << 32) },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        errno = 0;
        void *p = A->calloc_fn(launder_size(pairs[i][0]), launder_size(pairs[i][1]));
        CHECK_MSG(p == NULL, "calloc(%#zx, %#zx) = %p", pairs[i][0], pairs[i][1], p);
        CHECK_MSG(errno == ENOMEM, "calloc(%#zx, %#zx): errno %d", pairs[i][0], pairs[i][1],
                  errno);
        if (p)
            A->free_fn(p);
    }
    /* the heap still works */
    void *p = A->calloc_fn(10, 10);
    CHECK(p != NULL);
    A->free_fn(p);
}

int main(void)
{
    api_init();
    RUN_ALL(calloc_zeroed_sizes);
    RUN_ALL(calloc_recycled_is_zero);
    RUN_ALL(calloc_large_after_dirty_frees);
#ifdef MP_TEST_PLAIN
    harness_skip("calloc_after_trim", "needs mp_trim");
#else
    RUN_ALL(calloc_after_trim);
#endif
    RUN_ALL(calloc_zero_count);
    RUN_ALL(calloc_overflow);
    return harness_summary();
}
