/* api_compat.c - seed 003's usage examples, written as the seed wrote them,
 * compiled against <mempool/compat.h> and run on mempool's explicit
 * allocators; then the seed's own list of unit tests (create, allocate
 * one, allocate all, free and reallocate, double free, alignment, stats,
 * invalid free) and its multi-threaded use of a pool.
 *
 * The .plain build (no mempool linked) has nothing to run: it skips. */
#define _GNU_SOURCE
#include "api_common.h"

#ifdef MP_TEST_PLAIN

int main(void) {
    harness_skip("compat", "the compat names need libmempool (not linked in the plain build)");
    return harness_summary();
}

#else

#include <mempool/compat.h>

/* The seed's "Cache-Line Alignment" snippet, verbatim. */
void *align_to_cache_line(void *ptr);
void *align_to_cache_line(void *ptr)
{
    return (void *)(((uintptr_t)ptr + CACHE_LINE_SIZE - 1)
                    & ~(CACHE_LINE_SIZE - 1));
}

/* ---- the usage examples ------------------------------------------------------ */
TEST(slab_usage_example) {
    slab_allocator_t *alloc = slab_create(256, 1000);
    REQUIRE(alloc != NULL);
    void *ptr = slab_alloc(alloc);
    CHECK(ptr != NULL);
    CHECK(align_to_cache_line(ptr) == ptr);
    CHECK_EQ(slab_free(alloc, ptr), 0);
    slab_destroy(alloc);
}

TEST(arena_usage_example) {
    arena_allocator_t *arena = arena_create(64 * 1024);
    REQUIRE(arena != NULL);
    void *ptr1 = arena_alloc(arena, 256);
    void *ptr2 = arena_alloc(arena, 512);
    CHECK(ptr1 != NULL && ptr2 != NULL && ptr1 != ptr2);
    memset(ptr1, 1, 256);
    memset(ptr2, 2, 512);
    arena_reset(arena);  /* Free all at once */
    arena_destroy(arena);
}

TEST(pool_usage_example) {
    mempool_t *pool = pool_create(256, 100, 10000);
    REQUIRE(pool != NULL);
    void *ptr = pool_alloc(pool);
    CHECK(ptr != NULL);
    CHECK_EQ(pool_free(pool, ptr), 0);
    pool_destroy(pool);
}

TEST(pool_tuning_example) {
    /* Pool creation */
    mempool_t *pool = pool_create(
        256,              /* block_size: Size of each allocation */
        100,              /* blocks_per_thread: Thread-local cache capacity */
        10000             /* total_blocks: Global pool size */
    );
    REQUIRE(pool != NULL);
    size_t allocated = 1, free_count = 0;
    CHECK_EQ(pool_stats(pool, &allocated, &free_count), 0);
    CHECK_EQ(allocated, 0);
    CHECK_GE(free_count, 10000);
    pool_destroy(pool);
}

/* ---- the seed's unit-test list ------------------------------------------------- */
static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

TEST(slab_create_destroy) {
    slab_allocator_t *a = slab_create(64, 10);
    REQUIRE(a != NULL);
    slab_destroy(a);
    CHECK(slab_create(0, 10) == NULL);
}

TEST(slab_allocate_all_blocks) {
    slab_allocator_t *a = slab_create(100, 1000);
    REQUIRE(a != NULL);
    void *p[1000];
    for (int i = 0; i < 1000; i++) {
        p[i] = slab_alloc(a);
        REQUIRE(p[i] != NULL);
        memset(p[i], i & 0xff, 100);
    }
    for (int i = 0; i < 1000; i++) CHECK_EQ(((unsigned char *)p[i])[99], i & 0xff);
    qsort(p, 1000, sizeof *p, cmp_ptr);
    for (int i = 1; i < 1000; i++) CHECK((uintptr_t)p[i] - (uintptr_t)p[i - 1] >= 100);
    size_t used = 0, free_blocks = 0;
    CHECK_EQ(slab_stats(a, &used, &free_blocks), 0);
    CHECK_EQ(used, 1000);
    /* beyond the seed's fixed capacity: the slab grows */
    void *more = slab_alloc(a);
    CHECK(more != NULL);
    CHECK_EQ(slab_free(a, more), 0);
    for (int i = 0; i < 1000; i++) CHECK_EQ(slab_free(a, p[i]), 0);
    CHECK_EQ(slab_stats(a, &used, &free_blocks), 0);
    CHECK_EQ(used, 0);
    CHECK_GE(free_blocks, 1001);
    slab_destroy(a);
}

TEST(slab_free_and_reallocate) {
    slab_allocator_t *a = slab_create(32, 4);
    REQUIRE(a != NULL);
    void *p = slab_alloc(a);
    CHECK_EQ(slab_free(a, p), 0);
    void *q = slab_alloc(a);
    CHECK(q == p);
    CHECK_EQ(slab_free(a, q), 0);
    slab_destroy(a);
}

TEST(double_free_detection) {
    slab_allocator_t *a = slab_create(64, 8);
    mempool_t *pool = pool_create(64, 16, 64);
    REQUIRE(a != NULL && pool != NULL);
    void *p = slab_alloc(a), *q = pool_alloc(pool);
    CHECK_EQ(slab_free(a, p), 0);
    CHECK(slab_free(a, p) != 0);
    CHECK_EQ(slab_free(a, p), MP_EDOUBLEFREE);
    CHECK_EQ(pool_free(pool, q), 0);
    CHECK(pool_free(pool, q) != 0);
    slab_destroy(a);
    pool_destroy(pool);
}

TEST(alignment_verification) {
    slab_allocator_t *a = slab_create(24, 100);
    mempool_t *pool = pool_create(40, 8, 100);
    arena_allocator_t *ar = arena_create(4096);
    REQUIRE(a && pool && ar);
    for (int i = 0; i < 100; i++) {
        void *s = slab_alloc(a), *p = pool_alloc(pool), *r = arena_alloc(ar, 1 + (size_t)i * 7);
        CHECK(s && p && r);
        CHECK_EQ((uintptr_t)s % CACHE_LINE_SIZE, 0);
        CHECK_EQ((uintptr_t)p % CACHE_LINE_SIZE, 0);
        CHECK_EQ((uintptr_t)r % CACHE_LINE_SIZE, 0);
    }
    slab_destroy(a);
    pool_destroy(pool);
    arena_destroy(ar);
}

TEST(statistics) {
    arena_allocator_t *ar = arena_create(64 * 1024);
    REQUIRE(ar != NULL);
    size_t used = 1, cap = 0;
    CHECK_EQ(arena_stats(ar, &used, &cap), 0);
    CHECK_EQ(used, 0);
    CHECK_GE(cap, 64 * 1024);
    void *a = arena_alloc(ar, 100), *b = arena_alloc(ar, 100);
    CHECK(a && b);
    CHECK_EQ(arena_stats(ar, &used, &cap), 0);
    CHECK_GE(used, 200);
    arena_reset(ar);
    CHECK_EQ(arena_stats(ar, &used, NULL), 0);
    CHECK_EQ(used, 0);
    arena_destroy(ar);
    CHECK(slab_stats(NULL, &used, &cap) != 0);
    CHECK(pool_stats(NULL, &used, &cap) != 0);
    CHECK(arena_stats(NULL, &used, &cap) != 0);
}

TEST(invalid_free_detection) {
    slab_allocator_t *a = slab_create(64, 8), *b = slab_create(64, 8);
    mempool_t *pool = pool_create(64, 16, 64);
    REQUIRE(a && b && pool);
    void *p = slab_alloc(a), *q = slab_alloc(b), *r = pool_alloc(pool);
    int on_stack;
    CHECK_EQ(slab_free(a, q), MP_EFOREIGN);
    CHECK_EQ(slab_free(a, (char *)p + 8), MP_EINTERIOR);
    CHECK_EQ(slab_free(a, &on_stack), MP_EFOREIGN);
    CHECK_EQ(slab_free(a, NULL), MP_EINVAL);
    CHECK_EQ(pool_free(pool, p), MP_EFOREIGN);
    CHECK_EQ(pool_free(pool, (char *)r + 1), MP_EINTERIOR);
    CHECK_EQ(slab_free(a, p), 0);
    CHECK_EQ(slab_free(b, q), 0);
    CHECK_EQ(pool_free(pool, r), 0);
    slab_destroy(a);
    slab_destroy(b);
    pool_destroy(pool);
}

/* ---- the seed's contention benchmark, as a test: N threads, one pool ----------- */
static mempool_t *shared_pool;

static void *contention_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 100000; i++) {
        void *p = pool_alloc(shared_pool);
        if (p == NULL) {
            CHECK(p != NULL);
            break;
        }
        *(volatile int *)p = i;
        CHECK_EQ(pool_free(shared_pool, p), 0);
    }
    return NULL;
}

TEST(multi_threaded_pool) {
    shared_pool = pool_create(64, 100, 10000);
    REQUIRE(shared_pool != NULL);
    for (int n = 1; n <= 8; n *= 2) {
        pthread_t th[8];
        for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, contention_thread, NULL);
        for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    }
    size_t allocated = 1, free_count = 0;
    CHECK_EQ(pool_stats(shared_pool, &allocated, &free_count), 0);
    CHECK_EQ(allocated, 0);
    pool_destroy(shared_pool);
}

int main(void) {
    api_init();
    RUN(slab_usage_example);
    RUN(arena_usage_example);
    RUN(pool_usage_example);
    RUN(pool_tuning_example);
    RUN(slab_create_destroy);
    RUN(slab_allocate_all_blocks);
    RUN(slab_free_and_reallocate);
    RUN(double_free_detection);
    RUN(alignment_verification);
    RUN(statistics);
    RUN(invalid_free_detection);
    RUN(multi_threaded_pool);
    return harness_summary();
}

#endif /* MP_TEST_PLAIN */
