/* api_memsrc.c - a custom memory source installed before the first
 * allocation: mempool takes all its memory from it, with the documented
 * sizes and alignments, counts its calls in os_maps, fails cleanly (NULL and
 * ENOMEM) when it runs dry, and does not assume that memory whose decommit
 * failed reads as zero.
 *
 * main() installs the source before anything can allocate (even stdio's
 * buffers go through mempool in the static build). */
#define _GNU_SOURCE
#include "api_common.h"

#ifndef MP_TEST_PLAIN

#define MAXREG 4096

static struct {
    uintptr_t base[MAXREG];
    size_t size[MAXREG];
    int nreg;
    size_t limit;         /* refuse allocs beyond this many bytes in total */
    size_t bytes;         /* bytes currently handed out */
    size_t max_request;   /* the largest size asked for */
    uint64_t allocs, frees, decommits, failed;
    int bad_args;         /* calls with sizes/alignments breaking the contract */
    int bad_ranges;       /* free/decommit of ranges the source never gave */
    bool decommit_refuses;
    bool guard;           /* keep a PROT_NONE page after each new region */
    size_t gap[MAXREG];   /* bytes mapped after each region (its guard) */
    pthread_mutex_t mu;
} src = { .limit = SIZE_MAX, .mu = PTHREAD_MUTEX_INITIALIZER };

static size_t page_size;
static bool installed;

static int find_region(uintptr_t p, size_t n)
{
    for (int i = 0; i < src.nreg; i++)
        if (p >= src.base[i] && p + n <= src.base[i] + src.size[i] && p + n >= p)
            return i;
    return -1;
}

/* [p, p+n) lies within regions from alloc, maybe several back to back
 * (mempool joins adjacent regions, as mempool.h says). */
static bool within_regions(uintptr_t p, size_t n)
{
    if (p + n < p)
        return false;
    while (n > 0) {
        int i = -1;
        for (int j = 0; j < src.nreg && i < 0; j++)
            if (p >= src.base[j] && p < src.base[j] + src.size[j])
                i = j;
        if (i < 0)
            return false;
        size_t in = src.base[i] + src.size[i] - p;
        if (in >= n)
            return true;
        p += in;
        n -= in;
    }
    return true;
}

static void *src_alloc(size_t size, size_t align, void *arg)
{
    pthread_mutex_lock(&src.mu);
    src.allocs++;
    if (arg != &src || size == 0 || size % page_size || align == 0 || align % page_size ||
        (align & (align - 1)))
        src.bad_args++;
    void *ret = NULL;
    if (size > src.max_request)
        src.max_request = size;
    if (src.bytes + size > src.limit || src.nreg == MAXREG || size > ((size_t)1 << 46) ||
        align > ((size_t)1 << 40)) {
        src.failed++;
        goto out;
    }
    size_t gap = src.guard ? page_size : 0;
    size_t span = size + align + gap;
    unsigned char *m = mmap(NULL, span, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        src.failed++;
        goto out;
    }
    uintptr_t a = ((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1);
    if (a > (uintptr_t)m)
        munmap(m, a - (uintptr_t)m);
    if ((uintptr_t)m + span > a + size + gap)
        munmap((void *)(a + size + gap), (uintptr_t)m + span - (a + size + gap));
    if (gap)
        mprotect((void *)(a + size), gap, PROT_NONE);   /* no region may follow */
    src.base[src.nreg] = a;
    src.size[src.nreg] = size;
    src.gap[src.nreg] = gap;
    src.nreg++;
    src.bytes += size;
    ret = (void *)a;
out:
    pthread_mutex_unlock(&src.mu);
    return ret;
}

static void src_free(void *p, size_t size, void *arg)
{
    pthread_mutex_lock(&src.mu);
    src.frees++;
    int i = find_region((uintptr_t)p, size);
    if (i < 0 || src.base[i] != (uintptr_t)p || src.size[i] != size || arg != &src) {
        src.bad_ranges++;
    } else {
        munmap(p, size + src.gap[i]);
        src.bytes -= size;
        src.nreg--;
        src.base[i] = src.base[src.nreg];
        src.size[i] = src.size[src.nreg];
        src.gap[i] = src.gap[src.nreg];
    }
    pthread_mutex_unlock(&src.mu);
}

static bool src_decommit(void *p, size_t size, void *arg)
{
    pthread_mutex_lock(&src.mu);
    src.decommits++;
    bool ok = !src.decommit_refuses;
    if (!within_regions((uintptr_t)p, size) || (uintptr_t)p % page_size || size % page_size ||
        arg != &src)
        src.bad_ranges++;
    else if (ok)
        madvise(p, size, MADV_DONTNEED);
    pthread_mutex_unlock(&src.mu);
    return ok;
}

static void check_source_contract(void)
{
    pthread_mutex_lock(&src.mu);
    int bad_args = src.bad_args, bad_ranges = src.bad_ranges;
    pthread_mutex_unlock(&src.mu);
    CHECK_MSG(bad_args == 0, "%d alloc calls with bad size/alignment", bad_args);
    CHECK_MSG(bad_ranges == 0, "%d free/decommit calls on ranges not from alloc", bad_ranges);
}

TEST(install_before_first_allocation)
{
    CHECK(installed);
}

TEST(memory_comes_from_source)
{
    REQUIRE(installed);
    void *p[8];
    static const size_t n[8] = { 1, 100, 4000, 40000, 300 * KiB, 2 * MiB, 16 * MiB, 65 * MiB };
    for (int i = 0; i < 8; i++) {
        p[i] = mp_malloc(n[i]);
        REQUIRE(p[i] != NULL);
        memset(p[i], 0x3c, n[i]);
        pthread_mutex_lock(&src.mu);
        int r = find_region((uintptr_t)p[i], n[i]);
        pthread_mutex_unlock(&src.mu);
        CHECK_MSG(r >= 0, "block %p (%zu bytes) is not inside memory from the source", p[i],
                  n[i]);
    }
    /* aligned blocks too */
    void *q = mp_aligned_alloc(4 * MiB, 5 * MiB);
    REQUIRE(q != NULL);
    CHECK_ALIGNED(q, 4 * MiB);
    pthread_mutex_lock(&src.mu);
    int r = find_region((uintptr_t)q, 5 * MiB);
    pthread_mutex_unlock(&src.mu);
    CHECK(r >= 0);
    mp_stats_t st;
    mp_stats_get(&st);
    pthread_mutex_lock(&src.mu);
    uint64_t allocs = src.allocs;
    size_t bytes = src.bytes;
    pthread_mutex_unlock(&src.mu);
    CHECK_MSG(st.os_maps == allocs, "os_maps %ju, source saw %ju allocs", (uintmax_t)st.os_maps,
              (uintmax_t)allocs);
    CHECK_MSG(st.mapped == bytes, "mapped %zu, source handed out %zu bytes", st.mapped, bytes);
    for (int i = 0; i < 8; i++)
        mp_free(p[i]);
    mp_free(q);
    check_source_contract();
}

TEST(second_install_refused)
{
    mp_memory_source_t again = { src_alloc, src_free, src_decommit, &src };
    CHECK(mp_set_memory_source(&again) == false);
}

/* When the source runs dry: NULL with ENOMEM, and recovery afterwards.
 * The limit leaves room for at least two of the largest requests seen so
 * far, so that an allocator reserving big regions at a time still fits. */
TEST(source_exhaustion)
{
    REQUIRE(installed);
    pthread_mutex_lock(&src.mu);
    size_t room = 2 * src.max_request > 48 * MiB ? 2 * src.max_request : 48 * MiB;
    /* mempool may still hold free memory from the source: everything it
     * can use from now on is what it holds plus the room */
    size_t usable = src.bytes + room;
    src.limit = src.bytes + room;
    pthread_mutex_unlock(&src.mu);
    size_t maxbig = usable / MiB + 64;

    /* large blocks until refused (the array comes from mmap, not mempool) */
    void **big = mmap(NULL, maxbig * sizeof(void *), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(big != MAP_FAILED);
    size_t nbig = 0;
    errno = 0;
    while (nbig < maxbig) {
        big[nbig] = mp_malloc(MiB);
        if (!big[nbig])
            break;
        memset(big[nbig], 1, 4096);
        nbig++;
    }
    CHECK_MSG(nbig < maxbig, "a source limited to %zu MiB gave %zu blocks of 1 MiB",
              usable / MiB, nbig);
    CHECK_EQ(errno, ENOMEM);
    for (size_t i = 0; i < nbig; i++)
        mp_free(big[i]);

    /* small blocks until refused: a list threaded through the blocks */
    void *head = NULL;
    size_t count = 0, maxcount = usable / 1000 + 1024 * 1024;
    errno = 0;
    for (;;) {
        void **b = mp_malloc(1000);
        if (!b)
            break;
        *b = head;
        head = b;
        if (++count > maxcount)
            break;
    }
    CHECK_MSG(count <= maxcount, "a source limited to %zu MiB gave %zu blocks of 1000 bytes",
              usable / MiB, count);
    CHECK_EQ(errno, ENOMEM);
    /* calloc and aligned_alloc fail cleanly too */
    errno = 0;
    void *c = mp_calloc(1, room);
    CHECK(c == NULL);
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    void *a = mp_aligned_alloc(MiB, room);
    CHECK(a == NULL);
    CHECK_EQ(errno, ENOMEM);
    mp_free(c);
    mp_free(a);
    while (head) {
        void *next = *(void **)head;
        mp_free(head);
        head = next;
    }

    /* memory freed before is reused: this works within the limit */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20; i++) {
            big[i] = mp_malloc(MiB);
            CHECK_MSG(big[i] != NULL, "round %d: 1 MiB block %d refused after frees", round, i);
            if (big[i])
                memset(big[i], 2, MiB);
        }
        for (int i = 0; i < 20; i++)
            mp_free(big[i]);
    }
    munmap(big, maxbig * sizeof(void *));
    pthread_mutex_lock(&src.mu);
    src.limit = SIZE_MAX;
    pthread_mutex_unlock(&src.mu);
    void *p = mp_malloc(64 * MiB);
    CHECK(p != NULL);
    mp_free(p);
    check_source_contract();
}

/* A block that grows by 1 MiB a step, the one before freed.  With a custom
 * source the heap cannot grow in place (here no region ever follows another
 * one), so each bigger block needs a region of its own, and those left
 * behind stayed for good: the 100 steps ask for 5 GB in all while at most
 * 200 MB is in use, and a 1.5 GiB budget ran out at step 85.  Now the
 * regions that lie in clean free space go back through the free callback. */
TEST(regions_go_back)
{
    REQUIRE(installed);
    pthread_mutex_lock(&src.mu);
    src.guard = true;
    src.limit = src.bytes + 1536 * MiB;
    uint64_t f0 = src.frees;
    pthread_mutex_unlock(&src.mu);
    void *blk = NULL;
    int step;
    for (step = 0; step < 100; step++) {
        void *nb = mp_malloc((size_t)(step + 1) * MiB);
        if (nb == NULL)
            break;
        memset(nb, 3, 4096);
        mp_free(blk);
        blk = nb;
    }
    CHECK_MSG(step == 100, "the 1.5 GiB budget ran out at step %d", step);
    mp_free(blk);
    pthread_mutex_lock(&src.mu);
    src.guard = false;
    src.limit = SIZE_MAX;
    uint64_t f1 = src.frees;
    pthread_mutex_unlock(&src.mu);
    CHECK_GT(f1, f0);
    check_source_contract();
}

/* mp_trim gives memory back through decommit (or free). */
TEST(trim_uses_source)
{
    REQUIRE(installed);
    void *p[40];
    for (int i = 0; i < 40; i++) {
        p[i] = mp_malloc(MiB);
        REQUIRE(p[i] != NULL);
        memset(p[i], 9, MiB);
    }
    for (int i = 0; i < 40; i++)
        mp_free(p[i]);
    pthread_mutex_lock(&src.mu);
    uint64_t d0 = src.decommits, f0 = src.frees;
    pthread_mutex_unlock(&src.mu);
    size_t got = mp_trim();
    pthread_mutex_lock(&src.mu);
    uint64_t d1 = src.decommits, f1 = src.frees;
    pthread_mutex_unlock(&src.mu);
    CHECK_MSG(got == 0 || d1 > d0 || f1 > f0, "mp_trim released %zu bytes without the source",
              got);
    check_source_contract();
}

/* When decommit says it did not happen, the memory keeps its old contents:
 * calloc must still return zeros, and the range is still usable. */
TEST(refused_decommit_is_respected)
{
    REQUIRE(installed);
    pthread_mutex_lock(&src.mu);
    src.decommit_refuses = true;
    pthread_mutex_unlock(&src.mu);
    static const size_t sizes[] = { 64, 4000, 40000, 300 * KiB, 3 * MiB };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        enum { N = 32 };
        void *p[N];
        size_t n = sizes[s];
        int cnt = n >= MiB ? 8 : N;
        for (int i = 0; i < cnt; i++) {
            p[i] = mp_malloc(n);
            REQUIRE(p[i] != NULL);
            memset(p[i], 0xdd, n);
        }
        for (int i = 0; i < cnt; i++)
            mp_free(p[i]);
        mp_trim();
        for (int i = 0; i < cnt; i++) {
            p[i] = mp_calloc(1, n);
            REQUIRE(p[i] != NULL);
            CHECK_ZERO(p[i], n);
        }
        for (int i = 0; i < cnt; i++)
            mp_free(p[i]);
    }
    pthread_mutex_lock(&src.mu);
    src.decommit_refuses = false;
    pthread_mutex_unlock(&src.mu);
    check_source_contract();
}

/* The source is shared by all threads. */
static void *memsrc_worker(void *v)
{
    uint64_t rng = (uintptr_t)v + 1;
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(harness_rand(&rng) % 20000);
        if ((i & 255) == 0)
            n += MiB;
        void *p = mp_malloc(n);
        CHECK(p != NULL);
        if (!p)
            break;
        memset(p, 1, n < 64 ? n : 64);
        mp_free(p);
    }
    return NULL;
}

TEST(threads_share_source)
{
    REQUIRE(installed);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        REQUIRE(pthread_create(&t[i], NULL, memsrc_worker, (void *)(uintptr_t)i) == 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    mp_stats_t st;
    mp_stats_get(&st);
    pthread_mutex_lock(&src.mu);
    uint64_t allocs = src.allocs, failed = src.failed;
    pthread_mutex_unlock(&src.mu);
    /* the refused calls of source_exhaustion may or may not count */
    CHECK_MSG(st.os_maps == allocs || st.os_maps == allocs - failed,
              "os_maps %ju; the source saw %ju calls, %ju of them refused",
              (uintmax_t)st.os_maps, (uintmax_t)allocs, (uintmax_t)failed);
    check_source_contract();
}

#endif /* !MP_TEST_PLAIN */

int main(void)
{
#ifndef MP_TEST_PLAIN
    /* nothing may allocate before this */
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    mp_memory_source_t s = { src_alloc, src_free, src_decommit, &src };
    installed = mp_set_memory_source(&s);
#endif
    api_init();
#ifdef MP_TEST_PLAIN
    harness_skip("memory source tests", "mp_set_memory_source not linked in the plain build");
#else
    RUN(install_before_first_allocation);
    RUN(memory_comes_from_source);
    RUN(second_install_refused);
    RUN(source_exhaustion);
    RUN(trim_uses_source);
    RUN(regions_go_back);
    RUN(refused_decommit_is_respected);
    RUN(threads_share_source);
#endif
    return harness_summary();
}
