/*
 * bench_larson - a Larson-style server simulation.
 *
 *   bench_larson [threads=4] [generations=300] [ops=5000] [slots=1000] [min=8] [max=1024]
 *
 * Models a server whose worker threads come and go while the objects they
 * allocated live on.  There are `threads` lineages.  Each lineage owns an
 * array of `slots` blocks, first filled by the main thread.  A worker thread
 * runs `ops` steps; a step picks a random slot, checks and frees the block
 * there and puts a freshly allocated block of random size in [min,max] in
 * its place.  Then the worker starts its successor, hands it the array and
 * exits; after `generations` workers the lineage ends.  So most frees hit
 * blocks that another thread (often one that has already exited) allocated,
 * and the allocator must route memory back from remote and dead threads.
 *
 * Reports the wall time and the aggregate steps (a free plus a malloc) per
 * second over all lineages.
 */
#define BENCH_NAME "bench_larson"
#define BENCH_USAGE \
    "usage: bench_larson [threads=4] [generations=300] [ops=5000] [slots=1000] [min=8] [max=1024]\n" \
    "  `threads` lineages of `generations` short-lived workers, each doing `ops`\n" \
    "  free+malloc steps on an array of `slots` blocks inherited from its predecessor\n"
#include "bench_common.h"

struct block {
    unsigned char *p;
    uint32_t size;
    unsigned char tag;
};

struct lineage {
    unsigned index;
    unsigned long generation;
    uint64_t rng;
    struct block *slots;
    pthread_t last;         /* the current worker; joined by its successor */
    int has_last;
};

static unsigned long g_generations, g_ops, g_slots;
static size_t g_min, g_max;
static pthread_mutex_t g_done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_done_cond = PTHREAD_COND_INITIALIZER;
static unsigned long g_done;

static void fill(struct block *b, uint64_t *rng)
{
    uint64_t r = bench_rand(rng);
    size_t size = g_min + (size_t)bench_below(r, (uint64_t)(g_max - g_min) + 1);

    b->p = bench_malloc(size);
    b->size = (uint32_t)size;
    b->tag = (unsigned char)(r >> 56);
    memset(b->p, b->tag, size < 32 ? size : 32);
    b->p[size - 1] = b->tag;
}

static void release(struct block *b)
{
    if (b->p[0] != b->tag || b->p[b->size - 1] != b->tag) {
        fprintf(stderr, "bench_larson: block %p of %u bytes was overwritten\n",
                (void *)b->p, b->size);
        abort();
    }
    free(b->p);
    b->p = NULL;
}

static void *worker(void *arg)
{
    struct lineage *l = arg;
    unsigned long i;

    /* Reap the predecessor, which started this thread just before exiting. */
    if (l->has_last)
        pthread_join(l->last, NULL);
    l->last = pthread_self();
    l->has_last = 1;

    for (i = 0; i < g_ops; i++) {
        struct block *b = &l->slots[bench_below(bench_rand(&l->rng), g_slots)];
        release(b);
        fill(b, &l->rng);
    }

    if (++l->generation < g_generations) {
        pthread_t next;
        if (pthread_create(&next, NULL, worker, l) != 0) {
            fprintf(stderr, "bench_larson: pthread_create failed\n");
            abort();
        }
        /* The successor joins this thread; nothing here touches l now. */
        return NULL;
    }

    pthread_mutex_lock(&g_done_lock);
    g_done++;
    pthread_cond_signal(&g_done_cond);
    pthread_mutex_unlock(&g_done_lock);
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long threads = bench_arg_ul(argc, argv, 1, 4, 1, 1024);
    struct lineage *ls;
    unsigned long t, i;
    double t0, secs, steps;

    g_generations = bench_arg_ul(argc, argv, 2, 300, 1, 1000000);
    g_ops = bench_arg_ul(argc, argv, 3, 5000, 1, (unsigned long)1 << 40);
    g_slots = bench_arg_ul(argc, argv, 4, 1000, 1, 10000000);
    g_min = bench_arg_ul(argc, argv, 5, 8, 1, (unsigned long)1 << 30);
    g_max = bench_arg_ul(argc, argv, 6, 1024, 1, (unsigned long)1 << 30);
    if (argc > 7 || g_min > g_max)
        bench_usage(2);

    ls = calloc(threads, sizeof(*ls));
    if (ls == NULL)
        return 1;
    for (t = 0; t < threads; t++) {
        ls[t].index = (unsigned)t;
        ls[t].rng = 0x1A450Bull + t * 104729;
        ls[t].slots = calloc(g_slots, sizeof(*ls[t].slots));
        if (ls[t].slots == NULL)
            return 1;
        for (i = 0; i < g_slots; i++)
            fill(&ls[t].slots[i], &ls[t].rng);
    }

    t0 = bench_now_s();
    for (t = 0; t < threads; t++) {
        pthread_t tid;
        bench_thread_start(&tid, worker, &ls[t]);
    }
    pthread_mutex_lock(&g_done_lock);
    while (g_done < threads)
        pthread_cond_wait(&g_done_cond, &g_done_lock);
    pthread_mutex_unlock(&g_done_lock);
    secs = bench_elapsed_s(t0);
    for (t = 0; t < threads; t++)
        pthread_join(ls[t].last, NULL);

    steps = (double)threads * (double)g_generations * (double)g_ops;
    bench_result(bench_maxrss_kb(), "threads=%lu generations=%lu ops=%lu slots=%lu min=%zu max=%zu "
                 "time_s=%.4f mops=%.3f",
                 threads, g_generations, g_ops, g_slots, g_min, g_max, secs, steps / secs / 1e6);

    for (t = 0; t < threads; t++) {
        for (i = 0; i < g_slots; i++)
            release(&ls[t].slots[i]);
        free(ls[t].slots);
    }
    free(ls);
    return 0;
}
