/*
 * harness.h - a tiny single-header test harness for mempool's tests.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_EQ(a, b); REQUIRE(p != NULL); ... }
 *
 *   int main(void) {
 *       RUN(name);
 *       ...
 *       return harness_summary();
 *   }
 *
 * Each RUN prints "ok - name" or "FAIL - name: <first failure>" on stdout
 * (every failed check is also reported as "#   file:line: ..." lines, at
 * most HARNESS_MAX_REPORTS per test); harness_skip(name, why) prints
 * "skip - name: why" for a test that cannot run in this build.
 * harness_summary() prints "N passed, N failed" (", N skipped" added when
 * there are skips) and returns the exit status: 0 iff no test failed.
 *
 * With HARNESS_TIME set in the environment each test's time is printed too.
 *
 * CHECK records a failure and goes on; REQUIRE records it and returns from
 * the calling function (use it where going on would crash, e.g. on NULL).
 * Checks may be made from several threads at once.
 *
 * The comparison macros compare as unsigned integers (uintmax_t), so they
 * work for sizes, pointers and errno values alike; CHECK_EQ(errno, ENOMEM)
 * and CHECK_LE(usable, limit) are the typical uses.
 */
#ifndef MEMPOOL_TEST_HARNESS_H
#define MEMPOOL_TEST_HARNESS_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef HARNESS_MAX_REPORTS
#define HARNESS_MAX_REPORTS 8
#endif

static const char *harness_current = "(none)";
static int harness_test_failures;      /* failed checks in the current test */
static int harness_passed, harness_failed, harness_skipped;
static char harness_first[512];        /* first failure of the current test */

__attribute__((format(printf, 3, 4), unused))
static void harness_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int n = __atomic_add_fetch(&harness_test_failures, 1, __ATOMIC_SEQ_CST);
    if (n == 1)
        snprintf(harness_first, sizeof harness_first, "%s:%d: %s", file, line, msg);
    if (n <= HARNESS_MAX_REPORTS)
        fprintf(stdout, "#   %s:%d: %s\n", file, line, msg);
    else if (n == HARNESS_MAX_REPORTS + 1)
        fprintf(stdout, "#   (further failures in this test not shown)\n");
    fflush(stdout);
}

/* True once a check of the current test has failed: lets long loops stop. */
#define TEST_FAILED() (__atomic_load_n(&harness_test_failures, __ATOMIC_SEQ_CST) != 0)

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond))                                                        \
            harness_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);    \
    } while (0)

/* CHECK with a printf-style explanation. */
#define CHECK_MSG(cond, ...)                                                \
    do {                                                                    \
        if (!(cond)) {                                                      \
            char harness_m_[300];                                           \
            snprintf(harness_m_, sizeof harness_m_, __VA_ARGS__);           \
            harness_fail(__FILE__, __LINE__, "CHECK(%s) failed: %s", #cond, \
                         harness_m_);                                       \
        }                                                                   \
    } while (0)

#define REQUIRE(cond)                                                       \
    do {                                                                    \
        if (!(cond)) {                                                      \
            harness_fail(__FILE__, __LINE__, "REQUIRE(%s) failed", #cond);  \
            return;                                                         \
        }                                                                   \
    } while (0)

#define HARNESS_CMP_(a, op, b)                                              \
    do {                                                                    \
        uintmax_t harness_a_ = (uintmax_t)(a), harness_b_ = (uintmax_t)(b); \
        if (!(harness_a_ op harness_b_))                                    \
            harness_fail(__FILE__, __LINE__,                                \
                         "CHECK(%s %s %s) failed: %ju (0x%jx) vs %ju (0x%jx)", \
                         #a, #op, #b, harness_a_, harness_a_, harness_b_,   \
                         harness_b_);                                       \
    } while (0)

#define CHECK_EQ(a, b) HARNESS_CMP_(a, ==, b)
#define CHECK_NE(a, b) HARNESS_CMP_(a, !=, b)
#define CHECK_LT(a, b) HARNESS_CMP_(a, <, b)
#define CHECK_LE(a, b) HARNESS_CMP_(a, <=, b)
#define CHECK_GT(a, b) HARNESS_CMP_(a, >, b)
#define CHECK_GE(a, b) HARNESS_CMP_(a, >=, b)

/* Run this test program again in a child process, with the "NAME=value"
 * strings of env (NULL-terminated) added to its environment and prep, if
 * not NULL, called just before the exec (to set a limit, say).  For tests
 * of what is fixed at start-up (options read once, reservations): the
 * child's main() sees a variable the test set and runs the child's part.
 * Its report goes to stderr, since it is not this program's summary.
 * Returns true when the child exited with status 0. */
__attribute__((unused))
static bool harness_rerun(const char *const env[], void (*prep)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        for (size_t i = 0; env[i]; i++) putenv((char *)env[i]);
        if (prep) prep();
        dup2(2, 1);
        execl("/proc/self/exe", "harness-child", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return false;
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fprintf(stdout, "#   child status 0x%x\n", st);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

#define TEST(name) __attribute__((unused)) static void test_##name(void)
#define RUN(name) harness_run(#name, test_##name)
/* RUN under another displayed name (e.g. the same test for two allocators). */
#define RUN_AS(label, name) harness_run(label, test_##name)

__attribute__((unused))
static void harness_run(const char *name, void (*fn)(void))
{
    harness_current = name;
    harness_test_failures = 0;
    harness_first[0] = 0;
    int skipped_before = harness_skipped;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (getenv("HARNESS_TIME"))
        fprintf(stdout, "#   %s took %.3f s\n", name,
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    if (harness_test_failures == 0 && harness_skipped > skipped_before) {
        /* the test skipped itself (harness_skip printed why): not a pass */
    } else if (harness_test_failures == 0) {
        harness_passed++;
        fprintf(stdout, "ok - %s\n", name);
    } else {
        harness_failed++;
        fprintf(stdout, "FAIL - %s: %s (%d failed check%s)\n", name, harness_first,
                harness_test_failures, harness_test_failures == 1 ? "" : "s");
    }
    fflush(stdout);
}

/* A test that cannot run in this build or environment; not counted as run. */
__attribute__((unused))
static void harness_skip(const char *name, const char *why)
{
    harness_skipped++;
    fprintf(stdout, "skip - %s: %s\n", name, why);
    fflush(stdout);
}

__attribute__((unused))
static int harness_summary(void)
{
    if (harness_skipped)
        fprintf(stdout, "%d passed, %d failed, %d skipped\n", harness_passed,
                harness_failed, harness_skipped);
    else
        fprintf(stdout, "%d passed, %d failed\n", harness_passed, harness_failed);
    fflush(stdout);
    return harness_failed == 0 ? 0 : 1;
}

/* ---- small helpers shared by the tests -------------------------------- */

/* Hide a value from the optimiser so that it cannot fold allocation calls
 * with constant arguments (and warn about them) or drop malloc/free pairs. */
__attribute__((unused))
static inline void *launder_ptr(void *p)
{
    __asm__ volatile("" : "+r"(p) : : "memory");
    return p;
}

__attribute__((unused))
static inline size_t launder_size(size_t n)
{
    __asm__ volatile("" : "+r"(n));
    return n;
}

/* A fast deterministic PRNG (xorshift64*), one state per user. */
__attribute__((unused))
static inline uint64_t harness_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* The 8 pattern bytes of the 8-byte group holding offset i, as one word
 * (stored little-endian: byte i is bits (i % 8) * 8 and up). */
static inline uint64_t harness_pattern_word(uint64_t seed, size_t i)
{
    uint64_t x = seed + (uint64_t)(i >> 3) * 0x9E3779B97F4A7C15ULL;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 32;
    return x;
}

/* The byte that pattern `seed` puts at offset i. */
static inline unsigned char harness_pattern_byte(uint64_t seed, size_t i)
{
    return (unsigned char)(harness_pattern_word(seed, i) >> ((i & 7) * 8));
}

/* VmRSS of this process in bytes, read without allocating; 0 if unknown. */
__attribute__((unused))
static size_t harness_rss_bytes(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *s = strstr(buf, "VmRSS:");
    return s ? (size_t)strtoull(s + 6, NULL, 10) * 1024 : 0;
}

/* Fill [p, p+n) with pattern `seed`. */
__attribute__((unused))
static void harness_fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = (unsigned char *)p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = harness_pattern_word(seed, i);
        memcpy(b + i, &x, 8);
    }
    for (; i < n; i++)
        b[i] = harness_pattern_byte(seed, i);
}

/* Offset of the first byte of [p, p+n) not holding pattern `seed`, or
 * (size_t)-1 when all hold it. */
__attribute__((unused))
static size_t harness_verify(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = harness_pattern_word(seed, i);
        uint64_t y;
        memcpy(&y, b + i, 8);
        if (x != y) {
            for (size_t j = i; j < i + 8; j++)
                if (b[j] != harness_pattern_byte(seed, j))
                    return j;
        }
    }
    for (; i < n; i++)
        if (b[i] != harness_pattern_byte(seed, i))
            return i;
    return (size_t)-1;
}

/* Offset of the first nonzero byte of [p, p+n), or (size_t)-1. */
__attribute__((unused))
static size_t harness_first_nonzero(const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t y;
        memcpy(&y, b + i, 8);
        if (y)
            break;
    }
    for (; i < n; i++)
        if (b[i])
            return i;
    return (size_t)-1;
}

#endif /* MEMPOOL_TEST_HARNESS_H */
