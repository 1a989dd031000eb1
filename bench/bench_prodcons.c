/*
 * bench_prodcons - producer/consumer: blocks freed by another thread.
 *
 *   bench_prodcons [pairs=1] [items=3000000] [min=16] [max=512] [queue=1024]
 *
 * Each of `pairs` producer threads allocates `items` blocks of random size
 * in [min,max], writes a tag into each and pushes it through a lock-free
 * single-producer/single-consumer ring (`queue` slots) to its consumer, which
 * checks the tag and frees the block.  Every free is a remote free: the
 * allocator must return the memory to the thread (or span) it came from,
 * and the producer keeps draining its cache while the consumer keeps
 * filling its own.  A full or empty ring spins briefly, then yields.
 *
 * Reports the wall time and the blocks passed per second over all pairs.
 */
#include <sched.h>
#include <stdatomic.h>

#define BENCH_NAME "bench_prodcons"
#define BENCH_USAGE \
    "usage: bench_prodcons [pairs=1] [items=3000000] [min=16] [max=512] [queue=1024]\n" \
    "  producers malloc, consumers free (through SPSC rings); queue is a power of 2\n"
#include "bench_common.h"

struct ring {
    _Alignas(64) atomic_ulong head;   /* next slot the consumer reads */
    _Alignas(64) atomic_ulong tail;   /* next slot the producer writes */
    _Alignas(64) unsigned char **slot;
    unsigned long mask;
    uint64_t rng;
    double start;
    pthread_t prod, cons;
};

static unsigned long g_items;
static size_t g_min, g_max;
static pthread_barrier_t g_barrier;

static inline void backoff(unsigned *spins)
{
    if (++*spins < 64) {
        __asm__ volatile("" ::: "memory");
    } else {
        *spins = 0;
        sched_yield();
    }
}

static void *producer(void *arg)
{
    struct ring *q = arg;
    uint64_t span = (uint64_t)(g_max - g_min) + 1;
    unsigned long i, tail = 0, head = 0;
    unsigned spins = 0;

    pthread_barrier_wait(&g_barrier);
    q->start = bench_now_s();
    for (i = 0; i < g_items; i++) {
        uint64_t r = bench_rand(&q->rng);
        size_t size = g_min + (size_t)bench_below(r, span);
        unsigned char *p = bench_malloc(size);

        /* Layout: size in the first 4 bytes (when it fits), then a tag. */
        memset(p, (int)(i & 0xff), size < 16 ? size : 16);
        if (size >= 8) {
            uint32_t s32 = (uint32_t)size;
            memcpy(p, &s32, 4);
        }
        p[size - 1] = (unsigned char)(i & 0xff);

        while (tail - head > q->mask) {
            head = atomic_load_explicit(&q->head, memory_order_acquire);
            if (tail - head > q->mask)
                backoff(&spins);
        }
        q->slot[tail & q->mask] = p;
        tail++;
        atomic_store_explicit(&q->tail, tail, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct ring *q = arg;
    unsigned long i, head = 0, tail = 0;
    unsigned spins = 0;

    pthread_barrier_wait(&g_barrier);
    for (i = 0; i < g_items; i++) {
        unsigned char *p;

        while (head == tail) {
            tail = atomic_load_explicit(&q->tail, memory_order_acquire);
            if (head == tail)
                backoff(&spins);
        }
        p = q->slot[head & q->mask];
        if (g_min >= 8) {
            uint32_t s32;
            memcpy(&s32, p, 4);
            if (s32 < g_min || s32 > g_max || p[4] != (unsigned char)(i & 0xff) ||
                p[s32 - 1] != (unsigned char)(i & 0xff)) {
                fprintf(stderr, "bench_prodcons: block %p was overwritten\n", (void *)p);
                abort();
            }
        }
        free(p);
        head++;
        atomic_store_explicit(&q->head, head, memory_order_release);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long pairs = bench_arg_ul(argc, argv, 1, 1, 1, 1024);
    unsigned long qsize, t;
    struct ring *qs;
    double t0, secs;

    g_items = bench_arg_ul(argc, argv, 2, 3000000, 1, (unsigned long)1 << 40);
    g_min = bench_arg_ul(argc, argv, 3, 16, 1, (unsigned long)1 << 30);
    g_max = bench_arg_ul(argc, argv, 4, 512, 1, (unsigned long)1 << 30);
    qsize = bench_arg_ul(argc, argv, 5, 1024, 2, (unsigned long)1 << 24);
    if (argc > 6 || g_min > g_max || (qsize & (qsize - 1)) != 0)
        bench_usage(2);

    if (posix_memalign((void **)&qs, 64, pairs * sizeof(*qs)) != 0)
        return 1;
    memset(qs, 0, pairs * sizeof(*qs));
    if (pthread_barrier_init(&g_barrier, NULL, (unsigned)(2 * pairs + 1)) != 0)
        return 1;
    for (t = 0; t < pairs; t++) {
        atomic_init(&qs[t].head, 0);
        atomic_init(&qs[t].tail, 0);
        qs[t].slot = calloc(qsize, sizeof(*qs[t].slot));
        qs[t].mask = qsize - 1;
        qs[t].rng = 0xBEEFull + t * 31337;
        if (qs[t].slot == NULL ||
            pthread_create(&qs[t].prod, NULL, producer, &qs[t]) != 0 ||
            pthread_create(&qs[t].cons, NULL, consumer, &qs[t]) != 0) {
            fprintf(stderr, "bench_prodcons: setup failed\n");
            return 1;
        }
    }
    pthread_barrier_wait(&g_barrier);
    t0 = bench_now_s();
    for (t = 0; t < pairs; t++) {
        pthread_join(qs[t].prod, NULL);
        pthread_join(qs[t].cons, NULL);
    }
    secs = bench_now_s();
    /* Start the clock when the first producer started: the main thread may
     * get a CPU only after the workers have been running for a while. */
    for (t = 0; t < pairs; t++)
        if (qs[t].start < t0)
            t0 = qs[t].start;
    secs -= t0;
    if (secs <= 0)
        secs = 1e-9;

    bench_result(bench_maxrss_kb(),
                 "pairs=%lu items=%lu min=%zu max=%zu queue=%lu time_s=%.4f mops=%.3f",
                 pairs, g_items, g_min, g_max, qsize, secs,
                 (double)pairs * (double)g_items / secs / 1e6);
    for (t = 0; t < pairs; t++)
        free(qs[t].slot);
    free(qs);
    pthread_barrier_destroy(&g_barrier);
    return 0;
}
