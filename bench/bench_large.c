/*
 * bench_large - large blocks, 256 KiB to 32 MiB.
 *
 *   bench_large [iters=400] [min=262144] [max=33554432] [live=4] [threads=1]
 *
 * Each thread allocates `iters` blocks with sizes drawn log-uniformly from
 * [min,max] (so every size scale is equally common), writes one byte in
 * every page of each, and keeps the last `live` blocks (freeing the oldest).
 * Blocks this size usually come straight from the OS, so this measures how
 * the allocator maps, caches and returns big spans: the page faults of
 * fresh memory dominate unless freed spans are reused while still mapped,
 * and reuse costs memory.  Reports the time and the peak RSS; the ideal
 * peak is about live * the average size.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_LIVE 1024

struct worker {
    pthread_t tid;
    uint64_t rng;
    double start, end;
    char pad[64];
};

static unsigned long g_iters, g_live;
static size_t g_min, g_max;
static pthread_barrier_t g_barrier;

static const char *const usage_text =
    "usage: bench_large [iters=400] [min=262144] [max=33554432] [live=4] [threads=1]\n"
    "  log-uniform sizes in [min,max], every page written, `live` kept per thread\n";

__attribute__((noreturn)) static void usage(int code)
{
    fputs(usage_text, code == 0 ? stdout : stderr);
    exit(code);
}

static unsigned long arg_ul(int argc, char **argv, int i, unsigned long def,
                            unsigned long lo, unsigned long hi)
{
    unsigned long v;
    char *end;

    if (i >= argc)
        return def;
    if (argv[i][0] == '-' || argv[i][0] == '\0')
        usage(strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ? 0 : 2);
    errno = 0;
    v = strtoul(argv[i], &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "bench_large: bad argument %d: '%s' (want %lu..%lu)\n", i, argv[i], lo, hi);
        usage(2);
    }
    return v;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Peak resident set in KiB: VmHWM from /proc/self/status, which belongs to
 * this program's address space alone (getrusage's ru_maxrss also keeps the
 * high-water mark of the process image that exec replaced: the launcher's);
 * ru_maxrss when /proc cannot be read. */
static long maxrss_kb(void)
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

static uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void check_free(unsigned char *p, size_t size)
{
    if (p[0] != (unsigned char)(size >> 12) || p[size - 1] != (unsigned char)(size >> 12)) {
        fprintf(stderr, "bench_large: block %p of %zu bytes was overwritten\n", (void *)p, size);
        abort();
    }
    free(p);
}

static void *run(void *arg)
{
    struct worker *w = arg;
    unsigned char *ptr[MAX_LIVE] = { 0 };
    size_t sizes[MAX_LIVE] = { 0 };
    double lo = log((double)g_min), hi = log((double)g_max);
    unsigned long i, slot = 0;

    pthread_barrier_wait(&g_barrier);
    w->start = now_s();
    for (i = 0; i < g_iters; i++) {
        double u = (double)(next_rand(&w->rng) >> 11) * (1.0 / 9007199254740992.0);
        size_t size = (size_t)exp(lo + (hi - lo) * u), off;
        unsigned char *p;

        if (size < g_min)
            size = g_min;
        if (size > g_max)
            size = g_max;
        p = malloc(size);
        if (p == NULL) {
            fprintf(stderr, "bench_large: malloc(%zu) failed\n", size);
            abort();
        }
        for (off = 0; off < size; off += 4096)
            p[off] = (unsigned char)(size >> 12);
        p[size - 1] = (unsigned char)(size >> 12);
        if (ptr[slot] != NULL)
            check_free(ptr[slot], sizes[slot]);
        ptr[slot] = p;
        sizes[slot] = size;
        if (++slot == g_live)
            slot = 0;
    }
    for (i = 0; i < g_live; i++)
        if (ptr[i] != NULL)
            check_free(ptr[i], sizes[i]);
    w->end = now_s();
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long threads, t;
    struct worker *w;
    double t0, t1;

    g_iters = arg_ul(argc, argv, 1, 400, 1, (unsigned long)1 << 40);
    g_min = arg_ul(argc, argv, 2, 262144, 1, (unsigned long)1 << 40);
    g_max = arg_ul(argc, argv, 3, 33554432, 1, (unsigned long)1 << 40);
    g_live = arg_ul(argc, argv, 4, 4, 1, MAX_LIVE);
    threads = arg_ul(argc, argv, 5, 1, 1, 1024);
    if (argc > 6 || g_min > g_max)
        usage(2);

    w = calloc(threads, sizeof(*w));
    if (w == NULL || pthread_barrier_init(&g_barrier, NULL, (unsigned)threads) != 0)
        return 1;
    for (t = 0; t < threads; t++) {
        w[t].rng = 0x1A26Eull + t * 65537;
        if (pthread_create(&w[t].tid, NULL, run, &w[t]) != 0) {
            fprintf(stderr, "bench_large: pthread_create failed\n");
            return 1;
        }
    }
    for (t = 0; t < threads; t++)
        pthread_join(w[t].tid, NULL);
    t0 = w[0].start;
    t1 = w[0].end;
    for (t = 1; t < threads; t++) {
        if (w[t].start < t0)
            t0 = w[t].start;
        if (w[t].end > t1)
            t1 = w[t].end;
    }
    if (t1 - t0 <= 0)
        t1 = t0 + 1e-9;

    printf("bench_large iters=%lu min=%zu max=%zu live=%lu threads=%lu time_s=%.4f "
           "ops_s=%.1f maxrss_kb=%ld\n",
           g_iters, g_min, g_max, g_live, threads, t1 - t0,
           (double)threads * (double)g_iters / (t1 - t0), maxrss_kb());
    free(w);
    return 0;
}
