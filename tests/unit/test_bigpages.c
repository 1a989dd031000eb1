/* test_bigpages.c - mempool on OS pages bigger than its own 8 KiB ones
 * (16 KiB and 64 KiB: arm64 and ppc64 kernels), simulated on this machine.
 *
 * The library reads the OS page size from getauxval(AT_PAGESZ) (os.c); this
 * program answers it with MP_TEST_PAGESZ, and makes mmap(NULL, ...) return
 * addresses aligned to that size, as such a kernel does.  madvise and
 * mincore still work in the real 4 KiB pages, which is what lets the test
 * see what a release left resident.  Run without MP_TEST_PAGESZ, the
 * program runs itself once per simulated size.
 *
 * In the sanitizer builds the overrides would lie to the sanitizer's own
 * runtime too, so there the test only reports itself skipped. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "internal.h"
#include "mempool.h"

#ifndef MP_SANITIZE
static unsigned long sim_page(void) {
    static unsigned long ps;
    if (ps == 0) {
        const char *e = getenv("MP_TEST_PAGESZ");
        ps = e ? strtoul(e, NULL, 10) : 4096;
    }
    return ps;
}

unsigned long getauxval(unsigned long type) {
    return type == AT_PAGESZ ? sim_page() : 0;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    size_t ps = sim_page();
    if (addr == NULL && fd == -1 && ps > 4096) {
        long r = syscall(SYS_mmap, NULL, len + ps, prot, flags, fd, off);
        if (r < 0 && r > -4096) { errno = (int)-r; return MAP_FAILED; }
        uintptr_t p = (uintptr_t)r, a = (p + ps - 1) & ~(uintptr_t)(ps - 1);
        if (a > p) munmap((void *)p, a - p);
        if (a + len < p + len + ps) munmap((void *)(a + len), p + len + ps - (a + len));
        return (void *)a;
    }
    long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    if (r < 0 && r > -4096) { errno = (int)-r; return MAP_FAILED; }
    return (void *)r;
}
#endif

/* Bytes of [p, p+n) resident, in real 4 KiB pages. */
static size_t resident(const void *p, size_t n) {
    static unsigned char v[1 << 16];
    size_t pages = n / 4096, r = 0;
    if (pages > sizeof v || mincore((void *)p, n, v) != 0) return (size_t)-1;
    for (size_t i = 0; i < pages; i++) r += v[i] & 1;
    return r * 4096;
}

TEST(page_size_is_the_simulated_one) {
    mp_ensure_init();
    CHECK_EQ(_mp_os_page, getauxval(AT_PAGESZ));
}

/* A freed block that starts and ends inside OS pages shared with blocks in
 * use: a release can hand back only the whole OS pages inside it, and what
 * stays resident must stay counted as free dirty memory (a release once
 * counted all of it as returned: free_dirty 0 with 4.4 MB still resident). */
TEST(release_counts_what_stays_resident) {
    char *a = mp_malloc(300 * 1024);
    char *b = mp_malloc(600 * 1024);
    char *c = mp_malloc(300 * 1024);
    REQUIRE(a && b && c);
    size_t bl = 75 * MP_PAGE_SIZE;                       /* b's pages */
    memset(b, 1, bl);
    mp_free(b);
    mp_stats_t s0, s1;
    mp_stats_get(&s0);
    size_t rel = mp_trim();
    mp_stats_get(&s1);
    size_t left = resident(b, bl);
    REQUIRE(left != (size_t)-1);
    CHECK_MSG(s1.free_dirty >= left, "%zu bytes of the freed block resident, %zu counted free dirty",
              left, s1.free_dirty);
    CHECK_EQ(s1.released - s0.released, rel);
    CHECK_EQ(s0.free_dirty - s1.free_dirty, rel);
    CHECK_EQ(s0.committed - s1.committed, rel);
    if (_mp_os_page <= MP_PAGE_SIZE) CHECK_EQ(left, 0);
    CHECK_EQ(mp_trim(), 0);                              /* nothing more to give */
    CHECK_EQ(_mp_pageheap_check(), 0);
    mp_free(a);
    mp_free(c);
}

/* Small, large, aligned, calloc and realloc blocks over threads, with trims:
 * contents, zeroes, alignment, and the page heap's invariants. */
static _Atomic long errors;

static void *churn(void *arg) {
    uint64_t seed = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    enum { SLOTS = 128 };
    unsigned char *p[SLOTS] = { 0 };
    size_t n[SLOTS] = { 0 };
    unsigned char tag[SLOTS] = { 0 };
    for (int it = 0; it < 4000; it++) {
        int i = (int)(harness_rand(&seed) % SLOTS);
        if (p[i]) {
            for (size_t k = 0; k < n[i]; k += 997)
                if (p[i][k] != tag[i]) { errors++; break; }
            if (p[i][n[i] - 1] != tag[i]) errors++;
            if (harness_rand(&seed) % 4 == 0) {
                size_t nn = 1 + harness_rand(&seed) % (3u << 20);
                unsigned char *q = mp_realloc(p[i], nn);
                if (q == NULL) { errors++; continue; }
                if (nn > n[i]) memset(q + n[i], tag[i], nn - n[i]);
                p[i] = q;
                n[i] = nn;
            } else {
                mp_free(p[i]);
                p[i] = NULL;
            }
            continue;
        }
        int kind = (int)(harness_rand(&seed) % 4);
        size_t sz = 1 + harness_rand(&seed) % (kind == 0 ? 4096 : kind == 1 ? 256u << 10 : 4u << 20);
        if (kind == 3) {
            size_t al = (size_t)1 << (4 + harness_rand(&seed) % 20);
            p[i] = mp_aligned_alloc(al, sz);
            if (p[i] && ((uintptr_t)p[i] & (al - 1))) errors++;
        } else if (harness_rand(&seed) % 3 == 0) {
            p[i] = mp_calloc(1, sz);
            if (p[i])
                for (size_t k = 0; k < sz; k += 61)
                    if (p[i][k]) { errors++; break; }
        } else {
            p[i] = mp_malloc(sz);
        }
        if (p[i] == NULL) { errors++; continue; }
        n[i] = sz;
        tag[i] = (unsigned char)(1 + harness_rand(&seed) % 255);
        memset(p[i], tag[i], sz);
        if (harness_rand(&seed) % 1000 == 0) mp_trim();
    }
    for (int i = 0; i < SLOTS; i++) mp_free(p[i]);
    return NULL;
}

TEST(threads_churn) {
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++) REQUIRE(pthread_create(&t[i], NULL, churn, (void *)(i + 1)) == 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    CHECK_EQ(errors, 0);
    mp_trim();
    CHECK_EQ(_mp_pageheap_check(), 0);
    mp_stats_t st;
    mp_stats_get(&st);
    CHECK_EQ(st.large_in_use, 0);
}

int main(void) {
#ifdef MP_SANITIZE
    harness_skip("bigpages", "simulated page sizes would mislead the sanitizer's runtime");
    return harness_summary();
#else
    if (getenv("MP_TEST_PAGESZ") == NULL) {
        /* One run per simulated size, each reporting its own tests. */
        static const char *const sizes[] = { "16384", "65536" };
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0) return 1;
            if (pid == 0) {
                setenv("MP_TEST_PAGESZ", sizes[k], 1);
                char *argv[] = { (char *)"test_bigpages", NULL };
                execv("/proc/self/exe", argv);
                _exit(127);
            }
            int st = 0;
            waitpid(pid, &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) harness_failed++;
            else harness_passed++;
            printf("%s - OS pages of %s bytes\n", WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ok" : "FAIL",
                   sizes[k]);
        }
        return harness_summary();
    }
    RUN(page_size_is_the_simulated_one);
    RUN(release_counts_what_stays_resident);
    RUN(threads_churn);
    return harness_summary();
#endif
}
