/* api_realloc.c - realloc: NULL and zero-size semantics, growing and
 * shrinking across every size class boundary up to 64 MiB while keeping
 * the contents, failure leaving the block intact. */
#define _GNU_SOURCE
#include "api_common.h"

TEST(realloc_null_is_malloc)
{
    for (size_t n = 0; n <= 3 * MiB; n = n * 2 + 1) {
        unsigned char *p = A->realloc_fn(NULL, launder_size(n));
        REQUIRE(p != NULL);
        CHECK_ALIGNED(p, min_align_for(n));
        harness_fill(p, n, n);
        CHECK_PATTERN(p, n, n);
        A->free_fn(p);
    }
}

/* realloc(p, 0) frees p and returns NULL (glibc's behaviour, documented for
 * mp_realloc too). */
TEST(realloc_zero_frees)
{
    static const size_t sizes[] = { 0, 1, 100, 5000, 300 * KiB, 2 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = A->malloc_fn(sizes[i]);
        REQUIRE(p != NULL);
        memset(p, 1, sizes[i]);
        void *q = A->realloc_fn(p, launder_size(0));
        CHECK_MSG(q == NULL, "realloc(malloc(%zu), 0) = %p, not NULL", sizes[i], q);
        if (q)
            A->free_fn(q);
    }
    /* and the freed memory is usable again */
    for (int i = 0; i < 10000; i++) {
        void *p = A->malloc_fn(64);
        REQUIRE(p != NULL);
        CHECK(A->realloc_fn(p, 0) == NULL);
    }
#ifndef MP_TEST_PLAIN
    if (A->has_usable) {
        mp_stats_t a, b;
        mp_stats_get(&a);
        for (int i = 0; i < 200; i++) {
            void *p = A->malloc_fn(2 * MiB);
            REQUIRE(p != NULL);
            CHECK(A->realloc_fn(p, 0) == NULL);
        }
        mp_stats_get(&b);
        CHECK_LE(b.in_use, a.in_use + 4 * MiB);
    }
#endif
}

/* Grow one byte at a time from 1 to 5000, then by ~1/8 steps to 64 MiB. */
TEST(realloc_grow_keeps_contents)
{
    size_t n = 1;
    unsigned char *p = A->malloc_fn(n);
    REQUIRE(p != NULL);
    p[0] = 0x42;
    harness_fill(p, n, 7);
    while (n < 64 * MiB && !TEST_FAILED()) {
        size_t m = n < 5000 ? n + 1 : n + n / 8 + 3;
        if (m > 64 * MiB)
            m = 64 * MiB;
        unsigned char *q = A->realloc_fn(p, launder_size(m));
        REQUIRE(q != NULL);
        CHECK_ALIGNED(q, min_align_for(m));
        /* the old n bytes survive; the new tail is then rewritten */
        size_t bad = verify_sparse_upto(q, n, n, 7);
        CHECK_MSG(bad == (size_t)-1, "grow %zu -> %zu: byte %zu changed", n, m, bad);
        p = q;
        n = m;
        fill_sparse(p, n, 7);
    }
    CHECK_SPARSE(p, n, 7);
    A->free_fn(p);
}

/* Shrink from 64 MiB down to 1 byte: the kept prefix survives. */
TEST(realloc_shrink_keeps_contents)
{
    size_t n = 64 * MiB;
    unsigned char *p = A->malloc_fn(launder_size(n));
    REQUIRE(p != NULL);
    fill_sparse(p, n, 11);
    while (n > 1 && !TEST_FAILED()) {
        size_t m = n > 5000 ? n - n / 5 - 1 : n - 1;
        unsigned char *q = A->realloc_fn(p, launder_size(m));
        REQUIRE(q != NULL);
        size_t bad = verify_sparse_upto(q, n, m, 11);
        CHECK_MSG(bad == (size_t)-1, "shrink %zu -> %zu: byte %zu changed", n, m, bad);
        p = q;
        n = m;
        fill_sparse(p, n, 11);
    }
    A->free_fn(p);
}

/* Back and forth between small, medium and large sizes, with other
 * objects alive around the block, so that moves really happen. */
TEST(realloc_zigzag)
{
    static const size_t sizes[] = { 10,  5000,      20,       300 * KiB, 100,     2 * MiB,
                                    50,  1 * MiB + 1, 64,       16,        100000, 8,
                                    4096, 4095,     4097,     256 * KiB, 256 * KiB + 1, 1 };
    enum { NS = sizeof sizes / sizeof sizes[0] };
    enum { NOBJ = 16 };
    unsigned char *obj[NOBJ];
    size_t len[NOBJ];
    for (int i = 0; i < NOBJ; i++) {
        len[i] = sizes[i % NS];
        obj[i] = A->malloc_fn(len[i]);
        REQUIRE(obj[i] != NULL);
        harness_fill(obj[i], len[i], (uint64_t)i);
    }
    for (int round = 0; round < 40 && !TEST_FAILED(); round++) {
        for (int i = 0; i < NOBJ; i++) {
            size_t m = sizes[(size_t)(round * 7 + i * 3) % NS];
            unsigned char *q = A->realloc_fn(obj[i], m);
            REQUIRE(q != NULL);
            size_t keep = m < len[i] ? m : len[i];
            CHECK_PATTERN(q, keep, (uint64_t)i);
            obj[i] = q;
            len[i] = m;
            harness_fill(obj[i], len[i], (uint64_t)i);
        }
    }
    for (int i = 0; i < NOBJ; i++) {
        CHECK_PATTERN(obj[i], len[i], (uint64_t)i);
        A->free_fn(obj[i]);
    }
}

/* realloc to the same size, and to sizes within the usable size. */
TEST(realloc_same_size)
{
    for (size_t n = 1; n <= 2 * MiB; n = n * 3 + 1) {
        unsigned char *p = A->malloc_fn(n);
        REQUIRE(p != NULL);
        harness_fill(p, n, n);
        for (int i = 0; i < 3; i++) {
            unsigned char *q = A->realloc_fn(p, launder_size(n));
            REQUIRE(q != NULL);
            CHECK_PATTERN(q, n, n);
            p = q;
        }
        A->free_fn(p);
    }
}

/* A realloc that cannot be satisfied returns NULL with ENOMEM and leaves
 * the block alone. */
TEST(realloc_failure_keeps_block)
{
    static const size_t huge[] = { SIZE_MAX, SIZE_MAX - 4095, (size_t)PTRDIFF_MAX + 1,
                                   (size_t)PTRDIFF_MAX, (size_t)1 << 62 };
    static const size_t sizes[] = { 1, 100, 4000, 300 * KiB, 3 * MiB };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        unsigned char *p = A->malloc_fn(sizes[s]);
        REQUIRE(p != NULL);
        harness_fill(p, sizes[s], 5);
        for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++) {
            errno = 0;
            unsigned char *q = A->realloc_fn(p, launder_size(huge[h]));
            CHECK_MSG(q == NULL, "realloc(%zu bytes, %#zx) = %p", sizes[s], huge[h], (void *)q);
            CHECK_MSG(errno == ENOMEM, "realloc(%zu bytes, %#zx): errno %d", sizes[s], huge[h],
                      errno);
            if (q) {
                p = q; /* should not happen; avoid leaking or double freeing */
                break;
            }
        }
        CHECK_PATTERN(p, sizes[s], 5);
        /* still a valid block: it can grow and be freed */
        unsigned char *q = A->realloc_fn(p, sizes[s] + 1000);
        REQUIRE(q != NULL);
        CHECK_PATTERN(q, sizes[s], 5);
        A->free_fn(q);
    }
}

/* realloc of blocks from aligned_alloc keeps contents. */
TEST(realloc_aligned_block)
{
    for (size_t align = 16; align <= 2 * MiB; align *= 4) {
        size_t n = align + 10;
        unsigned char *p = A->aligned_alloc_fn(align, n);
        REQUIRE(p != NULL);
        CHECK_ALIGNED(p, align);
        harness_fill(p, n, align);
        unsigned char *q = A->realloc_fn(p, n * 3);
        REQUIRE(q != NULL);
        CHECK_PATTERN(q, n, align);
        q = A->realloc_fn(q, n / 2);
        REQUIRE(q != NULL);
        CHECK_PATTERN(q, n / 2, align);
        A->free_fn(q);
    }
}

#ifndef MP_TEST_PLAIN
/* After a realloc, the usable size covers the new size. */
TEST(realloc_usable_size)
{
    unsigned char *p = NULL;
    for (size_t n = 1; n <= 4 * MiB; n = n + n / 3 + 1) {
        unsigned char *q = mp_realloc(p, n);
        REQUIRE(q != NULL);
        p = q;
        size_t u = mp_usable_size(p);
        CHECK_GE(u, n);
        memset(p, 0x33, u);
    }
    mp_free(p);
}
#endif

int main(void)
{
    api_init();
    RUN_ALL(realloc_null_is_malloc);
    RUN_ALL(realloc_zero_frees);
    RUN_ALL(realloc_grow_keeps_contents);
    RUN_ALL(realloc_shrink_keeps_contents);
    RUN_ALL(realloc_zigzag);
    RUN_ALL(realloc_same_size);
    RUN_ALL(realloc_failure_keeps_block);
    RUN_ALL_NOSAN(realloc_aligned_block);
#ifdef MP_TEST_PLAIN
    harness_skip("realloc_usable_size", "needs mp_usable_size");
#else
    RUN(realloc_usable_size);
#endif
    return harness_summary();
}
