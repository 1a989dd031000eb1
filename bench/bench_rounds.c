/*
 * bench_rounds - rounds of "allocate N objects, free them all" per thread.
 *
 *   bench_rounds [threads=1] [size=64] [rounds=100] [count=10000]
 *
 * Every thread runs `rounds` rounds; a round allocates `count` objects of
 * `size` bytes (writing the first bytes of each), then frees them all in
 * allocation order.  The threads start together at a barrier.  The seed's
 * settings are threads 1, 5 and 10, 100 rounds of 10,000, at 64 B and 1 KiB.
 * Reports the wall time and the aggregate malloc+free pairs per second.
 */
#define BENCH_NAME "bench_rounds"
#define BENCH_USAGE \
    "usage: bench_rounds [threads=1] [size=64] [rounds=100] [count=10000]\n" \
    "  each thread: `rounds` times allocate `count` objects then free them all\n"
#include "bench_common.h"

struct worker {
    pthread_t tid;
    unsigned char **blocks;
    double start, end;
    char pad[64];
};

static size_t g_size;
static unsigned long g_rounds, g_count;
static pthread_barrier_t g_barrier;

static void *run(void *arg)
{
    struct worker *w = arg;
    size_t head = g_size < 16 ? g_size : 16;
    unsigned long r, i;

    pthread_barrier_wait(&g_barrier);
    w->start = bench_now_s();
    for (r = 0; r < g_rounds; r++) {
        for (i = 0; i < g_count; i++) {
            unsigned char *p = bench_malloc(g_size);
            memset(p, (int)(r & 0xff), head);
            w->blocks[i] = p;
        }
        for (i = 0; i < g_count; i++) {
            if (w->blocks[i][0] != (unsigned char)(r & 0xff)) {
                fprintf(stderr, "bench_rounds: block %p was overwritten\n", (void *)w->blocks[i]);
                abort();
            }
            free(w->blocks[i]);
        }
    }
    w->end = bench_now_s();
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long threads = bench_arg_ul(argc, argv, 1, 1, 1, 4096);
    unsigned long t;
    struct worker *w;
    double secs, pairs;

    g_size = bench_arg_ul(argc, argv, 2, 64, 1, (unsigned long)1 << 30);
    g_rounds = bench_arg_ul(argc, argv, 3, 100, 1, (unsigned long)1 << 40);
    g_count = bench_arg_ul(argc, argv, 4, 10000, 1, 100000000);
    if (argc > 5)
        bench_usage(2);

    w = bench_workers_new(threads, sizeof(*w), &g_barrier);
    for (t = 0; t < threads; t++) {
        w[t].blocks = calloc(g_count, sizeof(*w[t].blocks));
        if (w[t].blocks == NULL)
            return 1;
    }
    for (t = 0; t < threads; t++)
        bench_thread_start(&w[t].tid, run, &w[t]);
    BENCH_JOIN(w, threads);
    secs = BENCH_WALL_S(w, threads);
    pairs = (double)threads * (double)g_rounds * (double)g_count;

    bench_result(bench_maxrss_kb(),
                 "threads=%lu size=%zu rounds=%lu count=%lu time_s=%.4f mops=%.2f",
                 threads, g_size, g_rounds, g_count, secs, pairs / secs / 1e6);
    for (t = 0; t < threads; t++)
        free(w[t].blocks);
    free(w);
    pthread_barrier_destroy(&g_barrier);
    return 0;
}
