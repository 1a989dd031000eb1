/*
 * bench_contention - many threads hammering malloc/free at once.
 *
 *   bench_contention [threads=4] [total_ops=40000000] [min=16] [max=128] [window=8]
 *
 * total_ops malloc+free pairs are split evenly over the threads, so the run
 * takes about the same time at any thread count when the allocator scales
 * and longer when threads get in each other's way (shared locks, shared
 * cache lines).  Each thread allocates random sizes in [min,max], writes the
 * first bytes and keeps the last `window` blocks live (freeing the oldest).
 * All threads start together at a barrier.  Reports aggregate throughput.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_WINDOW 1024

struct worker {
    pthread_t tid;
    uint64_t rng;
    unsigned long ops;
    double start, end;
    char pad[64];
};

static size_t g_min, g_max;
static unsigned long g_window;
static pthread_barrier_t g_barrier;

static const char *const usage_text =
    "usage: bench_contention [threads=4] [total_ops=40000000] [min=16] [max=128] [window=8]\n"
    "  total_ops malloc+free pairs split over the threads; aggregate Mops/s\n";

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
        fprintf(stderr, "bench_contention: bad argument %d: '%s' (want %lu..%lu)\n",
                i, argv[i], lo, hi);
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

static inline uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void *run(void *arg)
{
    struct worker *w = arg;
    unsigned char *live[MAX_WINDOW] = { 0 };
    uint64_t span = (uint64_t)(g_max - g_min) + 1;
    unsigned long i, slot = 0;

    pthread_barrier_wait(&g_barrier);
    w->start = now_s();
    for (i = 0; i < w->ops; i++) {
        size_t size = g_min + (size_t)(((unsigned __int128)next_rand(&w->rng) * span) >> 64);
        unsigned char *p = malloc(size);

        if (p == NULL) {
            fprintf(stderr, "bench_contention: malloc(%zu) failed\n", size);
            abort();
        }
        memset(p, (int)(i & 0xff), size < 16 ? size : 16);
        free(live[slot]);
        live[slot] = p;
        if (++slot == g_window)
            slot = 0;
    }
    for (i = 0; i < g_window; i++)
        free(live[i]);
    w->end = now_s();
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long threads = arg_ul(argc, argv, 1, 4, 1, 4096);
    unsigned long total = arg_ul(argc, argv, 2, 40000000, 1, (unsigned long)1 << 40);
    unsigned long t;
    struct worker *w;
    double t0, t1;

    g_min = arg_ul(argc, argv, 3, 16, 1, (unsigned long)1 << 30);
    g_max = arg_ul(argc, argv, 4, 128, 1, (unsigned long)1 << 30);
    g_window = arg_ul(argc, argv, 5, 8, 1, MAX_WINDOW);
    if (argc > 6 || g_min > g_max)
        usage(2);

    w = calloc(threads, sizeof(*w));
    if (w == NULL || pthread_barrier_init(&g_barrier, NULL, (unsigned)threads) != 0)
        return 1;
    for (t = 0; t < threads; t++) {
        w[t].rng = 0xC0FFEEull + t * 7919;
        w[t].ops = total / threads + (t < total % threads ? 1 : 0);
        if (pthread_create(&w[t].tid, NULL, run, &w[t]) != 0) {
            fprintf(stderr, "bench_contention: pthread_create failed\n");
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

    printf("bench_contention threads=%lu ops=%lu min=%zu max=%zu window=%lu time_s=%.4f mops=%.2f maxrss_kb=%ld\n",
           threads, total, g_min, g_max, g_window, t1 - t0,
           (double)total / (t1 - t0) / 1e6, maxrss_kb());
    pthread_barrier_destroy(&g_barrier);
    free(w);
    return 0;
}
