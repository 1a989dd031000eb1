/*
 * bench_churn - thread churn: many short-lived threads that allocate.
 *
 *   bench_churn [threads=4000] [concurrent=4] [ops=2000] [min=16] [max=1024]
 *
 * Starts `threads` threads in all, at most `concurrent` at a time.  Each
 * does `ops` mallocs of random size in [min,max], keeping a ring of 64
 * blocks live (freeing the oldest), frees what its ring holds, hands its
 * last block to the main thread (which frees it after joining), and exits.
 * This is the life of a thread in a pool-less server: the allocator's per-
 * thread state is set up and torn down over and over, and whatever a dead
 * thread cached must be reclaimed or it piles up.
 *
 * Reports the time, threads per second, the peak RSS and the RSS after the
 * last thread is gone (rss_end_kb, read from /proc/self/status).
 */
#define BENCH_NAME "bench_churn"
#define BENCH_USAGE \
    "usage: bench_churn [threads=4000] [concurrent=4] [ops=2000] [min=16] [max=1024]\n" \
    "  `threads` short-lived threads, `concurrent` at a time, `ops` mallocs each\n"
#include "bench_common.h"

#define RING 64

struct slot {
    pthread_t tid;
    uint64_t seed;
    unsigned char *handed;   /* the block the thread leaves to main */
};

static unsigned long g_ops;
static size_t g_min, g_max;

static void *run(void *arg)
{
    struct slot *s = arg;
    unsigned char *ring[RING] = { 0 };
    uint64_t rng = s->seed;
    uint64_t span = (uint64_t)(g_max - g_min) + 1;
    unsigned long i;
    unsigned k = 0;

    for (i = 0; i < g_ops; i++) {
        size_t size = g_min + (size_t)bench_below(bench_rand(&rng), span);
        unsigned char *p = bench_malloc(size);

        memset(p, (int)(i & 0xff), size < 32 ? size : 32);
        free(ring[k]);
        ring[k] = p;
        k = (k + 1) % RING;
    }
    /* Leave one block to the main thread, free the rest. */
    k = (k + RING - 1) % RING;
    s->handed = ring[k];
    ring[k] = NULL;
    for (i = 0; i < RING; i++)
        free(ring[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long total = bench_arg_ul(argc, argv, 1, 4000, 1, 100000000);
    unsigned long conc = bench_arg_ul(argc, argv, 2, 4, 1, 1024);
    unsigned long started = 0, joined = 0;
    struct slot *slots;
    double t0, secs;
    long rss_end, peak;

    g_ops = bench_arg_ul(argc, argv, 3, 2000, 1, (unsigned long)1 << 40);
    g_min = bench_arg_ul(argc, argv, 4, 16, 1, (unsigned long)1 << 30);
    g_max = bench_arg_ul(argc, argv, 5, 1024, 1, (unsigned long)1 << 30);
    if (argc > 6 || g_min > g_max)
        bench_usage(2);

    slots = calloc(conc, sizeof(*slots));
    if (slots == NULL)
        return 1;

    /* Slot i % conc is reused by thread i once thread i - conc is joined. */
    t0 = bench_now_s();
    while (joined < total) {
        while (started < total && started - joined < conc) {
            struct slot *s = &slots[started % conc];
            s->seed = 0xC4u + started * 2654435761u;
            s->handed = NULL;
            bench_thread_start(&s->tid, run, s);
            started++;
        }
        pthread_join(slots[joined % conc].tid, NULL);
        free(slots[joined % conc].handed);
        joined++;
    }
    secs = bench_elapsed_s(t0);
    rss_end = bench_vmrss_kb();
    peak = bench_peak_kb(rss_end);

    bench_result(peak, "threads=%lu concurrent=%lu ops=%lu min=%zu max=%zu time_s=%.4f "
                 "threads_per_s=%.0f rss_end_kb=%ld",
                 total, conc, g_ops, g_min, g_max, secs, (double)total / secs, rss_end);
    free(slots);
    return 0;
}
