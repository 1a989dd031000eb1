/* api_align.c - aligned_alloc and posix_memalign: every power of two from
 * 1 (sizeof(void*) for posix_memalign) up to 64 MiB with several sizes,
 * mixed with ordinary allocations. */
#define _GNU_SOURCE
#include "api_common.h"

/* The sizes tried for one alignment (0-terminated list in out[]). */
static int sizes_for_align(size_t align, size_t out[8])
{
    int k = 0;
    out[k++] = 1;
    out[k++] = 24;
    out[k++] = align;
    out[k++] = align + 1;
    if (align > 1)
        out[k++] = align - 1;
    if (align <= 4 * MiB) {
        out[k++] = 3 * align + 100;
        out[k++] = 5000;
    }
    return k;
}

static void check_aligned_blocks(size_t align, void **p, const size_t *n, int k)
{
    struct api_range r[8];
    for (int i = 0; i < k; i++) {
        CHECK_MSG(((uintptr_t)p[i] & (align - 1)) == 0, "%p (size %zu) not aligned to %zu", p[i],
                  n[i], align);
        CHECK_SPARSE(p[i], n[i], align * 131 + (uint64_t)i);
        r[i].lo = (uintptr_t)p[i];
        r[i].n = n[i];
    }
    check_no_overlap(r, (size_t)k);
}

TEST(aligned_alloc_every_power_of_two)
{
    for (size_t align = 1; align <= 64 * MiB && !TEST_FAILED(); align *= 2) {
        size_t n[8];
        void *p[8];
        int k = sizes_for_align(align, n);
        for (int i = 0; i < k; i++) {
            p[i] = A->aligned_alloc_fn(launder_size(align), launder_size(n[i]));
            REQUIRE(p[i] != NULL);
            fill_sparse(p[i], n[i], align * 131 + (uint64_t)i);
        }
        check_aligned_blocks(align, p, n, k);
        for (int i = 0; i < k; i++)
            A->free_fn(p[i]);
    }
}

TEST(posix_memalign_every_power_of_two)
{
    for (size_t align = sizeof(void *); align <= 64 * MiB && !TEST_FAILED(); align *= 2) {
        size_t n[8];
        void *p[8];
        int k = sizes_for_align(align, n);
        for (int i = 0; i < k; i++) {
            p[i] = NULL;
            int rc = A->posix_memalign_fn(&p[i], launder_size(align), launder_size(n[i]));
            CHECK_MSG(rc == 0, "posix_memalign(%zu, %zu) = %d", align, n[i], rc);
            REQUIRE(p[i] != NULL);
            fill_sparse(p[i], n[i], align * 131 + (uint64_t)i);
        }
        check_aligned_blocks(align, p, n, k);
        for (int i = 0; i < k; i++)
            A->free_fn(p[i]);
    }
}

/* aligned_alloc(align, 0) returns NULL or a freeable aligned pointer. */
TEST(aligned_alloc_size_zero)
{
    for (size_t align = 1; align <= 1 * MiB; align *= 2) {
        void *p = A->aligned_alloc_fn(align, launder_size(0));
        if (p) {
            CHECK_ALIGNED(p, align);
            A->free_fn(p);
        }
        void *q = NULL;
        if (align >= sizeof(void *)) {
            CHECK_EQ(A->posix_memalign_fn(&q, align, 0), 0);
            if (q) {
                CHECK_ALIGNED(q, align);
                A->free_fn(q);
            }
        }
    }
}

/* Thousands of aligned blocks of random alignment and size mixed with
 * plain ones, all alive together. */
TEST(aligned_mixed_with_malloc)
{
    enum { N = 6000 };
    static void *p[N];
    static size_t n[N], al[N];
    static struct api_range r[N];
    uint64_t rng = 12345;
    for (int i = 0; i < N; i++) {
        uint64_t x = harness_rand(&rng);
        n[i] = (size_t)(x % 3000);
        if (x & 0x100000) {
            al[i] = (size_t)1 << ((x >> 24) % 13); /* 1 .. 4096 */
            p[i] = A->aligned_alloc_fn(al[i], n[i]);
        } else {
            al[i] = min_align_for(n[i]);
            p[i] = A->malloc_fn(n[i]);
        }
        REQUIRE(p[i] != NULL);
        CHECK_ALIGNED(p[i], al[i]);
        harness_fill(p[i], n[i], (uint64_t)i * 3);
        r[i].lo = (uintptr_t)p[i];
        r[i].n = n[i];
    }
    for (int i = 0; i < N && !TEST_FAILED(); i++)
        CHECK_PATTERN(p[i], n[i], (uint64_t)i * 3);
    check_no_overlap(r, N);
    for (int i = 0; i < N; i += 2)
        A->free_fn(p[i]);
    for (int i = 1; i < N; i += 2)
        A->free_fn(p[i]);
}

/* Large alignments repeatedly: memory is recycled, not leaked. */
TEST(large_alignment_recycles)
{
    size_t rss0 = harness_rss_bytes();
    for (int i = 0; i < 200; i++) {
        size_t align = (size_t)1 << (16 + i % 9); /* 64 KiB .. 16 MiB */
        unsigned char *p = A->aligned_alloc_fn(align, align / 2 + 4096);
        REQUIRE(p != NULL);
        CHECK_ALIGNED(p, align);
        memset(p, 0x11, align / 2 + 4096);
        A->free_fn(p);
    }
    size_t rss1 = harness_rss_bytes();
    if (!API_SANITIZED && rss0 && rss1)
        CHECK_MSG(rss1 <= rss0 + 64 * MiB, "RSS grew from %zu to %zu", rss0, rss1);
}

#ifndef MP_TEST_PLAIN
/* The usable size of an aligned block covers the request. */
TEST(aligned_usable_size)
{
    for (size_t align = 1; align <= 16 * MiB; align *= 2) {
        for (size_t n = 1; n <= 3 * align && n <= 32 * MiB; n = n * 4 + 3) {
            unsigned char *p = mp_aligned_alloc(align, n);
            REQUIRE(p != NULL);
            CHECK_ALIGNED(p, align);
            size_t u = mp_usable_size(p);
            CHECK_GE(u, n);
            p[u - 1] = 1;
            p[0] = 1;
            mp_free(p);
        }
    }
}
#endif

int main(void)
{
    api_init();
    RUN_ALL_NOSAN(aligned_alloc_every_power_of_two);
    RUN_ALL(posix_memalign_every_power_of_two);
    RUN_ALL(aligned_alloc_size_zero);
    RUN_ALL_NOSAN(aligned_mixed_with_malloc);
    RUN_ALL_NOSAN(large_alignment_recycles);
#ifdef MP_TEST_PLAIN
    harness_skip("aligned_usable_size", "needs mp_usable_size");
#else
    RUN(aligned_usable_size);
#endif
    return harness_summary();
}
