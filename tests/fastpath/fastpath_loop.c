/*
 * fastpath_loop.c - the loop that tests/fastpath/count.sh counts with
 * callgrind to measure the instructions of malloc/free's fast path.
 *
 *   fastpath_loop <alloc|noop> <single|batch> <size> <pairs>
 *
 *   single  malloc(size) then free at once, `pairs` times;
 *   batch   malloc 1000 objects, then free the 1000, pairs/1000 times;
 *   alloc   calls the process's malloc and free (through the PLT, so that
 *           LD_PRELOAD decides which allocator runs);
 *   noop    the same loops calling two functions that do nothing, through
 *           volatile function pointers like the PLT's indirect jump: this
 *           measures the loop's own instructions, to be subtracted.
 *
 * 1000 warm-up pairs run first so that one-time initialisation (and lazy
 * binding) is not counted; count.sh also takes the difference of runs with
 * 1M and 2M pairs, which cancels any fixed cost.
 *
 * Built without mempool: cc -O2 fastpath_loop.c -o fastpath_loop -ldl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 1000

/* Keep the no-op functions real calls: gcc's noipa also stops it from
 * using what it knows of their bodies; clang has no such attribute. */
#ifdef __clang__
#define NOOP_FN __attribute__((noinline))
#else
#define NOOP_FN __attribute__((noinline, noipa))
#endif

static void *batch_slots[BATCH];
static unsigned char noop_block[64] __attribute__((aligned(16)));

NOOP_FN static void *noop_malloc(size_t n)
{
    __asm__ volatile("" : : "r"(n) : "memory");
    return noop_block;
}

NOOP_FN static void noop_free(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

static void *(*volatile noop_malloc_fp)(size_t) = noop_malloc;
static void (*volatile noop_free_fp)(void *) = noop_free;

/* Keep p alive as far as the compiler knows, at no instruction cost, so
 * that malloc/free pairs are not optimised away. */
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

__attribute__((noinline)) static void run_alloc_single(size_t size, long pairs)
{
    for (long i = 0; i < pairs; i++) {
        void *p = malloc(size);
        ESCAPE(p);
        free(p);
    }
}

__attribute__((noinline)) static void run_alloc_batch(size_t size, long rounds)
{
    for (long r = 0; r < rounds; r++) {
        for (int j = 0; j < BATCH; j++) {
            void *p = malloc(size);
            ESCAPE(p);
            batch_slots[j] = p;
        }
        for (int j = 0; j < BATCH; j++)
            free(batch_slots[j]);
    }
}

__attribute__((noinline)) static void run_noop_single(size_t size, long pairs)
{
    for (long i = 0; i < pairs; i++) {
        void *p = noop_malloc_fp(size);
        ESCAPE(p);
        noop_free_fp(p);
    }
}

__attribute__((noinline)) static void run_noop_batch(size_t size, long rounds)
{
    for (long r = 0; r < rounds; r++) {
        for (int j = 0; j < BATCH; j++) {
            void *p = noop_malloc_fp(size);
            ESCAPE(p);
            batch_slots[j] = p;
        }
        for (int j = 0; j < BATCH; j++)
            noop_free_fp(batch_slots[j]);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: fastpath_loop <alloc|noop> <single|batch> <size> <pairs>\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc != 5)
        usage();
    int alloc = !strcmp(argv[1], "alloc");
    if (!alloc && strcmp(argv[1], "noop"))
        usage();
    int batch = !strcmp(argv[2], "batch");
    if (!batch && strcmp(argv[2], "single"))
        usage();
    char *end;
    size_t size = strtoul(argv[3], &end, 0);
    if (*end)
        usage();
    long pairs = strtol(argv[4], &end, 0);
    if (*end || pairs < 0)
        usage();

    /* warm-up: 1000 pairs of the same pattern */
    if (alloc) {
        if (batch)
            run_alloc_batch(size, 1);
        else
            run_alloc_single(size, BATCH);
    } else {
        if (batch)
            run_noop_batch(size, 1);
        else
            run_noop_single(size, BATCH);
    }

    if (alloc) {
        if (batch)
            run_alloc_batch(size, pairs / BATCH);
        else
            run_alloc_single(size, pairs);
    } else {
        if (batch)
            run_noop_batch(size, pairs / BATCH);
        else
            run_noop_single(size, pairs);
    }
    return 0;
}
