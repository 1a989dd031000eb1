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
#define BENCH_NAME "bench_contention"
#define BENCH_USAGE \
    "usage: bench_contention [threads=4] [total_ops=40000000] [min=16] [max=128] [window=8]\n" \
    "  total_ops malloc+free pairs split over the threads; aggregate Mops/s\n"
#include "bench_common.h"

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

static void *run(void *arg)
{
    struct worker *w = arg;
    unsigned char *live[MAX_WINDOW] = { 0 };
    uint64_t span = (uint64_t)(g_max - g_min) + 1;
    unsigned long i, slot = 0;

    pthread_barrier_wait(&g_barrier);
    w->start = bench_now_s();
    for (i = 0; i < w->ops; i++) {
        size_t size = g_min + (size_t)bench_below(bench_rand(&w->rng), span);
        unsigned char *p = bench_malloc(size);

        memset(p, (int)(i & 0xff), size < 16 ? size : 16);
        free(live[slot]);
        live[slot] = p;
        if (++slot == g_window)
            slot = 0;
    }
    for (i = 0; i < g_window; i++)
        free(live[i]);
    w->end = bench_now_s();
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long threads = bench_arg_ul(argc, argv, 1, 4, 1, 4096);
    unsigned long total = bench_arg_ul(argc, argv, 2, 40000000, 1, (unsigned long)1 << 40);
    unsigned long t;
    struct worker *w;
    double secs;

    g_min = bench_arg_ul(argc, argv, 3, 16, 1, (unsigned long)1 << 30);
    g_max = bench_arg_ul(argc, argv, 4, 128, 1, (unsigned long)1 << 30);
    g_window = bench_arg_ul(argc, argv, 5, 8, 1, MAX_WINDOW);
    if (argc > 6 || g_min > g_max)
        bench_usage(2);

    w = bench_workers_new(threads, sizeof(*w), &g_barrier);
    for (t = 0; t < threads; t++) {
        w[t].rng = 0xC0FFEEull + t * 7919;
        w[t].ops = total / threads + (t < total % threads ? 1 : 0);
        bench_thread_start(&w[t].tid, run, &w[t]);
    }
    BENCH_JOIN(w, threads);
    secs = BENCH_WALL_S(w, threads);

    bench_result(bench_maxrss_kb(),
                 "threads=%lu ops=%lu min=%zu max=%zu window=%lu time_s=%.4f mops=%.2f",
                 threads, total, g_min, g_max, g_window, secs, (double)total / secs / 1e6);
    pthread_barrier_destroy(&g_barrier);
    free(w);
    return 0;
}
