/*
 * bench_falseshare - does the allocator make threads share cache lines?
 *
 *   bench_falseshare [mode=0] [threads=2] [iters=400000] [writes=100] [objsize=8]
 *
 * mode 0, passive (cache-scratch style): the main thread allocates one
 *   small object per thread, back to back, and hands object i to thread i.
 *   Each thread frees the object it was given, then `iters` times allocates
 *   an object of `objsize` bytes, writes every byte of it `writes` times and
 *   frees it.  An allocator that gives the freed object (or its neighbours)
 *   back to the thread that freed it leaves several threads writing into
 *   one cache line for the whole run.
 * mode 1, active (cache-thrash style): the same loop, without the hand-over;
 *   threads allocating at the same time from a shared heap can be given
 *   neighbouring objects.
 * The writes go through a volatile pointer so each is a real store.
 * Reports the wall time; with no false sharing it scales with the core count.
 */
#define BENCH_NAME "bench_falseshare"
#define BENCH_USAGE \
    "usage: bench_falseshare [mode=0] [threads=2] [iters=400000] [writes=100] [objsize=8]\n" \
    "  mode 0: passive (objects handed out by main, freed by workers, cache-scratch)\n" \
    "  mode 1: active (each thread allocates its own, cache-thrash)\n"
#include "bench_common.h"

struct worker {
    pthread_t tid;
    unsigned char *given;
    double start, end;
    char pad[64];
};

static unsigned long g_iters, g_writes;
static size_t g_objsize;
static pthread_barrier_t g_barrier;

static void *run(void *arg)
{
    struct worker *w = arg;
    unsigned long i, j;
    size_t k;

    pthread_barrier_wait(&g_barrier);
    w->start = bench_now_s();
    free(w->given);
    for (i = 0; i < g_iters; i++) {
        volatile unsigned char *p = bench_malloc(g_objsize);

        for (j = 0; j < g_writes; j++)
            for (k = 0; k < g_objsize; k++)
                p[k] = (unsigned char)(p[k] + 1);
        free((void *)p);
    }
    w->end = bench_now_s();
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long mode = bench_arg_ul(argc, argv, 1, 0, 0, 1);
    unsigned long threads = bench_arg_ul(argc, argv, 2, 2, 1, 4096);
    struct worker *w;
    unsigned long t;
    double secs;

    g_iters = bench_arg_ul(argc, argv, 3, 400000, 1, (unsigned long)1 << 40);
    g_writes = bench_arg_ul(argc, argv, 4, 100, 1, (unsigned long)1 << 30);
    g_objsize = bench_arg_ul(argc, argv, 5, 8, 1, 1 << 20);
    if (argc > 6)
        bench_usage(2);

    w = bench_workers_new(threads, sizeof(*w), &g_barrier);
    /* Passive mode: consecutive small objects from the main thread, which
     * a simple allocator places in the same cache line. */
    if (mode == 0) {
        for (t = 0; t < threads; t++) {
            w[t].given = malloc(g_objsize);
            if (w[t].given == NULL)
                return 1;
            memset(w[t].given, 0, g_objsize);
        }
    }
    for (t = 0; t < threads; t++)
        bench_thread_start(&w[t].tid, run, &w[t]);
    BENCH_JOIN(w, threads);
    secs = BENCH_WALL_S(w, threads);

    bench_result(bench_maxrss_kb(),
                 "mode=%s threads=%lu iters=%lu writes=%lu objsize=%zu time_s=%.4f",
                 mode == 0 ? "passive" : "active", threads, g_iters, g_writes, g_objsize, secs);
    free(w);
    return 0;
}
