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
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

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

static const char *const usage_text =
    "usage: bench_latency [iters=2000000] [min=8] [max=1024] [live=4096] [threads=1]\n"
    "  p50/p99/p99.9/max ns of single malloc and free calls (clock_gettime around each)\n";

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
        fprintf(stderr, "bench_latency: bad argument %d: '%s' (want %lu..%lu)\n",
                i, argv[i], lo, hi);
        usage(2);
    }
    return v;
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

static inline uint64_t below(uint64_t r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

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
        size_t size = g_min + (size_t)below(next_rand(&w->rng), span);
        live[i] = malloc(size);
        if (live[i] == NULL)
            abort();
        memset(live[i], 1, size < 16 ? size : 16);
    }

    pthread_barrier_wait(&g_barrier);
    w->start = (double)now_ns() * 1e-9;
    for (i = 0; i < g_iters; i++) {
        uint64_t r = next_rand(&w->rng);
        size_t size = g_min + (size_t)below(r, span);
        uint64_t slot = below(next_rand(&w->rng), g_live);
        uint64_t t0, t1, t2, t3;
        unsigned char *p;

        t0 = now_ns();
        p = malloc(size);
        t1 = now_ns();
        if (p == NULL) {
            fprintf(stderr, "bench_latency: malloc(%zu) failed\n", size);
            abort();
        }
        memset(p, (int)(i & 0xff), size < 16 ? size : 16);
        t2 = now_ns();
        free(live[slot]);
        t3 = now_ns();
        live[slot] = p;
        record(w->hm, t1 - t0);
        record(w->hf, t3 - t2);
    }
    w->end = (double)now_ns() * 1e-9;

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
        uint64_t a = now_ns();
        uint64_t b = now_ns();
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
    double t0, t1;
    uint64_t kept;

    g_iters = arg_ul(argc, argv, 1, 2000000, 1, (unsigned long)1 << 40);
    g_min = arg_ul(argc, argv, 2, 8, 1, (unsigned long)1 << 30);
    g_max = arg_ul(argc, argv, 3, 1024, 1, (unsigned long)1 << 30);
    g_live = arg_ul(argc, argv, 4, 4096, 1, 100000000);
    threads = arg_ul(argc, argv, 5, 1, 1, 1024);
    if (argc > 6 || g_min > g_max)
        usage(2);

    w = calloc(threads, sizeof(*w));
    if (w == NULL || pthread_barrier_init(&g_barrier, NULL, (unsigned)threads) != 0)
        return 1;
    for (t = 0; t < threads; t++) {
        w[t].rng = 0x7A11ull + t * 1000003;
        w[t].hm = hist_new();
        w[t].hf = hist_new();
        if (pthread_create(&w[t].tid, NULL, run, &w[t]) != 0) {
            fprintf(stderr, "bench_latency: pthread_create failed\n");
            return 1;
        }
    }
    for (t = 0; t < threads; t++)
        pthread_join(w[t].tid, NULL);

    t0 = w[0].start;
    t1 = w[0].end;
    hm = w[0].hm;
    hf = w[0].hf;
    for (t = 1; t < threads; t++) {
        if (w[t].start < t0)
            t0 = w[t].start;
        if (w[t].end > t1)
            t1 = w[t].end;
        merge(hm, w[t].hm);
        merge(hf, w[t].hf);
    }
    kept = hm->n_over < MAX_OVER ? hm->n_over : MAX_OVER;
    qsort(hm->over, kept, sizeof(hm->over[0]), cmp_u64);
    kept = hf->n_over < MAX_OVER ? hf->n_over : MAX_OVER;
    qsort(hf->over, kept, sizeof(hf->over[0]), cmp_u64);

    printf("bench_latency iters=%lu min=%zu max=%zu live=%lu threads=%lu time_s=%.4f "
           "malloc_p50_ns=%llu malloc_p99_ns=%llu malloc_p999_ns=%llu malloc_max_ns=%llu "
           "free_p50_ns=%llu free_p99_ns=%llu free_p999_ns=%llu free_max_ns=%llu "
           "clock_ns=%llu maxrss_kb=%ld\n",
           g_iters, g_min, g_max, g_live, threads, t1 - t0,
           (unsigned long long)quantile(hm, 0.50), (unsigned long long)quantile(hm, 0.99),
           (unsigned long long)quantile(hm, 0.999), (unsigned long long)hm->max,
           (unsigned long long)quantile(hf, 0.50), (unsigned long long)quantile(hf, 0.99),
           (unsigned long long)quantile(hf, 0.999), (unsigned long long)hf->max,
           (unsigned long long)clock_cost(), maxrss_kb());
    free(w);
    return 0;
}
