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
#include <math.h>

#define BENCH_NAME "bench_large"
#define BENCH_USAGE \
    "usage: bench_large [iters=400] [min=262144] [max=33554432] [live=4] [threads=1]\n" \
    "  log-uniform sizes in [min,max], every page written, `live` kept per thread\n"
#include "bench_common.h"

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
    w->start = bench_now_s();
    for (i = 0; i < g_iters; i++) {
        double u = bench_uniform01(&w->rng);
        size_t size = (size_t)exp(lo + (hi - lo) * u), off;
        unsigned char *p;

        if (size < g_min)
            size = g_min;
        if (size > g_max)
            size = g_max;
        p = bench_malloc(size);
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
    w->end = bench_now_s();
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long threads, t;
    struct worker *w;
    double secs;

    g_iters = bench_arg_ul(argc, argv, 1, 400, 1, (unsigned long)1 << 40);
    g_min = bench_arg_ul(argc, argv, 2, 262144, 1, (unsigned long)1 << 40);
    g_max = bench_arg_ul(argc, argv, 3, 33554432, 1, (unsigned long)1 << 40);
    g_live = bench_arg_ul(argc, argv, 4, 4, 1, MAX_LIVE);
    threads = bench_arg_ul(argc, argv, 5, 1, 1, 1024);
    if (argc > 6 || g_min > g_max)
        bench_usage(2);

    w = bench_workers_new(threads, sizeof(*w), &g_barrier);
    for (t = 0; t < threads; t++) {
        w[t].rng = 0x1A26Eull + t * 65537;
        bench_thread_start(&w[t].tid, run, &w[t]);
    }
    BENCH_JOIN(w, threads);
    secs = BENCH_WALL_S(w, threads);

    bench_result(bench_maxrss_kb(),
                 "iters=%lu min=%zu max=%zu live=%lu threads=%lu time_s=%.4f ops_s=%.1f",
                 g_iters, g_min, g_max, g_live, threads, secs,
                 (double)threads * (double)g_iters / secs);
    free(w);
    return 0;
}
