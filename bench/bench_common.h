/*
 * bench_common.h - the helpers every bench/bench_*.c program shares.
 *
 * Each benchmark is one C file that calls only the standard malloc family,
 * so it runs unchanged under any allocator brought in by LD_PRELOAD.  Before
 * including this header a program defines its name and its usage text:
 *
 *   #define BENCH_NAME "bench_foo"
 *   #define BENCH_USAGE \
 *       "usage: bench_foo [n=100] [size=64]\n" \
 *       "  what it measures\n"
 *   #include "bench_common.h"
 *
 * It includes the standard headers the programs share (errno, pthread,
 * stdarg, stdint, stdio, stdlib, string, sys/resource, time); a program
 * includes any other it needs (math.h, sys/mman.h, ...) itself.  Everything
 * here is a static inline function or a macro, so a program pays only for
 * what it uses and each binary still builds from its one .c file.
 *
 * Arguments (positional, decimal, each with a default and a range):
 *   bench_arg_ul(argc, argv, i, def, lo, hi)  argv[i], or def when absent;
 *       -h/--help print BENCH_USAGE to stdout and exit 0; an argument that
 *       starts with '-', is empty, is not a number or is out of [lo,hi]
 *       prints "BENCH_NAME: bad argument i: '...' (want lo..hi)" and the
 *       usage to stderr and exits 2.
 *   bench_usage(code)        BENCH_USAGE to stdout (code 0) or stderr; exit.
 *
 * Time (CLOCK_MONOTONIC):
 *   bench_now_s(), bench_now_ns()   now, in seconds (double) or in ns.
 *   bench_elapsed_s(t0)             bench_now_s() - t0, at least 1e-9.
 *
 * Memory read from /proc/self/status, in KiB:
 *   bench_maxrss_kb()   peak RSS (VmHWM; getrusage's ru_maxrss without /proc).
 *   bench_vmrss_kb()    current RSS (VmRSS), -1 when it cannot be read.
 *   bench_peak_kb(rss)  bench_maxrss_kb(), or rss (a bench_vmrss_kb() read
 *                       just before) when that is higher.
 *
 * Random numbers (splitmix64; a uint64_t state seeded by the program):
 *   bench_rand(&state)      the next 64-bit value.
 *   bench_below(r, n)       r scaled to [0,n) (multiply-shift, no modulo).
 *   bench_uniform01(&state) a double in [0,1) from the next value.
 *
 * Allocation and failure (messages start with "BENCH_NAME: "):
 *   bench_malloc(n)         malloc(n); on NULL, "malloc(n) failed" and abort.
 *   bench_fail(what, n)     print "what(n) failed" and abort.
 *   bench_die(msg)          print msg and exit 1.
 *   bench_escape(p)         keep the compiler from pairing up and deleting a
 *                           malloc and its free.
 *
 * Worker threads started together at a barrier: the program's worker struct
 * has `pthread_t tid` and `double start, end`, which each thread sets right
 * after pthread_barrier_wait() and when it is done:
 *   bench_workers_new(n, size, &barrier)  calloc(n, size) and a barrier for
 *                                        n threads; exit 1 when either fails.
 *   bench_thread_start(&tid, fn, arg)     pthread_create, or bench_die
 *                                        ("pthread_create failed").
 *   BENCH_JOIN(w, n)                      join w[0..n-1].tid.
 *   BENCH_WALL_S(w, n)                    earliest start to latest end, s
 *                                         (at least 1e-9).
 *
 * The result line, the one line on stdout that bench/run.sh parses (the
 * last line that starts with the program's name, key=value pairs split by
 * single spaces):
 *   bench_result(maxrss_kb, fmt, ...)   prints "BENCH_NAME <fmt...>
 *       maxrss_kb=<maxrss_kb>\n"; pass bench_maxrss_kb() unless the program
 *       has a better peak of its own.  fmt holds the other key=value pairs.
 */
#ifndef MEMPOOL_BENCH_COMMON_H
#define MEMPOOL_BENCH_COMMON_H

#if !defined(BENCH_NAME) || !defined(BENCH_USAGE)
#error "define BENCH_NAME and BENCH_USAGE before including bench_common.h"
#endif

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* ---- arguments ----------------------------------------------------------- */

__attribute__((noreturn)) static inline void bench_usage(int code)
{
    fputs(BENCH_USAGE, code == 0 ? stdout : stderr);
    exit(code);
}

static inline unsigned long bench_arg_ul(int argc, char **argv, int i, unsigned long def,
                                         unsigned long lo, unsigned long hi)
{
    unsigned long v;
    char *end;

    if (i >= argc)
        return def;
    if (argv[i][0] == '-' || argv[i][0] == '\0')
        bench_usage(strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ? 0 : 2);
    errno = 0;
    v = strtoul(argv[i], &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, BENCH_NAME ": bad argument %d: '%s' (want %lu..%lu)\n", i, argv[i], lo, hi);
        bench_usage(2);
    }
    return v;
}

/* ---- time ---------------------------------------------------------------- */

static inline double bench_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Seconds since t0 (a bench_now_s() value); never 0, so it can divide. */
static inline double bench_elapsed_s(double t0)
{
    double secs = bench_now_s() - t0;

    if (secs <= 0)
        secs = 1e-9;
    return secs;
}

/* ---- memory -------------------------------------------------------------- */

/* Peak resident set in KiB: VmHWM from /proc/self/status, which belongs to
 * this program's address space alone (getrusage's ru_maxrss also keeps the
 * high-water mark of the process image that exec replaced: the launcher's);
 * ru_maxrss when /proc cannot be read. */
static inline long bench_maxrss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (f != NULL) {
        while (fgets(line, sizeof(line), f) != NULL) {
            if (strncmp(line, "VmHWM:", 6) == 0) {
                kb = strtol(line + 6, NULL, 10);
                break;
            }
        }
        fclose(f);
    }
    if (kb < 0) {
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        kb = ru.ru_maxrss;
    }
    return kb;
}

/* VmRSS from /proc/self/status, in KiB; -1 when it cannot be read.  The
 * stream is unbuffered, so the only allocation is fopen's small FILE. */
static inline long bench_vmrss_kb(void)
{
    static char buf[8192];
    FILE *f = fopen("/proc/self/status", "r");
    size_t n;
    char *s;

    if (f == NULL)
        return -1;
    setvbuf(f, NULL, _IONBF, 0);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    s = strstr(buf, "VmRSS:");
    return s != NULL ? strtol(s + 6, NULL, 10) : -1;
}

/* The peak RSS, at least rss_kb (a VmRSS read just before): the kernel's
 * high-water mark can lag a little behind. */
static inline long bench_peak_kb(long rss_kb)
{
    long peak = bench_maxrss_kb();

    return rss_kb > peak ? rss_kb : peak;
}

/* ---- random numbers ------------------------------------------------------ */

/* splitmix64: the next value of the sequence that *state seeds. */
static inline uint64_t bench_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A random r mapped to [0,n). */
static inline uint64_t bench_below(uint64_t r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

/* A double in [0,1) from the top 53 bits of the next value. */
static inline double bench_uniform01(uint64_t *state)
{
    return (double)(bench_rand(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- allocation and failure ---------------------------------------------- */

/* "BENCH_NAME: what(n) failed" and abort: an allocation call returned NULL. */
__attribute__((noreturn)) static inline void bench_fail(const char *what, size_t n)
{
    fprintf(stderr, BENCH_NAME ": %s(%zu) failed\n", what, n);
    abort();
}

/* "BENCH_NAME: msg" and exit 1. */
__attribute__((noreturn)) static inline void bench_die(const char *msg)
{
    fprintf(stderr, BENCH_NAME ": %s\n", msg);
    exit(1);
}

static inline void *bench_malloc(size_t n)
{
    void *p = malloc(n);

    if (p == NULL)
        bench_fail("malloc", n);
    return p;
}

/* Keep the compiler from pairing up and deleting a malloc and its free. */
static inline void bench_escape(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* ---- worker threads ------------------------------------------------------ */

/* n zeroed workers of `size` bytes each, and *barrier set up for n threads. */
static inline void *bench_workers_new(unsigned long n, size_t size, pthread_barrier_t *barrier)
{
    void *w = calloc(n, size);

    if (w == NULL || pthread_barrier_init(barrier, NULL, (unsigned)n) != 0)
        exit(1);
    return w;
}

static inline void bench_thread_start(pthread_t *tid, void *(*fn)(void *), void *arg)
{
    if (pthread_create(tid, NULL, fn, arg) != 0)
        bench_die("pthread_create failed");
}

/* The workers of an array w lie sizeof(w[0]) bytes apart: BENCH_JOIN and
 * BENCH_WALL_S hand the helpers below the first worker's fields and that
 * stride, so any struct with `tid`, `start` and `end` members will do. */
#define BENCH_FIELD_(first, i, stride, type) \
    (*(type *)(void *)((char *)(first) + (size_t)(i) * (stride)))

static inline void bench_join_(pthread_t *tid, unsigned long n, size_t stride)
{
    unsigned long i;

    for (i = 0; i < n; i++)
        pthread_join(BENCH_FIELD_(tid, i, stride, pthread_t), NULL);
}

/* From the earliest start to the latest end of n workers; at least 1e-9. */
static inline double bench_wall_s_(double *start, double *end, unsigned long n, size_t stride)
{
    double t0 = *start, t1 = *end;
    unsigned long i;

    for (i = 1; i < n; i++) {
        if (BENCH_FIELD_(start, i, stride, double) < t0)
            t0 = BENCH_FIELD_(start, i, stride, double);
        if (BENCH_FIELD_(end, i, stride, double) > t1)
            t1 = BENCH_FIELD_(end, i, stride, double);
    }
    if (t1 - t0 <= 0)
        t1 = t0 + 1e-9;
    return t1 - t0;
}

#define BENCH_JOIN(w, n)   bench_join_(&(w)[0].tid, (n), sizeof((w)[0]))
#define BENCH_WALL_S(w, n) bench_wall_s_(&(w)[0].start, &(w)[0].end, (n), sizeof((w)[0]))

/* ---- the result line ----------------------------------------------------- */

__attribute__((format(printf, 2, 3)))
static inline void bench_result(long maxrss_kb, const char *fmt, ...)
{
    va_list ap;

    fputs(BENCH_NAME " ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" maxrss_kb=%ld\n", maxrss_kb);
}

#endif /* MEMPOOL_BENCH_COMMON_H */
