/* api_stats.c - mp_stats_get, mp_stats_print, mp_trim, mp_thread_flush and
 * the late mp_set_memory_source.  These are mempool's own functions: the
 * plain build only checks that memory given back by free() is bounded. */
#define _GNU_SOURCE
#include "api_common.h"

#ifndef MP_TEST_PLAIN

static void stats_invariants(const mp_stats_t *s)
{
    CHECK_MSG(s->committed <= s->mapped, "committed %zu > mapped %zu", s->committed, s->mapped);
    CHECK_MSG(s->in_use <= s->committed, "in_use %zu > committed %zu", s->in_use, s->committed);
    CHECK_MSG(s->large_in_use <= s->in_use, "large_in_use %zu > in_use %zu", s->large_in_use,
              s->in_use);
    CHECK_MSG(s->free_dirty <= s->committed, "free_dirty %zu > committed %zu", s->free_dirty,
              s->committed);
    CHECK_MSG(s->in_use + s->free_dirty <= s->committed,
              "in_use %zu + free_dirty %zu > committed %zu", s->in_use, s->free_dirty,
              s->committed);
}

TEST(stats_invariants_hold)
{
    mp_stats_t s;
    void *p = mp_malloc(1000), *q = mp_malloc(3 * MiB);
    REQUIRE(p && q);
    mp_stats_get(&s);
    stats_invariants(&s);
    CHECK_GE(s.os_maps, 1);
    CHECK_GE(s.mapped, 3 * MiB);
    CHECK_GE(s.in_use, 3 * MiB + 1000);
    CHECK_GE(s.large_in_use, 3 * MiB);
    CHECK_GE(s.thread_caches, 1);
    CHECK_GE(s.large_allocs, 1);
    mp_free(p);
    mp_free(q);
    mp_stats_get(&s);
    stats_invariants(&s);
}

/* mp_stats_get allocates nothing: two snapshots in a row agree. */
TEST(stats_get_is_quiet)
{
    mp_stats_t a, b;
    mp_stats_get(&a);
    mp_stats_get(&b);
    CHECK_EQ(a.in_use, b.in_use);
    CHECK_EQ(a.committed, b.committed);
    CHECK_EQ(a.mapped, b.mapped);
    CHECK_EQ(a.os_maps, b.os_maps);
    CHECK_EQ(a.central_refills, b.central_refills);
    CHECK_EQ(a.large_allocs, b.large_allocs);
}

/* in_use and large_in_use follow a large allocation and its free. */
TEST(stats_follow_large_block)
{
    static const size_t sizes[] = { 300 * KiB, 1 * MiB, 8 * MiB + 123, 40 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        mp_stats_t a, b, c;
        mp_stats_get(&a);
        void *p = mp_malloc(n);
        REQUIRE(p != NULL);
        mp_stats_get(&b);
        CHECK_MSG(b.in_use >= a.in_use + n, "%zu-byte block: in_use %zu -> %zu", n, a.in_use,
                  b.in_use);
        CHECK_MSG(b.in_use <= a.in_use + n + n / 8 + 64 * KiB,
                  "%zu-byte block: in_use %zu -> %zu (too much)", n, a.in_use, b.in_use);
        CHECK_MSG(b.large_in_use >= a.large_in_use + n, "%zu-byte block: large_in_use %zu -> %zu",
                  n, a.large_in_use, b.large_in_use);
        CHECK_EQ(b.large_allocs, a.large_allocs + 1);
        CHECK_GE(b.committed, b.in_use);
        stats_invariants(&b);
        mp_free(p);
        mp_stats_get(&c);
        CHECK_MSG(c.in_use + n <= b.in_use, "%zu-byte block freed: in_use %zu -> %zu", n,
                  b.in_use, c.in_use);
        CHECK_EQ(c.large_in_use, a.large_in_use);
        stats_invariants(&c);
    }
}

/* Small objects: refills from the central lists when a thread allocates a
 * lot, flushes when it frees a lot or calls mp_thread_flush. */
TEST(stats_refills_and_flushes)
{
    enum { N = 100000 }; /* 4.8 MB: more than a thread cache keeps */
    static void *p[N];
    mp_stats_t a, b, c, d;
    mp_stats_get(&a);
    for (int i = 0; i < N; i++) {
        p[i] = mp_malloc(48);
        REQUIRE(p[i] != NULL);
    }
    mp_stats_get(&b);
    CHECK_GT(b.central_refills, a.central_refills);
    CHECK_GE(b.in_use, a.in_use + (size_t)N * 48);
    for (int i = 0; i < N; i++)
        mp_free(p[i]);
    mp_stats_get(&c);
    CHECK_GT(c.central_flushes, b.central_flushes);
    mp_thread_flush();
    mp_stats_get(&d);
    /* the thread cache went back to the central lists: in_use (which
     * counts blocks in thread caches) is back near where it started */
    CHECK_MSG(d.in_use <= a.in_use + 256 * KiB, "in_use %zu before, %zu after free+flush",
              a.in_use, d.in_use);
    CHECK_LE(d.in_use, c.in_use);
}

/* mp_thread_flush empties this thread's cache: in_use drops. */
TEST(thread_flush_returns_cache)
{
    mp_thread_flush();
    mp_stats_t a, b, c;
    mp_stats_get(&a);
    void *p[200];
    for (int i = 0; i < 200; i++) {
        p[i] = mp_malloc(256);
        REQUIRE(p[i] != NULL);
    }
    for (int i = 0; i < 200; i++)
        mp_free(p[i]);
    mp_stats_get(&b);
    mp_thread_flush();
    mp_stats_get(&c);
    CHECK_LE(c.in_use, b.in_use);
    CHECK_MSG(c.in_use <= a.in_use, "in_use %zu before, %zu after alloc/free/flush", a.in_use,
              c.in_use);
    /* and the thread keeps working */
    void *q = mp_malloc(256);
    CHECK(q != NULL);
    mp_free(q);
}

/* After freeing a lot of memory, mp_trim gives whole free pages back:
 * `released` grows by what it returns, committed and free_dirty drop. */
TEST(trim_releases_memory)
{
    enum { NSMALL = 60000, NLARGE = 24 };
    static void *small[NSMALL];
    void *large[NLARGE];
    mp_trim();
    mp_stats_t a, b, c;
    mp_stats_get(&a);
    for (int i = 0; i < NSMALL; i++) {
        small[i] = mp_malloc(1000);
        REQUIRE(small[i] != NULL);
        memset(small[i], 1, 1000);
    }
    for (int i = 0; i < NLARGE; i++) {
        large[i] = mp_malloc(MiB + (size_t)i * 8192);
        REQUIRE(large[i] != NULL);
        memset(large[i], 2, MiB);
    }
    for (int i = 0; i < NSMALL; i++)
        mp_free(small[i]);
    for (int i = 0; i < NLARGE; i++)
        mp_free(large[i]);
    mp_stats_get(&b);
    size_t got = mp_trim();
    mp_stats_get(&c);
    /* ~84 MiB were freed, nearly all of it whole free pages.  Some may have
     * gone back to the OS already (decay) before mp_trim; after mp_trim, all
     * of it must have. */
    CHECK_MSG(c.released >= a.released + 32 * MiB,
              "released %zu -> %zu after freeing ~84 MiB and mp_trim", a.released, c.released);
    CHECK_MSG(c.released >= b.released + got, "released %zu -> %zu, mp_trim said %zu",
              b.released, c.released, got);
    CHECK_MSG(c.committed + got <= b.committed + 64 * KiB,
              "committed %zu -> %zu after releasing %zu", b.committed, c.committed, got);
    CHECK_MSG(c.committed <= a.committed + 8 * MiB,
              "committed %zu before, %zu after freeing everything and mp_trim", a.committed,
              c.committed);
    CHECK_MSG(c.free_dirty <= 4 * MiB, "free_dirty %zu after mp_trim", c.free_dirty);
    CHECK_MSG(c.in_use <= a.in_use + 1 * MiB, "in_use %zu before, %zu after", a.in_use,
              c.in_use);
    stats_invariants(&c);
    /* a second trim has (almost) nothing left to give */
    size_t again = mp_trim();
    CHECK_MSG(again <= 4 * MiB, "second mp_trim() returned %zu", again);
    /* released memory is usable again and reads as written */
    unsigned char *p = mp_malloc(8 * MiB);
    REQUIRE(p != NULL);
    harness_fill(p, 8 * MiB, 3);
    CHECK_PATTERN(p, 8 * MiB, 3);
    mp_free(p);
}

/* Live blocks survive a trim. */
TEST(trim_keeps_live_blocks)
{
    enum { N = 3000 };
    static unsigned char *p[N];
    static size_t n[N];
    for (int i = 0; i < N; i++) {
        n[i] = (size_t)(i * 97) % 20000 + (i % 100 == 0 ? MiB : 0);
        p[i] = mp_malloc(n[i]);
        REQUIRE(p[i] != NULL);
        harness_fill(p[i], n[i], (uint64_t)i);
    }
    for (int i = 0; i < N; i += 2)
        mp_free(p[i]);
    mp_trim();
    for (int i = 1; i < N; i += 2) {
        CHECK_PATTERN(p[i], n[i], (uint64_t)i);
        mp_free(p[i]);
    }
}

/* mp_stats_print writes a non-empty report (that it allocates nothing is
 * stats_allocate_nothing's test) and changes no count. */
TEST(stats_print_writes)
{
    int fd = memfd_create("mp_stats_print", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    void *keep = mp_malloc(700);
    mp_stats_t a, b;
    mp_stats_get(&a);
    mp_stats_print(fd);
    mp_stats_get(&b);
    CHECK_EQ(a.in_use, b.in_use);
    CHECK_EQ(a.central_refills, b.central_refills);
    CHECK_EQ(a.os_maps, b.os_maps);
    static char buf[1 << 20];
    ssize_t total = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    REQUIRE(total >= 0);
    buf[total] = 0;
    CHECK_MSG(total > 40, "mp_stats_print wrote %zd bytes", total);
    int digits = 0;
    for (ssize_t i = 0; i < total; i++)
        digits += buf[i] >= '0' && buf[i] <= '9';
    CHECK_MSG(digits > 5, "mp_stats_print output has no numbers: %.200s", buf);
    mp_free(keep);
}

/* A thread's first allocation creates its thread cache, which mp_stats_get
 * counts: so a fresh thread that calls mp_stats_get, mp_stats_print and
 * mp_stats_get again sees the count unchanged iff it allocated nothing in
 * between, a malloc+free pair included (which no counter would show). */
static int probe_fd;
static bool probe_allocates;

static void *probe_thread(void *arg)
{
    mp_stats_t a, b;
    mp_stats_get(&a);
    if (probe_allocates)
        mp_free(mp_malloc(16));
    else
        mp_stats_print(probe_fd);
    mp_stats_get(&b);
    *(long *)arg = (long)b.thread_caches - (long)a.thread_caches;
    return NULL;
}

static long caches_made_by_probe(bool allocate)
{
    long made = -1;
    pthread_t t;
    probe_allocates = allocate;
    if (pthread_create(&t, NULL, probe_thread, &made) != 0) return -1;
    pthread_join(t, NULL);
    return made;
}

TEST(stats_allocate_nothing)
{
    probe_fd = memfd_create("mp_stats_print", MFD_CLOEXEC);
    REQUIRE(probe_fd >= 0);
    void *keep = mp_malloc(300);          /* something to print */
    CHECK_EQ(caches_made_by_probe(true), 1);    /* the probe sees an allocation */
    CHECK_EQ(caches_made_by_probe(false), 0);
    close(probe_fd);
    mp_free(keep);
}

/* mp_set_memory_source after the first allocation: refused, and never used. */
static int late_calls;

static void *late_alloc(size_t size, size_t align, void *arg)
{
    __atomic_add_fetch(&late_calls, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void late_free(void *p, size_t size, void *arg)
{
    __atomic_add_fetch(&late_calls, 1, __ATOMIC_SEQ_CST);
}

static bool late_decommit(void *p, size_t size, void *arg)
{
    __atomic_add_fetch(&late_calls, 1, __ATOMIC_SEQ_CST);
    return false;
}

TEST(memory_source_too_late)
{
    mp_free(mp_malloc(10));
    mp_memory_source_t src = { late_alloc, late_free, late_decommit, NULL };
    CHECK(mp_set_memory_source(&src) == false);
    /* mempool goes on with its own source */
    void *p[64];
    for (int i = 0; i < 64; i++) {
        p[i] = mp_malloc(MiB);
        CHECK(p[i] != NULL);
    }
    for (int i = 0; i < 64; i++)
        mp_free(p[i]);
    mp_trim();
    CHECK_EQ(__atomic_load_n(&late_calls, __ATOMIC_SEQ_CST), 0);
}

#endif /* !MP_TEST_PLAIN */

/* Any build: after freeing a lot, RSS comes back down (with mp_trim where
 * mempool is the allocator, malloc_trim on glibc). */
TEST(rss_returns_after_free)
{
    if (API_SANITIZED)
        return;
    enum { N = 100 };
    void *p[N];
    size_t rss0 = harness_rss_bytes();
    for (int i = 0; i < N; i++) {
        p[i] = A->malloc_fn(MiB);
        REQUIRE(p[i] != NULL);
        memset(p[i], 7, MiB);
    }
    size_t rss1 = harness_rss_bytes();
    for (int i = 0; i < N; i++)
        A->free_fn(p[i]);
#ifndef MP_TEST_PLAIN
    mp_trim();
#else
    if (!malloc_is_mempool())
        malloc_trim(0);
    else {
        size_t (*trim)(void) = (size_t (*)(void))dlsym(RTLD_DEFAULT, "mp_trim");
        REQUIRE(trim != NULL);
        trim();
    }
#endif
    size_t rss2 = harness_rss_bytes();
    REQUIRE(rss0 && rss1 && rss2);
    CHECK_MSG(rss1 >= rss0 + 90 * MiB, "RSS %zu -> %zu after touching 100 MiB", rss0, rss1);
    CHECK_MSG(rss2 <= rss0 + 16 * MiB, "RSS %zu -> %zu -> %zu after freeing and trimming", rss0,
              rss1, rss2);
}

int main(void)
{
    api_init();
#ifndef MP_TEST_PLAIN
    RUN(stats_invariants_hold);
    RUN(stats_get_is_quiet);
    RUN(stats_follow_large_block);
    RUN(stats_refills_and_flushes);
    RUN(thread_flush_returns_cache);
    RUN(trim_releases_memory);
    RUN(trim_keeps_live_blocks);
    RUN(stats_print_writes);
    RUN(stats_allocate_nothing);
    RUN(memory_source_too_late);
    A = &api_mp;
    RUN_AS("rss_returns_after_free/mp", rss_returns_after_free);
    A = &api_libc;
#else
    harness_skip("mp_stats/mp_trim/mp_thread_flush tests", "mp_ functions not linked");
    RUN_AS("rss_returns_after_free/malloc", rss_returns_after_free);
#endif
    return harness_summary();
}
