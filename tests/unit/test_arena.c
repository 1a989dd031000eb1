/* test_arena.c - the arena allocator (arena.c): bump allocation, alignment,
 * growth, blocks of their own, reset (memory kept, surplus returned),
 * stats, every bad input, poisoning, threads bumping at once, stale
 * per-thread regions after reset and after destroy. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include "xtest.h"


static int overlaps(struct range *r, size_t n) {
    qsort(r, n, sizeof *r, cmp_range);
    int bad = 0;
    for (size_t i = 1; i < n; i++)
        if (r[i - 1].p + r[i - 1].n > r[i].p) bad++;
    return bad;
}

static mp_arena_stats_t stats_of(mp_arena_t *a) {
    mp_arena_stats_t st;
    memset(&st, 0xff, sizeof st);
    CHECK_EQ(mp_arena_stats(a, &st), MP_OK);
    return st;
}

static size_t r16(size_t n) { return (n + 15) & ~(size_t)15; }

TEST(bump_alloc_and_stats) {
    mp_arena_t *a = mp_arena_create(0, 0);
    REQUIRE(a != NULL);
    mp_arena_stats_t st = stats_of(a);
    CHECK_EQ(st.used, 0);
    CHECK_GE(st.capacity, 64 << 10);
    CHECK_EQ(st.chunks, 1);
    enum { N = 20000 };
    static struct range r[N];
    size_t used = 0;
    uint64_t rng = 1;
    for (int i = 0; i < N; i++) {
        size_t n = 1 + harness_rand(&rng) % 300;
        void *p = mp_arena_alloc(a, n);
        REQUIRE(p != NULL);
        CHECK_EQ((uintptr_t)p & 15, 0);
        harness_fill(p, n, (uintptr_t)p);
        r[i] = (struct range){ (uintptr_t)p, n };
        used += r16(n);
    }
    for (int i = 0; i < N; i++)
        CHECK(harness_verify((void *)r[i].p, r[i].n, r[i].p) == (size_t)-1);
    CHECK_EQ(overlaps(r, N), 0);
    st = stats_of(a);
    CHECK_EQ(st.used, used);
    CHECK_GE(st.capacity, used);
    CHECK_GT(st.chunks, 1);
    mp_arena_destroy(a);
}

TEST(aligned_and_big) {
    mp_arena_t *a = mp_arena_create(100000, 0);
    REQUIRE(a != NULL);
    enum { N = 400 };
    static struct range r[N];
    int k = 0;
    for (size_t align = 1; align <= ((size_t)1 << 22); align <<= 1) {
        for (size_t n = 1; n < 70000; n = n * 5 + 3) {
            void *p = mp_arena_alloc_aligned(a, n, align);
            REQUIRE(p != NULL);
            CHECK_MSG(((uintptr_t)p & (align - 1)) == 0, "%p not aligned to %zu", p, align);
            memset(p, 0x5c, n);
            REQUIRE(k < N);
            r[k++] = (struct range){ (uintptr_t)p, n };
        }
    }
    CHECK_EQ(overlaps(r, (size_t)k), 0);
    mp_arena_destroy(a);

    /* A request above a quarter of the next chunk gets a block of its own,
     * which a reset gives back. */
    a = mp_arena_create(0, 0);
    REQUIRE(a != NULL);
    void *small = mp_arena_alloc(a, 100);
    void *big = mp_arena_alloc(a, 10 << 20);
    REQUIRE(small != NULL && big != NULL);
    memset(big, 1, 10 << 20);
    CHECK((uintptr_t)big >= (uintptr_t)small + 100 || (uintptr_t)big + (10 << 20) <= (uintptr_t)small);
    mp_arena_stats_t st = stats_of(a);
    CHECK_GE(st.capacity, (size_t)10 << 20);
    CHECK_EQ(st.chunks, 2);
    CHECK_EQ(st.used, 112 + ((size_t)10 << 20));
    CHECK_EQ(mp_arena_reset(a), MP_OK);
    st = stats_of(a);
    CHECK_EQ(st.used, 0);
    CHECK_LT(st.capacity, (size_t)1 << 20);
    CHECK_EQ(st.chunks, 1);
    CHECK_EQ(st.resets, 1);
    mp_arena_destroy(a);

    /* used counts alignment padding whether a request is cut from the
     * thread's region or straight from the chunk (above 16 KiB): a direct
     * cut once counted its size alone. */
    a = mp_arena_create(1 << 20, 0);
    REQUIRE(a != NULL);
    char *p0 = mp_arena_alloc(a, 16);                   /* starts this thread's region */
    size_t u0 = stats_of(a).used;
    char *p1 = mp_arena_alloc_aligned(a, 16, 4096);     /* from the region */
    size_t u1 = stats_of(a).used;
    char *p2 = mp_arena_alloc_aligned(a, 20000, 4096);  /* a direct cut */
    size_t u2 = stats_of(a).used;
    REQUIRE(p0 != NULL && p1 != NULL && p2 != NULL);
    CHECK_EQ(u1 - u0, (size_t)(p1 - p0));               /* 16 + padding */
    CHECK_GT(u2 - u1, 20000);                           /* the region's end is off the page */
    CHECK_EQ((uintptr_t)p2 % 4096, 0);
    mp_arena_destroy(a);
}

TEST(bad_input) {
    mp_arena_t *a = mp_arena_create(0, 0);
    REQUIRE(a != NULL);
    errno = 0;
    CHECK(mp_arena_alloc(a, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mp_last_error(), MP_EINVAL);
    errno = 0;
    CHECK(mp_arena_alloc(a, SIZE_MAX) == NULL);
    CHECK_EQ(errno, EOVERFLOW);
    CHECK_EQ(mp_last_error(), MP_EOVERFLOW);
    CHECK(mp_arena_alloc(a, (size_t)PTRDIFF_MAX + 1) == NULL);
    CHECK_EQ(mp_last_error(), MP_EOVERFLOW);
    errno = 0;
    CHECK(mp_arena_alloc_aligned(a, 10, 3) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(mp_last_error(), MP_EALIGN);
    CHECK(mp_arena_alloc_aligned(a, 10, 0) == NULL);
    CHECK_EQ(mp_last_error(), MP_EALIGN);
    CHECK(mp_arena_alloc_aligned(a, 10, 48) == NULL);
    CHECK_EQ(mp_last_error(), MP_EALIGN);
    CHECK(mp_arena_alloc_aligned(a, 0, 64) == NULL);
    CHECK_EQ(mp_last_error(), MP_EINVAL);
    CHECK(mp_arena_alloc_aligned(a, 10, (size_t)1 << 62) == NULL);
    CHECK_EQ(mp_last_error(), MP_EOVERFLOW);
    errno = 0;
    CHECK(mp_arena_alloc(a, (size_t)1 << 50) == NULL);   /* possible size, no memory */
    CHECK_EQ(errno, ENOMEM);
    mp_arena_stats_t st = stats_of(a);
    CHECK_EQ(st.errors.bad_request, 8);
    CHECK_EQ(st.errors.limit, 1);
    CHECK_EQ(st.used, 0);
    CHECK(mp_arena_alloc(a, 10) != NULL);               /* still fine */
    mp_arena_destroy(a);

    CHECK(mp_arena_create(0, MP_FLAG_CACHELINE) == NULL);
    CHECK_EQ(mp_last_error(), MP_EINVAL);
    CHECK(mp_arena_create(SIZE_MAX, 0) == NULL);
    CHECK_EQ(mp_last_error(), MP_EOVERFLOW);
    errno = 0;
    CHECK(mp_arena_alloc(NULL, 10) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(mp_arena_alloc_aligned(NULL, 10, 16) == NULL);
    CHECK_EQ(mp_arena_reset(NULL), MP_EINVAL);
    CHECK_EQ(mp_arena_stats(NULL, &st), MP_EINVAL);
    mp_arena_destroy(NULL);
}

TEST(reset_keeps_memory_and_returns_surplus) {
    mp_arena_t *a = mp_arena_create(0, 0);
    REQUIRE(a != NULL);
    void *first = mp_arena_alloc(a, 100);
    for (int i = 0; i < 200000; i++) REQUIRE(mp_arena_alloc(a, 64) != NULL);  /* ~12 MiB */
    mp_arena_stats_t big = stats_of(a);
    CHECK_GE(big.capacity, (size_t)12 << 20);
    CHECK_EQ(mp_arena_reset(a), MP_OK);
    mp_arena_stats_t st = stats_of(a);
    CHECK_EQ(st.used, 0);
    CHECK_EQ(st.capacity, big.capacity);      /* the round needed all of it: kept */
    CHECK(mp_arena_alloc(a, 100) == first);   /* reused from the start */
    /* a small round, then reset: the surplus goes back */
    CHECK_EQ(mp_arena_reset(a), MP_OK);
    for (int i = 0; i < 100; i++) REQUIRE(mp_arena_alloc(a, 64) != NULL);
    CHECK_EQ(mp_arena_reset(a), MP_OK);
    st = stats_of(a);
    CHECK_LT(st.capacity, big.capacity / 4);
    CHECK_EQ(st.resets, 3);
    CHECK(mp_arena_alloc(a, 100) == first);
    mp_arena_destroy(a);
}

/* A round that used only a later chunk (its request did not fit the
 * earlier ones) keeps that chunk at reset, not the unused ones before it:
 * reset once kept a prefix of the list as long as the used bytes. */
TEST(reset_keeps_the_chunks_used) {
    mp_arena_t *a = mp_arena_create(0, 0);
    REQUIRE(a != NULL);
    /* Round 1 grows the chain to 64 + 64 + 128 KiB. */
    for (int i = 0; i < 12; i++) REQUIRE(mp_arena_alloc(a, 15000) != NULL);
    mp_arena_stats_t st = stats_of(a);
    REQUIRE(st.chunks == 3 && st.capacity == (size_t)256 << 10);
    CHECK_EQ(mp_arena_reset(a), MP_OK);
    /* Round 2: a direct cut that fits only the 128 KiB chunk. */
    char *p = mp_arena_alloc(a, 65504);
    REQUIRE(p != NULL);
    CHECK_EQ(stats_of(a).chunks, 3);              /* no block of its own */
    CHECK_EQ(mp_arena_reset(a), MP_OK);
    st = stats_of(a);
    CHECK_EQ(st.chunks, 1);
    CHECK_EQ(st.capacity, (size_t)128 << 10);
    /* What the next round gets is in that chunk. */
    char *q = mp_arena_alloc(a, 100);
    REQUIRE(q != NULL);
    CHECK_MSG(q <= p && p - q < 4096, "next round at %p, the used chunk's data at %p", (void *)q, (void *)p);
    mp_arena_destroy(a);
}

/* The first chunk holds `initial` bytes: objects adding up to it fit in
 * one chunk (a 64 KiB chunk once held 64 bytes less, its header's). */
TEST(first_chunk_holds_initial) {
    static const size_t initials[] = { 1024, 65472, 65488, 65504, 65520, 65536, 100000, 1 << 20 };
    for (size_t k = 0; k < sizeof initials / sizeof *initials; k++) {
        size_t n = initials[k];
        mp_arena_t *a = mp_arena_create(n, 0);
        REQUIRE(a != NULL);
        for (size_t i = 0; i < n / 16; i++) REQUIRE(mp_arena_alloc(a, 16) != NULL);
        mp_arena_stats_t st = stats_of(a);
        CHECK_MSG(st.chunks == 1, "initial %zu: %zu chunks", n, st.chunks);
        CHECK_GE(st.capacity, n);
        mp_arena_destroy(a);
    }
}

TEST(poison_catches_use_after_reset) {
    mp_arena_t *a = mp_arena_create(0, MP_FLAG_POISON);
    REQUIRE(a != NULL);
    /* (laundered: mp_arena_alloc is declared malloc-like, so the compiler
     * may assume nothing else touches the memory, reset included) */
    volatile unsigned char *p = launder_ptr(mp_arena_alloc(a, 64));
    REQUIRE(p != NULL);
    memset((void *)p, 0, 64);
    mp_arena_reset(a);
    CHECK_EQ(p[5], MP_XPOISON_BYTE);
    volatile unsigned char *q = mp_arena_alloc(a, 64);
    CHECK(q == p);
    CHECK_EQ(stats_of(a).errors.poisoned, 0);
    mp_arena_reset(a);
    p[63] = 9;                                  /* write after reset */
    q = mp_arena_alloc(a, 64);
    CHECK(q == p);
    CHECK_EQ(stats_of(a).errors.poisoned, 1);
    mp_arena_destroy(a);
}

/* ---- threads ------------------------------------------------------------------ */
enum { PER = 20000 };

struct targ {
    mp_arena_t *a;
    struct range *r;
    size_t used;
    int seed;
};

static void *bump_worker(void *v) {
    struct targ *t = v;
    uint64_t rng = (uint64_t)t->seed * 7919 + 1;
    t->used = 0;
    for (int i = 0; i < PER / SCALE; i++) {
        size_t n = 1 + harness_rand(&rng) % (i % 100 == 0 ? 20000 : 200);
        size_t align = i % 7 == 0 ? 256 : 16;
        void *p = align == 16 ? mp_arena_alloc(t->a, n) : mp_arena_alloc_aligned(t->a, n, align);
        if (p == NULL) {
            CHECK(p != NULL);
            break;
        }
        CHECK_EQ((uintptr_t)p & (align - 1), 0);
        harness_fill(p, n < 64 ? n : 64, (uintptr_t)p);
        t->r[i] = (struct range){ (uintptr_t)p, n };
        if (align == 16) t->used += r16(n);
    }
    for (int i = 0; i < PER / SCALE; i++)
        CHECK(harness_verify((void *)t->r[i].p, t->r[i].n < 64 ? t->r[i].n : 64, t->r[i].p) == (size_t)-1);
    return NULL;
}

TEST(threads_bump_at_once) {
    mp_arena_t *a = mp_arena_create(0, 0);
    REQUIRE(a != NULL);
    struct range *all = calloc((size_t)T * PER, sizeof *all);
    struct targ t[T];
    for (int round = 0; round < 3; round++) {
        pthread_t th[T];
        for (int i = 0; i < T; i++) {
            t[i] = (struct targ){ a, all + (size_t)i * (PER / SCALE), 0, i + round * T };
            pthread_create(&th[i], NULL, bump_worker, &t[i]);
        }
        size_t used = 0;
        for (int i = 0; i < T; i++) {
            pthread_join(th[i], NULL);
            used += t[i].used;
        }
        CHECK_EQ(overlaps(all, (size_t)T * (PER / SCALE)), 0);
        mp_arena_stats_t st = stats_of(a);
        CHECK_GE(st.used, used);        /* plus the padding of aligned requests */
        CHECK_LE(st.used, st.capacity);
        CHECK_EQ(mp_arena_reset(a), MP_OK);
        CHECK_EQ(stats_of(a).used, 0);
    }
    free(all);
    mp_arena_destroy(a);
}

/* A thread keeps its region across a reset (stale) and across the destroy
 * of its arena and the reuse of the arena's id. */
static void *helper_alloc(void *arena) {
    void *p = mp_arena_alloc(arena, 40);
    if (p) memset(p, 3, 40);
    return p;
}

TEST(stale_regions) {
    xhelper_t h;
    xhelper_start(&h, helper_alloc);
    for (int i = 0; i < 30; i++) {
        mp_arena_t *a = mp_arena_create(0, 0);
        REQUIRE(a != NULL);
        for (int r = 0; r < 3; r++) {
            void *theirs = xhelper_step(&h, a);
            CHECK(theirs != NULL);
            void *mine = mp_arena_alloc(a, 40);
            CHECK(mine != NULL && mine != theirs);
            CHECK_EQ(stats_of(a).used, 2 * 48);
            mp_arena_reset(a);
        }
        mp_arena_destroy(a);
    }
    xhelper_stop(&h);
}

static void *exit_worker(void *v) {
    for (int i = 0; i < 100; i++) CHECK(mp_arena_alloc(v, 32) != NULL);
    return NULL;
}

TEST(thread_exit_keeps_count) {
    mp_arena_t *a = mp_arena_create(0, 0);
    REQUIRE(a != NULL);
    pthread_t t;
    pthread_create(&t, NULL, exit_worker, a);
    pthread_join(t, NULL);
    CHECK_EQ(stats_of(a).used, 100 * 32);
    mp_arena_destroy(a);
}

/* ---- a failed region refill ----------------------------------------------------- */
/* A memory source that refuses once told to (the child below installs it). */
static bool source_refuses;
static void *refusing_alloc(size_t size, size_t align, void *arg) {
    (void)arg;
    if (source_refuses) return NULL;
    char *m = mmap(NULL, size + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    uintptr_t a = ((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1);
    if (a > (uintptr_t)m) munmap(m, a - (uintptr_t)m);
    if ((uintptr_t)m + align > a) munmap((void *)(a + size), (uintptr_t)m + align - a);
    return (void *)a;
}
static void refusing_free(void *p, size_t size, void *arg) { (void)arg; munmap(p, size); }
static bool refusing_decommit(void *p, size_t size, void *arg) {
    (void)arg;
    return madvise(p, size, MADV_DONTNEED) == 0;
}

/* The lane's region nearly full, no memory left anywhere: a request that
 * needs a new region fails, and the region, still the thread's, keeps
 * serving smaller ones, which the stats must count.  They did not: the
 * region was retired before the new one was cut, and the lane's fast path
 * went on bumping it, uncounted. */
static void refill_fails_run(void) {
    mp_memory_source_t src = { refusing_alloc, refusing_free, refusing_decommit, NULL };
    REQUIRE(mp_set_memory_source(&src));
    mp_arena_t *a = mp_arena_create(0, 0);
    REQUIRE(a != NULL);
    for (int i = 0; i < 60; i++) REQUIRE(mp_arena_alloc(a, 1000) != NULL);
    size_t before = stats_of(a).used;
    CHECK_EQ(before, 60 * r16(1000));
    source_refuses = true;
    for (size_t sz = 1 << 20; sz >= 8192; sz /= 2)   /* what the page heap has left */
        while (mp_malloc(sz) != NULL) {}
    CHECK(mp_arena_alloc(a, 10000) == NULL);
    CHECK_EQ(mp_last_error(), MP_ENOMEM);
    size_t more = 0;
    while (mp_arena_alloc(a, 1000) != NULL) more += r16(1000);
    CHECK_GE(more, 1);                     /* the case needs room left in the region */
    CHECK_EQ(stats_of(a).used, before + more);
}

TEST(failed_refill_keeps_counting) {
    static const char *const env[] = { "MP_TEST_REFILL_CHILD=1", NULL };
    CHECK(harness_rerun(env, NULL));
}

int main(void) {
    if (getenv("MP_TEST_REFILL_CHILD")) {
        refill_fails_run();
        return harness_test_failures != 0;
    }
    RUN(bump_alloc_and_stats);
    RUN(aligned_and_big);
    RUN(bad_input);
    RUN(reset_keeps_memory_and_returns_surplus);
    RUN(reset_keeps_the_chunks_used);
    RUN(first_chunk_holds_initial);
    RUN(poison_catches_use_after_reset);
    RUN(threads_bump_at_once);
    RUN(stale_regions);
    RUN(thread_exit_keeps_count);
    RUN(failed_refill_keeps_counting);
    return harness_summary();
}
