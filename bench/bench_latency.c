/*
 * bench_latency - tail latency of single malloc and free calls.
 *
 *   bench_latency [iters=2000000] [min=8] [max=1024] [live=4096] [threads=1]
 *
 * Each thread first fills an array of `live` blocks, then `iters` times:
 * allocates a block of random size in [min,max], timing the malloc call
 * alone with clock_gettime(CLOCK_MONOTONIC) on both sides; writes its first
 * bytes; picks a random slot of the array and frees the block there, timing
 * that free call alone; and puts the new block in the slot.  So the frees
 * come in random order and the heap keeps a steady live set, and the slow
 * calls -- a cache refill, a trip to the central lists, a fresh span from
 * the OS, a page fault -- show up in the tail.
 *
 * Latencies are kept in 1 ns histograms outside the heap (mmap), merged over
 * threads.  Reports p50/p99/p99.9/max of malloc and of free in ns, and the
 * cost of one clock_gettime pair (clock_ns), which every sample includes.
 */
#include <sys/mman.h>

#define BENCH_NAME "bench_latency"
#define BENCH_USAGE \
    "usage: bench_latency [iters=2000000] [min=8] [max=1024] [live=4096] [threads=1]\n" \
    "  p50/p99/p99.9/max ns of single malloc and free calls (clock_gettime around each)\n"
#include "bench_common.h"

#define HIST_NS 65536           /* exact buckets: 0 .. 65535 ns */
#define MAX_OVER 65536          /* slower samples kept one by one */

struct hist {
    uint64_t count[HIST_NS];
    uint64_t over[MAX_OVER];
    uint64_t n_over;            /* may exceed MAX_OVER: extra ones are lost */
    uint64_t n;
    uint64_t max;
};

struct worker {
    pthread_t tid;
    uint64_t rng;
    struct hist *hm, *hf;
    double start, end;
    char pad[64];
};

static unsigned long g_iters, g_live;
static size_t g_min, g_max;
static pthread_barrier_t g_barrier;

static struct hist *hist_new(void)
{
    void *p = mmap(NULL, sizeof(struct hist), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        perror("bench_latency: mmap");
        exit(1);
    }
    return p;
}

static inline void record(struct hist *h, uint64_t ns)
{
    h->n++;
    if (ns > h->max)
        h->max = ns;
    if (ns < HIST_NS) {
        h->count[ns]++;
    } else {
        if (h->n_over < MAX_OVER)
            h->over[h->n_over] = ns;
        h->n_over++;
    }
}

static void merge(struct hist *into, const struct hist *from)
{
    uint64_t i;

    for (i = 0; i < HIST_NS; i++)
        into->count[i] += from->count[i];
    for (i = 0; i < from->n_over && i < MAX_OVER; i++) {
        if (into->n_over < MAX_OVER)
            into->over[into->n_over] = from->over[i];
        into->n_over++;
    }
    into->n += from->n;
    if (from->max > into->max)
        into->max = from->max;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The smallest latency with at least q of the samples at or below it. */
static uint64_t quantile(const struct hist *h, double q)
{
    uint64_t want = (uint64_t)(q * (double)h->n + 0.999999), seen = 0, i, kept;

    if (want == 0)
        want = 1;
    for (i = 0; i < HIST_NS; i++) {
        seen += h->count[i];
        if (seen >= want)
            return i;
    }
    kept = h->n_over < MAX_OVER ? h->n_over : MAX_OVER;
    if (want - seen <= kept)
        return h->over[want - seen - 1];
    return h->max;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    unsigned char **live = calloc(g_live, sizeof(*live));
    uint64_t span = (uint64_t)(g_max - g_min) + 1;
    unsigned long i;

    if (live == NULL) {
        fprintf(stderr, "bench_latency: out of memory\n");
        abort();
    }
    for (i = 0; i < g_live; i++) {
        size_t size = g_min + (size_t)bench_below(bench_rand(&w->rng), span);
        live[i] = malloc(size);
        if (live[i] == NULL)
            abort();
        memset(live[i], 1, size < 16 ? size : 16);
    }

    pthread_barrier_wait(&g_barrier);
    w->start = (double)bench_now_ns() * 1e-9;
    for (i = 0; i < g_iters; i++) {
        uint64_t r = bench_rand(&w->rng);
        size_t size = g_min + (size_t)bench_below(r, span);
        uint64_t slot = bench_below(bench_rand(&w->rng), g_live);
        uint64_t t0, t1, t2, t3;
        unsigned char *p;

        t0 = bench_now_ns();
        p = malloc(size);
        t1 = bench_now_ns();
        if (p == NULL)
            bench_fail("malloc", size);
        memset(p, (int)(i & 0xff), size < 16 ? size : 16);
        t2 = bench_now_ns();
        free(live[slot]);
        t3 = bench_now_ns();
        live[slot] = p;
        record(w->hm, t1 - t0);
        record(w->hf, t3 - t2);
    }
    w->end = (double)bench_now_ns() * 1e-9;

    for (i = 0; i < g_live; i++)
        free(live[i]);
    free(live);
    return NULL;
}

/* Median cost of a back-to-back clock_gettime pair. */
static uint64_t clock_cost(void)
{
    static uint64_t d[4001];
    int i;

    for (i = 0; i < 4001; i++) {
        uint64_t a = bench_now_ns();
        uint64_t b = bench_now_ns();
        d[i] = b - a;
    }
    qsort(d, 4001, sizeof(d[0]), cmp_u64);
    return d[2000];
}

int main(int argc, char **argv)
{
    unsigned long threads, t;
    struct worker *w;
    struct hist *hm, *hf;
    double secs;
    uint64_t kept;
    long peak;

    g_iters = bench_arg_ul(argc, argv, 1, 2000000, 1, (unsigned long)1 << 40);
    g_min = bench_arg_ul(argc, argv, 2, 8, 1, (unsigned long)1 << 30);
    g_max = bench_arg_ul(argc, argv, 3, 1024, 1, (unsigned long)1 << 30);
    g_live = bench_arg_ul(argc, argv, 4, 4096, 1, 100000000);
    threads = bench_arg_ul(argc, argv, 5, 1, 1, 1024);
    if (argc > 6 || g_min > g_max)
        bench_usage(2);

    w = bench_workers_new(threads, sizeof(*w), &g_barrier);
    for (t = 0; t < threads; t++) {
        w[t].rng = 0x7A11ull + t * 1000003;
        w[t].hm = hist_new();
        w[t].hf = hist_new();
        bench_thread_start(&w[t].tid, run, &w[t]);
    }
    BENCH_JOIN(w, threads);
    secs = BENCH_WALL_S(w, threads);

    hm = w[0].hm;
    hf = w[0].hf;
    for (t = 1; t < threads; t++) {
        merge(hm, w[t].hm);
        merge(hf, w[t].hf);
    }
    kept = hm->n_over < MAX_OVER ? hm->n_over : MAX_OVER;
    qsort(hm->over, kept, sizeof(hm->over[0]), cmp_u64);
    kept = hf->n_over < MAX_OVER ? hf->n_over : MAX_OVER;
    qsort(hf->over, kept, sizeof(hf->over[0]), cmp_u64);

    /* The peak is read before clock_cost() runs: its qsort may allocate. */
    peak = bench_maxrss_kb();
    bench_result(peak,
                 "iters=%lu min=%zu max=%zu live=%lu threads=%lu time_s=%.4f "
                 "malloc_p50_ns=%llu malloc_p99_ns=%llu malloc_p999_ns=%llu malloc_max_ns=%llu "
                 "free_p50_ns=%llu free_p99_ns=%llu free_p999_ns=%llu free_max_ns=%llu "
                 "clock_ns=%llu",
                 g_iters, g_min, g_max, g_live, threads, secs,
                 (unsigned long long)quantile(hm, 0.50), (unsigned long long)quantile(hm, 0.99),
                 (unsigned long long)quantile(hm, 0.999), (unsigned long long)hm->max,
                 (unsigned long long)quantile(hf, 0.50), (unsigned long long)quantile(hf, 0.99),
                 (unsigned long long)quantile(hf, 0.999), (unsigned long long)hf->max,
                 (unsigned long long)clock_cost());
    free(w);
    return 0;
}
