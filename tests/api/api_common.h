/*
 * api_common.h - shared by the API tests in tests/api.
 *
 * Every API test is built three ways (see run.sh):
 *   X        linked with libmempool.a, so malloc & co. are mempool's;
 *   X.plain  built with -DMP_TEST_PLAIN and run on glibc's malloc, which
 *            proves that the conformance checks themselves are right;
 *   X.plain  again under LD_PRELOAD=libmempool.so (run.sh then sets
 *            MP_TEST_EXPECT_MEMPOOL=1).
 * In the sanitizer builds (-DMP_SANITIZE) the malloc family stays the
 * sanitizer's and only the mp_ functions are mempool's.
 *
 * The conformance tests go through an allocator table `A`, so that the same
 * test runs against the malloc family ("malloc") and, except in the plain
 * build, against the mp_ functions ("mp").  Calls through the table also
 * keep the compiler from folding or warning about deliberately odd calls.
 */
#ifndef MEMPOOL_API_COMMON_H
#define MEMPOOL_API_COMMON_H

#ifndef _GNU_SOURCE
#error "define _GNU_SOURCE before including api_common.h"
#endif

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mempool.h"
#include "harness.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define API_SANITIZED 1
#else
#define API_SANITIZED 0
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

struct alloc_api {
    const char *name;
    void *(*malloc_fn)(size_t);
    void *(*calloc_fn)(size_t, size_t);
    void *(*realloc_fn)(void *, size_t);
    void (*free_fn)(void *);
    void *(*aligned_alloc_fn)(size_t, size_t);
    int (*posix_memalign_fn)(void **, size_t, size_t);
    /* mempool's documented semantics apply (8-byte alignment allowed for
     * requests of 8 bytes or less, EINVAL for bad aligned_alloc alignments,
     * posix_memalign leaving errno alone). */
    bool is_mempool;
    /* mp_usable_size applies to this table's blocks. */
    bool has_usable;
};

static struct alloc_api api_libc = {
    "malloc", malloc, calloc, realloc, free, aligned_alloc, posix_memalign,
    false, false,
};

#ifndef MP_TEST_PLAIN
__attribute__((unused)) static struct alloc_api api_mp = {
    "mp", mp_malloc, mp_calloc, mp_realloc, mp_free, mp_aligned_alloc,
    mp_posix_memalign, true, true,
};
#endif

/* The allocator under test; volatile so that calls stay opaque. */
static struct alloc_api *volatile A = &api_libc;

/* True when the malloc family of this process is mempool's. */
__attribute__((unused))
static bool malloc_is_mempool(void)
{
#if defined(MP_TEST_PLAIN)
    return dlsym(RTLD_DEFAULT, "mp_malloc") != NULL;
#elif defined(MP_SANITIZE)
    return false;
#else
    return true;
#endif
}

/* Call once at the start of main(). */
__attribute__((unused))
static void api_init(void)
{
    api_libc.is_mempool = malloc_is_mempool();
#if !defined(MP_TEST_PLAIN) && !defined(MP_SANITIZE)
    api_libc.has_usable = true;
#endif
}

/* Run test `name` once per allocator table, as "name/malloc", "name/mp". */
#ifdef MP_TEST_PLAIN
#define RUN_ALL(name)                                                       \
    do {                                                                    \
        A = &api_libc;                                                      \
        RUN_AS(#name "/malloc", name);                                      \
    } while (0)
#else
#define RUN_ALL(name)                                                       \
    do {                                                                    \
        A = &api_libc;                                                      \
        RUN_AS(#name "/malloc", name);                                      \
        A = &api_mp;                                                        \
        RUN_AS(#name "/mp", name);                                          \
        A = &api_libc;                                                      \
    } while (0)
#endif

/* RUN_ALL, except that the malloc table is skipped in the sanitizer builds,
 * where the malloc family is the sanitizer's and departs from glibc's in
 * ways mempool does not: its aligned_alloc wants the size to be a multiple
 * of the alignment (C11 before DR 460) and fails with EINVAL otherwise, and
 * its fork handling can deadlock the child of a threaded process. */
#if API_SANITIZED && defined(MP_TEST_PLAIN)
#define RUN_ALL_NOSAN(name)                                                 \
    harness_skip(#name "/malloc", "the sanitizer's malloc family differs here")
#elif API_SANITIZED
#define RUN_ALL_NOSAN(name)                                                 \
    do {                                                                    \
        harness_skip(#name "/malloc", "the sanitizer's malloc family differs here"); \
        A = &api_mp;                                                        \
        RUN_AS(#name "/mp", name);                                          \
        A = &api_libc;                                                      \
    } while (0)
#else
#define RUN_ALL_NOSAN(name) RUN_ALL(name)
#endif

/* Minimum alignment the C library promises for a request of n bytes; for
 * mempool 16, or 8 for requests of 8 bytes or less. */
__attribute__((unused))
static size_t min_align_for(size_t n)
{
    if (A->is_mempool)
        return n <= 8 ? 8 : 16;
    return n < 16 ? 8 : 16;
}

/* Check that [p, p+n) holds pattern seed; reports the first bad offset. */
#define CHECK_PATTERN(p, n, seed)                                           \
    do {                                                                    \
        size_t api_off_ = harness_verify((p), (n), (seed));                 \
        CHECK_MSG(api_off_ == (size_t)-1,                                   \
                  "contents of %p (%zu bytes) differ at offset %zu",        \
                  (void *)(p), (size_t)(n), api_off_);                      \
    } while (0)

/* For big blocks, writing and checking every byte costs more than it tells:
 * above 1 MiB only the first and last 64 KiB and 64 bytes of every page
 * (every 1/1024th of the block for blocks above 4 MiB) are written and
 * checked. */
static inline size_t sparse_stride(size_t n)
{
    size_t s = (n / 1024) & ~(size_t)4095;
    return s > 4096 ? s : 4096;
}

__attribute__((unused))
static void fill_sparse(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = (unsigned char *)p;
    if (n <= MiB) {
        harness_fill(b, n, seed);
        return;
    }
    harness_fill(b, 64 * KiB, seed);
    for (size_t off = 64 * KiB; off + 64 <= n - 64 * KiB; off += sparse_stride(n))
        harness_fill(b + off, 64, seed + off);
    harness_fill(b + n - 64 * KiB, 64 * KiB, seed + n);
}

/* Offset of the first mismatch against fill_sparse(p, n, seed), only
 * looking at bytes below `limit`, or (size_t)-1. */
__attribute__((unused))
static size_t verify_sparse_upto(const void *p, size_t n, size_t limit, uint64_t seed)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t bad;
    if (n <= MiB)
        return harness_verify(b, n < limit ? n : limit, seed);
    if ((bad = harness_verify(b, 64 * KiB < limit ? 64 * KiB : limit, seed)) != (size_t)-1)
        return bad;
    for (size_t off = 64 * KiB; off + 64 <= n - 64 * KiB && off + 64 <= limit;
         off += sparse_stride(n))
        if ((bad = harness_verify(b + off, 64, seed + off)) != (size_t)-1)
            return off + bad;
    if (n <= limit && (bad = harness_verify(b + n - 64 * KiB, 64 * KiB, seed + n)) != (size_t)-1)
        return n - 64 * KiB + bad;
    return (size_t)-1;
}

#define CHECK_SPARSE(p, n, seed)                                            \
    do {                                                                    \
        size_t api_off_ = verify_sparse_upto((p), (n), (size_t)-1, (seed)); \
        CHECK_MSG(api_off_ == (size_t)-1,                                   \
                  "contents of %p (%zu bytes) differ at offset %zu",        \
                  (void *)(p), (size_t)(n), api_off_);                      \
    } while (0)

#define CHECK_ZERO(p, n)                                                    \
    do {                                                                    \
        size_t api_off_ = harness_first_nonzero((p), (n));                  \
        CHECK_MSG(api_off_ == (size_t)-1,                                   \
                  "%p (%zu bytes) not zero at offset %zu", (void *)(p),     \
                  (size_t)(n), api_off_);                                   \
    } while (0)

#define CHECK_ALIGNED(p, align)                                             \
    CHECK_MSG(((uintptr_t)(p) & ((uintptr_t)(align) - 1)) == 0,            \
              "%p not aligned to %zu", (void *)(p), (size_t)(align))

/* Sort (address, size) ranges and check that none overlap; returns the
 * number of overlaps found. */
struct api_range {
    uintptr_t lo;
    size_t n;
};

__attribute__((unused))
static int api_range_cmp(const void *a, const void *b)
{
    uintptr_t x = ((const struct api_range *)a)->lo, y = ((const struct api_range *)b)->lo;
    return x < y ? -1 : x > y;
}

__attribute__((unused))
static int check_no_overlap(struct api_range *r, size_t count)
{
    int bad = 0;
    qsort(r, count, sizeof *r, api_range_cmp);
    for (size_t i = 1; i < count; i++) {
        /* zero-byte blocks still need distinct addresses */
        size_t len = r[i - 1].n ? r[i - 1].n : 1;
        if (r[i - 1].lo + len > r[i].lo) {
            if (bad++ < 4)
                CHECK_MSG(0, "blocks overlap: [%#jx, +%zu) and [%#jx, +%zu)",
                          (uintmax_t)r[i - 1].lo, r[i - 1].n, (uintmax_t)r[i].lo, r[i].n);
        }
    }
    return bad;
}

#endif /* MEMPOOL_API_COMMON_H */
