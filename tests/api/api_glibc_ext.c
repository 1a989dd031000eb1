/* api_glibc_ext.c - the rest of glibc's malloc family, which a replacement
 * malloc must also provide (glibc manual, "Replacing malloc"): memalign,
 * valloc, pvalloc, malloc_usable_size; and functions inside libc that
 * allocate with malloc (strdup, asprintf, getline, reallocarray...), whose
 * results the program frees.
 *
 * A missing replacement typically crashes (a block from glibc handed to
 * mempool's free), so every test runs in a child process: a crash fails that
 * test only. */
#define _GNU_SOURCE
#include "api_common.h"

#include <signal.h>
#include <sys/wait.h>

/* Run fn in a child; its checks print there, its exit status tells. */
static void in_child(void (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        fn();
        fflush(stdout);
        _exit(TEST_FAILED() ? 1 : 0);
    }
    REQUIRE(pid > 0);
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    if (WIFSIGNALED(st))
        CHECK_MSG(0, "child died of signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        CHECK_MSG(WEXITSTATUS(st) == 0, "child's checks failed (exit %d)", WEXITSTATUS(st));
}

static void do_memalign(void)
{
    for (size_t align = 1; align <= 16 * MiB; align *= 2) {
        for (size_t n = 1; n <= 2 * align + 100; n = n * 5 + 3) {
            unsigned char *p = memalign(launder_size(align), launder_size(n));
            CHECK(p != NULL);
            if (!p)
                return;
            CHECK_ALIGNED(p, align);
            memset(p, 0x61, n);
            free(p);
        }
    }
    /* Impossible alignments, as glibc answers them: one that is not a power
     * of two is rounded up, so below 2^63 it fails for want of memory;
     * above, there is nothing to round to. */
    static const struct { size_t align; int err; } bad[] = {
        { ((size_t)1 << 62) + 1, ENOMEM }, { SIZE_MAX / 2, ENOMEM },
        { SIZE_MAX / 2 + 2, EINVAL }, { SIZE_MAX, EINVAL },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] && !API_SANITIZED; i++) {
        /* (the sanitizers' memalign answers these its own way) */
        errno = 0;
        void *q = memalign(launder_size(bad[i].align), launder_size(1));
        CHECK_MSG(q == NULL && errno == bad[i].err, "memalign(%#zx, 1) = %p, errno %d (want %d)",
                  bad[i].align, q, errno, bad[i].err);
    }
    /* realloc of a memalign block */
    unsigned char *p = memalign(4096, 100);
    CHECK(p != NULL);
    if (!p)
        return;
    memset(p, 0x44, 100);
    p = realloc(p, 100000);
    CHECK(p != NULL);
    if (p)
        CHECK_EQ(p[99], 0x44);
    free(p);
}

static void do_valloc(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t n = 1; n <= 8 * MiB; n = n * 3 + 1) {
        unsigned char *p = valloc(launder_size(n));
        CHECK(p != NULL);
        if (!p)
            return;
        CHECK_ALIGNED(p, page);
        memset(p, 0x62, n);
        free(p);
    }
}

static void do_pvalloc(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t n = 1; n <= 8 * MiB; n = n * 3 + 1) {
        unsigned char *p = pvalloc(launder_size(n));
        CHECK(p != NULL);
        if (!p)
            return;
        CHECK_ALIGNED(p, page);
        /* pvalloc rounds the size up to whole pages: all of it is usable */
        size_t rounded = (n + page - 1) / page * page;
        memset(p, 0x63, rounded);
        free(p);
    }
}

static void do_malloc_usable_size(void)
{
    CHECK_EQ(malloc_usable_size(NULL), 0);
    for (size_t n = 1; n <= 8 * MiB; n = n * 2 + 1) {
        unsigned char *p = malloc(launder_size(n));
        CHECK(p != NULL);
        if (!p)
            return;
        size_t u = malloc_usable_size(p);
        CHECK_GE(u, n);
        memset(p, 0x64, u);
#ifndef MP_TEST_PLAIN
        if (malloc_is_mempool())
            CHECK_EQ(u, mp_usable_size(p));
#endif
        free(p);
    }
}

static void do_libc_internal_allocations(void)
{
    char *s = strdup("mempool strdup");
    CHECK(s != NULL && strcmp(s, "mempool strdup") == 0);
    free(s);
    s = strndup("abcdefgh", 3);
    CHECK(s != NULL && strcmp(s, "abc") == 0);
    free(s);
    char *a = NULL;
    CHECK(asprintf(&a, "%d-%s", 42, "x") == 4);
    CHECK(a != NULL && strcmp(a, "42-x") == 0);
    free(a);

    /* getline grows its buffer with realloc */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f) {
        for (int i = 0; i < 3000; i++)
            fputc('a' + i % 26, f);
        fputc('\n', f);
        rewind(f);
        char *line = NULL;
        size_t cap = 0;
        CHECK(getline(&line, &cap, f) == 3001);
        CHECK(line != NULL && line[2999] == 'a' + 2999 % 26);
        free(line);
        fclose(f);
    }

    int *v = reallocarray(NULL, 1000, sizeof(int));
    CHECK(v != NULL);
    if (v) {
        for (int i = 0; i < 1000; i++)
            v[i] = i;
        int *w = reallocarray(v, 100000, sizeof(int));
        CHECK(w != NULL);
        if (w) {
            CHECK_EQ(w[999], 999);
            v = w;
        }
        errno = 0;
        w = reallocarray(launder_ptr(v), launder_size(SIZE_MAX / 2), 4);
        CHECK(w == NULL);
        CHECK_EQ(errno, ENOMEM);
        free(launder_ptr(v));
    }

    /* open_memstream and qsort's temporary buffers, scandir */
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    CHECK(m != NULL);
    if (m) {
        for (int i = 0; i < 10000; i++)
            fprintf(m, "%d,", i);
        fclose(m);
        CHECK(len > 10000);
        free(buf);
    }
    char *cwd = getcwd(NULL, 0);
    CHECK(cwd != NULL);
    free(cwd);
    char *rp = realpath("/", NULL);
    CHECK(rp != NULL && strcmp(rp, "/") == 0);
    free(rp);
}

TEST(memalign) { in_child(do_memalign); }
TEST(valloc) { in_child(do_valloc); }
TEST(pvalloc) { in_child(do_pvalloc); }
TEST(malloc_usable_size) { in_child(do_malloc_usable_size); }
TEST(libc_internal_allocations) { in_child(do_libc_internal_allocations); }

int main(void)
{
    api_init();
    RUN(memalign);
    RUN(valloc);
    RUN(pvalloc);
    RUN(malloc_usable_size);
    RUN(libc_internal_allocations);
    return harness_summary();
}
