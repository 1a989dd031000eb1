/* test_options.c - the options table (init.c): MEMPOOL_<NAME> read once at
 * start-up, sizes with k/m/g suffixes, values out of range clamped, garbage
 * ignored, and a start-up that survives a getenv which itself allocates.
 *
 * Options are read when the library starts, so each case runs this program
 * again (--child) with the variable set and MEMPOOL_VERBOSE=1, and reads
 * the "mempool: option MEMPOOL_<NAME>=<value>" lines it prints. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "mempool.h"

extern char **environ;

#ifndef MP_SANITIZE
/* A getenv that allocates when MP_TEST_GETENV_ALLOCATES=1 is in the
 * environment, as some interposers and tracing shims do: mempool's start-up
 * calls getenv, so this malloc re-enters it before its options are read.
 * (It once found them all zero and divided by the arena count.) */
static bool env_has(const char *kv) {
    for (char **e = environ; e && *e; e++)
        if (strcmp(*e, kv) == 0) return true;
    return false;
}

char *getenv(const char *name) {
    static __thread int depth;
    if (depth == 0 && env_has("MP_TEST_GETENV_ALLOCATES=1")) {
        depth++;
        void *volatile big = malloc(20000);   /* a class of one-object batches */
        free(big);
        void *volatile small = malloc(24);
        free(small);
        depth--;
    }
    size_t l = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, name, l) == 0 && (*e)[l] == '=') return *e + l + 1;
    return NULL;
}
#endif

/* Run this program with --child and the given variables (and none of the
 * caller's MEMPOOL_ ones), MEMPOOL_VERBOSE=1; its stderr goes to out.
 * Returns the wait status. */
static int run_child(const char *const *vars, char *out, size_t outlen) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        const char *envp[512];
        size_t n = 0;
        for (char **e = environ; e && *e && n < 480; e++)
            if (strncmp(*e, "MEMPOOL_", 8) != 0) envp[n++] = *e;
        for (size_t i = 0; vars[i] && n < 510; i++) envp[n++] = vars[i];
        envp[n++] = "MEMPOOL_VERBOSE=1";
        envp[n] = NULL;
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        char *argv[] = { (char *)"test_options", (char *)"--child", NULL };
        execve("/proc/self/exe", argv, (char *const *)envp);
        _exit(127);
    }
    close(fd[1]);
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd[0], out + got, outlen - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
        if (got == outlen - 1) break;
    }
    out[got] = '\0';
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return st;
}

/* The value the child printed for MEMPOOL_<name>, or -1. */
static long printed(const char *out, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "mempool: option MEMPOOL_%s=", name);
    const char *p = strstr(out, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* MEMPOOL_<name>=<value> gives want. */
static void check_option(const char *name, const char *value, long want) {
    char var[128], out[4096];
    snprintf(var, sizeof var, "MEMPOOL_%s=%s", name, value);
    const char *vars[] = { var, NULL };
    int st = run_child(vars, out, sizeof out);
    REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    long got = printed(out, name);
    CHECK_MSG(got == want, "%s: %ld, expected %ld", var, got, want);
}

#define KIB 1024L
#define MIB (1024L * KIB)
#define GIB (1024L * MIB)

TEST(defaults) {
    const char *vars[] = { NULL };
    char out[4096];
    int st = run_child(vars, out, sizeof out);
    REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(printed(out, "RETAIN"), 8 * MIB);
    CHECK_EQ(printed(out, "TCACHE_MAX"), 8 * MIB);
    CHECK_EQ(printed(out, "CHUNK"), 4 * MIB);
    CHECK_EQ(printed(out, "CHECK"), 0);
    CHECK_EQ(printed(out, "VERBOSE"), 1);
    CHECK_EQ(printed(out, "SHOW_STATS"), 0);
    CHECK_EQ(printed(out, "DECAY_MS"), 500);
    CHECK_EQ(printed(out, "HUGEPAGES"), 16 * MIB);
    long arenas = printed(out, "ARENAS");
    CHECK(arenas >= 1 && arenas <= 16);
}

TEST(sizes_and_suffixes) {
    check_option("RETAIN", "0", 0);
    check_option("RETAIN", "12345", 12345);
    check_option("RETAIN", "300k", 300 * KIB);
    check_option("RETAIN", "300K", 300 * KIB);
    check_option("RETAIN", "12kb", 12 * KIB);
    check_option("RETAIN", "5m", 5 * MIB);
    check_option("RETAIN", "2g", 2 * GIB);
    check_option("RETAIN", "7B", 7);
    check_option("DECAY_MS", "250", 250);
    check_option("ARENAS", "3", 3);
    check_option("CHECK", "1", 1);
}

TEST(out_of_range_is_clamped) {
    check_option("TCACHE_MAX", "1", 64 * KIB);            /* below: the minimum */
    check_option("TCACHE_MAX", "5g", 1 * GIB);            /* above: the maximum */
    check_option("ARENAS", "99", 16);
    check_option("CHECK", "7", 1);
    /* Too big for a long, with or without a suffix: the maximum (it once
     * kept the default, or wrapped: 8589934592g read as 0). */
    check_option("RETAIN", "9223372036854775807", 1024 * GIB);
    check_option("RETAIN", "99999999999999999999999999", 1024 * GIB);
    check_option("RETAIN", "8589934592g", 1024 * GIB);
    check_option("RETAIN", "17179869185g", 1024 * GIB);
    /* A chunk is whole 8 KiB pages of the heap's: 300k is 37.5 of them. */
    check_option("CHUNK", "300k", 304 * KIB);
}

TEST(garbage_keeps_the_default) {
    check_option("RETAIN", "", 8 * MIB);
    check_option("RETAIN", "lots", 8 * MIB);
    check_option("RETAIN", "-5", 8 * MIB);
    check_option("RETAIN", "1t", 8 * MIB);
    check_option("RETAIN", "12 k", 8 * MIB);
    check_option("RETAIN", "0x100", 8 * MIB);
}

TEST(getenv_that_allocates) {
#ifndef MP_SANITIZE
    const char *vars[] = { "MP_TEST_GETENV_ALLOCATES=1", "MEMPOOL_RETAIN=1m", NULL };
    char out[4096];
    int st = run_child(vars, out, sizeof out);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s %d", WIFSIGNALED(st) ? "killed by signal" : "exited with",
              WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    CHECK_EQ(printed(out, "RETAIN"), 1 * MIB);
#endif
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0) {
        /* Small, large and huge: every layer the options steer. */
        void *volatile a = malloc(100), *volatile b = malloc(300000), *volatile c = mp_malloc(5 << 20);
        int ok = a && b && c;
        free(a);
        free(b);
        mp_free(c);
        return ok ? 0 : 1;
    }
    RUN(defaults);
    RUN(sizes_and_suffixes);
    RUN(out_of_range_is_clamped);
    RUN(garbage_keeps_the_default);
#ifdef MP_SANITIZE
    harness_skip("getenv_that_allocates", "the sanitizer owns malloc in this build");
#else
    RUN(getenv_that_allocates);
#endif
    return harness_summary();
}
