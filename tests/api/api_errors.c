/* api_errors.c - impossible requests: sizes beyond PTRDIFF_MAX or that
 * overflow when rounded, bad alignments; NULL/errno/return codes as the C
 * library documents them, and the heap still working afterwards. */
#define _GNU_SOURCE
#include "api_common.h"

/* Sizes no allocator can satisfy; several are chosen so that rounding them
 * up to a size class, a page or an alignment overflows. */
static const size_t huge_sizes[] = {
    SIZE_MAX,
    SIZE_MAX - 1,
    SIZE_MAX - 15,
    SIZE_MAX - 16,
    SIZE_MAX - 4095,
    SIZE_MAX - 4096,
    SIZE_MAX - ((size_t)2 << 20) + 1,
    SIZE_MAX - ((size_t)64 << 20),
    (size_t)PTRDIFF_MAX + 1,
    (size_t)PTRDIFF_MAX,
    (size_t)PTRDIFF_MAX - 4095,
    (size_t)1 << 62,
    (size_t)1 << 60,
};
enum { NHUGE = sizeof huge_sizes / sizeof huge_sizes[0] };

static void heap_still_works(void)
{
    void *p[4];
    static const size_t n[4] = { 16, 4000, 300 * KiB, 2 * MiB };
    for (int i = 0; i < 4; i++) {
        p[i] = A->malloc_fn(n[i]);
        CHECK(p[i] != NULL);
        if (p[i])
            memset(p[i], i, n[i]);
    }
    for (int i = 0; i < 4; i++)
        A->free_fn(p[i]);
}

TEST(malloc_huge_enomem)
{
    for (int i = 0; i < NHUGE; i++) {
        errno = 0;
        void *p = A->malloc_fn(launder_size(huge_sizes[i]));
        CHECK_MSG(p == NULL, "malloc(%#zx) = %p", huge_sizes[i], p);
        CHECK_MSG(errno == ENOMEM, "malloc(%#zx): errno %d, not ENOMEM", huge_sizes[i], errno);
        if (p)
            A->free_fn(p);
    }
    heap_still_works();
}

TEST(aligned_alloc_huge_enomem)
{
    static const size_t aligns[] = { 1, 16, 64, 4096, 65536, (size_t)1 << 21, (size_t)1 << 26 };
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        for (int i = 0; i < NHUGE; i++) {
            errno = 0;
            void *p = A->aligned_alloc_fn(launder_size(aligns[a]), launder_size(huge_sizes[i]));
            CHECK_MSG(p == NULL, "aligned_alloc(%zu, %#zx) = %p", aligns[a], huge_sizes[i], p);
            CHECK_MSG(errno == ENOMEM, "aligned_alloc(%zu, %#zx): errno %d, not ENOMEM",
                      aligns[a], huge_sizes[i], errno);
            if (p)
                A->free_fn(p);
        }
    }
    /* valid but unsatisfiable alignments */
    static const size_t big_aligns[] = { (size_t)1 << 62, (size_t)1 << 63 };
    for (int a = 0; a < 2; a++) {
        errno = 0;
        void *p = A->aligned_alloc_fn(launder_size(big_aligns[a]), launder_size(64));
        CHECK_MSG(p == NULL, "aligned_alloc(%#zx, 64) = %p", big_aligns[a], p);
        if (A->is_mempool)
            CHECK_MSG(errno == ENOMEM, "aligned_alloc(%#zx, 64): errno %d, not ENOMEM",
                      big_aligns[a], errno);
        if (p)
            A->free_fn(p);
    }
    heap_still_works();
}

/* aligned_alloc with an alignment that is not a power of two: NULL and
 * EINVAL (C17, and mempool's documented behaviour; glibc before 2.38
 * accepted some of these, so the malloc table only checks it where the
 * malloc family is mempool). */
TEST(aligned_alloc_bad_alignment)
{
    static const size_t bad[] = { 0, 3, 5, 6, 12, 24, 48, 100, 1000, 4095, 4097, 65535,
                                  ((size_t)1 << 20) + 1, ((size_t)1 << 63) + 1, SIZE_MAX };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = A->aligned_alloc_fn(launder_size(bad[i]), launder_size(100));
        CHECK_MSG(p == NULL, "aligned_alloc(%#zx, 100) = %p", bad[i], p);
        CHECK_MSG(errno == EINVAL, "aligned_alloc(%#zx, 100): errno %d, not EINVAL", bad[i],
                  errno);
        if (p)
            A->free_fn(p);
    }
    heap_still_works();
}

/* posix_memalign with a bad alignment: EINVAL, *out untouched; errno is
 * not set. */
TEST(posix_memalign_bad_alignment)
{
    static const size_t bad[] = { 0, 1, 2, 4, 3, 12, 24, 40, 48, 100, 4095, 4104,
                                  ((size_t)1 << 20) + 8, ((size_t)1 << 63) + 8, SIZE_MAX };
    void *const sentinel = (void *)(uintptr_t)0x5e17;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *out = sentinel;
        errno = 4242;
        int rc = A->posix_memalign_fn(&out, launder_size(bad[i]), launder_size(100));
        CHECK_MSG(rc == EINVAL, "posix_memalign(%#zx, 100) = %d, not EINVAL", bad[i], rc);
        CHECK_MSG(out == sentinel, "posix_memalign(%#zx, 100) changed *out to %p", bad[i], out);
        CHECK_MSG(errno == 4242, "posix_memalign(%#zx, 100) set errno to %d", bad[i], errno);
        if (rc == 0 && out != sentinel)
            A->free_fn(out);
    }
    heap_still_works();
}

TEST(posix_memalign_huge_enomem)
{
    void *const sentinel = (void *)(uintptr_t)0x5e17;
    static const size_t aligns[] = { 8, 16, 4096, (size_t)1 << 21 };
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        for (int i = 0; i < NHUGE; i++) {
            void *out = sentinel;
            errno = 4242;
            int rc = A->posix_memalign_fn(&out, launder_size(aligns[a]),
                                          launder_size(huge_sizes[i]));
            CHECK_MSG(rc == ENOMEM, "posix_memalign(%zu, %#zx) = %d, not ENOMEM", aligns[a],
                      huge_sizes[i], rc);
            CHECK_MSG(out == sentinel, "posix_memalign(%zu, %#zx) changed *out", aligns[a],
                      huge_sizes[i]);
            /* glibc sets errno here; mempool documents that it does not */
            if (A->is_mempool)
                CHECK_MSG(errno == 4242, "posix_memalign(%zu, %#zx) set errno to %d",
                          aligns[a], huge_sizes[i], errno);
            if (rc == 0 && out != sentinel)
                A->free_fn(out);
        }
    }
    heap_still_works();
}

/* A successful allocation after a failed one is normal (the failure left
 * no locks held or state half-changed): repeat failure/success pairs. */
TEST(failure_then_success)
{
    for (int i = 0; i < 1000; i++) {
        void *bad = A->malloc_fn(launder_size(huge_sizes[i % NHUGE]));
        CHECK(bad == NULL);
        void *ok = A->malloc_fn((size_t)(i * 37) % 5000);
        CHECK(ok != NULL);
        A->free_fn(ok);
    }
}

#ifndef MP_TEST_PLAIN
TEST(mp_sized_and_usable_huge)
{
    size_t u = 12345;
    errno = 0;
    void *p = mp_malloc_usable(launder_size(SIZE_MAX), &u);
    CHECK(p == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    p = mp_malloc_usable(launder_size((size_t)PTRDIFF_MAX + 1), NULL);
    CHECK(p == NULL);
    CHECK_EQ(errno, ENOMEM);
    /* mp_good_size of an impossible size must not claim it fits */
    size_t g = mp_good_size(launder_size((size_t)PTRDIFF_MAX + 1));
    CHECK_MSG(g == 0 || g > (size_t)PTRDIFF_MAX, "mp_good_size(PTRDIFF_MAX+1) = %zu", g);
    g = mp_good_size(launder_size(SIZE_MAX - 15));
    CHECK_MSG(g == 0 || g >= SIZE_MAX - 15, "mp_good_size(SIZE_MAX-15) = %zu", g);
}
#endif

int main(void)
{
    api_init();
    RUN_ALL(malloc_huge_enomem);
    RUN_ALL_NOSAN(aligned_alloc_huge_enomem);
#ifdef MP_TEST_PLAIN
    if (malloc_is_mempool())
        RUN_ALL(aligned_alloc_bad_alignment);
    else
        harness_skip("aligned_alloc_bad_alignment/malloc",
                     "glibc's aligned_alloc accepts some bad alignments before 2.38");
#else
    A = &api_mp;
    RUN_AS("aligned_alloc_bad_alignment/mp", aligned_alloc_bad_alignment);
    A = &api_libc;
    if (malloc_is_mempool())
        RUN_AS("aligned_alloc_bad_alignment/malloc", aligned_alloc_bad_alignment);
    else
        harness_skip("aligned_alloc_bad_alignment/malloc", "the malloc family is not mempool");
#endif
    RUN_ALL(posix_memalign_bad_alignment);
    RUN_ALL(posix_memalign_huge_enomem);
    RUN_ALL(failure_then_success);
#ifdef MP_TEST_PLAIN
    harness_skip("mp_sized_and_usable_huge", "needs the mp_ functions");
#else
    RUN(mp_sized_and_usable_huge);
#endif
    return harness_summary();
}
