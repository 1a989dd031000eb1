/*
 * tb - the basic multi-threaded allocator throughput benchmark.
 *
 *   tb <threads> <iters_per_thread> <min_size> <max_size> <keep_percent>
 *
 * Every thread runs `iters` iterations of:
 *   - allocate a size drawn uniformly from [min_size, max_size];
 *   - touch it: write the first min(size, 64) bytes, one byte in every
 *     4096-byte page of the block and its last byte, so page faults and the
 *     resident set are real;
 *   - with probability keep_percent, keep it in a per-thread ring of 1024
 *     live objects (the oldest is freed first when the ring is full);
 *     otherwise free it at once.
 * A block's first and last bytes are checked just before it is freed, so tb
 * also catches an allocator that hands out overlapping memory.  At the end
 * each thread frees what its ring still holds.
 *
 * Each thread has its own PRNG seeded from its index, so a run is repeatable.
 * All threads start together at a barrier; the wall time covers everything
 * from the barrier to the last join.  tb calls only malloc and free, so the
 * same binary measures any allocator through LD_PRELOAD.
 *
 * Output, one line:
 *   tb threads=8 iters=300000 min=8 max=256 keep=75 time_s=0.412 mops=5.83 maxrss_kb=4100
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define RING_SLOTS 1024
#define PAGE 4096
#define HEAD_BYTES 64

struct obj {
    unsigned char *p;
    size_t size;
    unsigned char tag;
};

struct worker {
    pthread_t tid;
    unsigned index;
    uint64_t rng;
    struct obj *ring;
    unsigned head;   /* oldest object */
    unsigned count;  /* objects in the ring */
    double start;    /* when this thread left the barrier */
    char pad[64];
};

static unsigned long g_iters;
static size_t g_min, g_max;
static unsigned g_keep;
static pthread_barrier_t g_start;

__attribute__((noreturn)) static void usage(void)
{
    fprintf(stderr,
            "usage: tb <threads> <iters_per_thread> <min_size> <max_size> <keep_percent>\n"
            "  threads 1..4096, iters >= 0, 1 <= min_size <= max_size, keep_percent 0..100\n"
            "  example: tb 8 300000 8 256 75\n");
    exit(2);
}

static int parse_ulong(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    unsigned long v;

    if (s == NULL || *s == '\0' || *s == '-')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* splitmix64: a small, fast generator with good statistical quality. */
static inline uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) without a division. */
static inline uint64_t below(uint64_t r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void touch(unsigned char *p, size_t size, unsigned char tag)
{
    size_t head = size < HEAD_BYTES ? size : HEAD_BYTES;
    size_t off;

    memset(p, tag, head);
    for (off = PAGE; off < size; off += PAGE)
        p[off] = tag;
    p[size - 1] = tag;
}

static void check_and_free(struct worker *w, const struct obj *o)
{
    if (o->p[0] != o->tag || o->p[o->size - 1] != o->tag) {
        fprintf(stderr,
                "tb: thread %u: block %p of %zu bytes was overwritten "
                "(expected 0x%02x, found 0x%02x/0x%02x)\n",
                w->index, (void *)o->p, o->size, o->tag, o->p[0], o->p[o->size - 1]);
        abort();
    }
    free(o->p);
}

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    uint64_t span = (uint64_t)(g_max - g_min) + 1;
    unsigned long i;

    pthread_barrier_wait(&g_start);
    w->start = now_s();

    for (i = 0; i < g_iters; i++) {
        uint64_t r = next_rand(&w->rng);
        struct obj o;

        o.size = g_min + (size_t)below(r, span);
        o.tag = (unsigned char)(r >> 56) | 1u;
        o.p = malloc(o.size);
        if (o.p == NULL) {
            fprintf(stderr, "tb: thread %u: malloc(%zu) failed\n", w->index, o.size);
            abort();
        }
        touch(o.p, o.size, o.tag);

        if (below(next_rand(&w->rng), 100) < g_keep) {
            if (w->count == RING_SLOTS) {
                check_and_free(w, &w->ring[w->head]);
                w->head = (w->head + 1) % RING_SLOTS;
                w->count--;
            }
            w->ring[(w->head + w->count) % RING_SLOTS] = o;
            w->count++;
        } else {
            check_and_free(w, &o);
        }
    }

    while (w->count > 0) {
        check_and_free(w, &w->ring[w->head]);
        w->head = (w->head + 1) % RING_SLOTS;
        w->count--;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long threads, iters, min_size, max_size, keep;
    struct worker *workers;
    struct rusage ru;
    double t0, t1, secs;
    unsigned long t;
    int rc;

    if (argc != 6 ||
        parse_ulong(argv[1], 1, 4096, &threads) != 0 ||
        parse_ulong(argv[2], 0, ULONG_MAX, &iters) != 0 ||
        parse_ulong(argv[3], 1, (unsigned long)1 << 40, &min_size) != 0 ||
        parse_ulong(argv[4], 1, (unsigned long)1 << 40, &max_size) != 0 ||
        parse_ulong(argv[5], 0, 100, &keep) != 0 ||
        min_size > max_size)
        usage();

    g_iters = iters;
    g_min = min_size;
    g_max = max_size;
    g_keep = (unsigned)keep;

    /* The harness's own memory comes from the allocator under test too, but
     * all of it is allocated before the clock starts. */
    workers = calloc(threads, sizeof(*workers));
    if (workers == NULL) {
        fprintf(stderr, "tb: out of memory\n");
        return 1;
    }
    rc = pthread_barrier_init(&g_start, NULL, (unsigned)threads + 1);
    if (rc != 0) {
        fprintf(stderr, "tb: pthread_barrier_init: %s\n", strerror(rc));
        return 1;
    }
    for (t = 0; t < threads; t++) {
        struct worker *w = &workers[t];

        w->index = (unsigned)t;
        w->rng = 0x5EEDull * (t + 1) ^ 0xD1B54A32D192ED03ull;
        w->ring = calloc(RING_SLOTS, sizeof(*w->ring));
        if (w->ring == NULL) {
            fprintf(stderr, "tb: out of memory\n");
            return 1;
        }
        rc = pthread_create(&w->tid, NULL, run_worker, w);
        if (rc != 0) {
            fprintf(stderr, "tb: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }

    /* The clock starts when the first thread leaves the barrier: on a busy
     * machine the main thread may run only after the workers have started. */
    pthread_barrier_wait(&g_start);
    t0 = now_s();
    for (t = 0; t < threads; t++)
        pthread_join(workers[t].tid, NULL);
    t1 = now_s();
    for (t = 0; t < threads; t++)
        if (workers[t].start < t0)
            t0 = workers[t].start;

    secs = t1 - t0;
    if (secs <= 0)
        secs = 1e-9;
    getrusage(RUSAGE_SELF, &ru);
    printf("tb threads=%lu iters=%lu min=%lu max=%lu keep=%lu time_s=%.3f mops=%.2f maxrss_kb=%ld\n",
           threads, iters, min_size, max_size, keep, secs,
           (double)threads * (double)iters / secs / 1e6, ru.ru_maxrss);

    for (t = 0; t < threads; t++)
        free(workers[t].ring);
    free(workers);
    pthread_barrier_destroy(&g_start);
    return 0;
}
