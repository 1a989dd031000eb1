/*
 * bench_vs_malloc - malloc+free against calloc+free under one allocator.
 *
 *   bench_vs_malloc [size=4096] [iters=1000000] [batch=8]
 *
 * Two timed loops over the same sizes and counts: one allocates with malloc
 * and writes one byte per 64 bytes of the block (so a block costs what it
 * costs to use it), the other allocates with calloc, writes one byte per 64
 * bytes as well and checks the byte next to it is zero.  `batch` blocks are
 * live at a time.
 * The difference is what calloc's zeroing costs in this allocator; an
 * allocator that knows a block came fresh from the OS can skip it.
 *
 *   bench_vs_malloc size=4096 iters=1000000 batch=8 malloc_ns=... calloc_ns=...
 *       calloc_over_malloc=... time_s=... maxrss_kb=...
 */
#define BENCH_NAME "bench_vs_malloc"
#define BENCH_USAGE \
    "usage: bench_vs_malloc [size=4096] [iters=1000000] [batch=8]\n" \
    "  time per malloc+free and per calloc+free cycle at a fixed size\n"
#include "bench_common.h"

#define MAX_BATCH 1024

static unsigned char *blocks[MAX_BATCH];

static double run_malloc(size_t size, unsigned long rounds, unsigned long batch)
{
    double t0 = bench_now_s();
    unsigned long i, j;
    size_t off;

    for (i = 0; i < rounds; i++) {
        for (j = 0; j < batch; j++) {
            unsigned char *p = bench_malloc(size);

            for (off = 0; off < size; off += 64)
                p[off] = (unsigned char)off;
            bench_escape(p);
            blocks[j] = p;
        }
        for (j = 0; j < batch; j++)
            free(blocks[j]);
    }
    return bench_now_s() - t0;
}

static double run_calloc(size_t size, unsigned long rounds, unsigned long batch)
{
    double t0 = bench_now_s();
    unsigned long i, j;
    size_t off;
    unsigned sum = 0;

    for (i = 0; i < rounds; i++) {
        for (j = 0; j < batch; j++) {
            volatile unsigned char *p = calloc(1, size);
            if (p == NULL)
                bench_fail("calloc", size);
            /* Write first (a read of an untouched page would map the shared
             * zero page and fault again on the write), then check a byte
             * next to the one written. */
            for (off = 0; off + 1 < size; off += 64) {
                p[off + 1] = (unsigned char)off;
                sum += p[off];
            }
            blocks[j] = (unsigned char *)p;
        }
        for (j = 0; j < batch; j++)
            free(blocks[j]);
    }
    if (sum != 0) {
        fprintf(stderr, "bench_vs_malloc: calloc returned memory that is not zero\n");
        abort();
    }
    return bench_now_s() - t0;
}

int main(int argc, char **argv)
{
    size_t size = bench_arg_ul(argc, argv, 1, 4096, 1, (unsigned long)1 << 32);
    unsigned long iters = bench_arg_ul(argc, argv, 2, 1000000, 1, (unsigned long)1 << 40);
    unsigned long batch = bench_arg_ul(argc, argv, 3, 8, 1, MAX_BATCH);
    unsigned long rounds, n;
    double tm, tc;

    if (argc > 4)
        bench_usage(2);
    rounds = (iters + batch - 1) / batch;
    n = rounds * batch;

    /* Warm-up, then alternate so both loops see the same machine state. */
    run_malloc(size, rounds / 20 + 1, batch);
    run_calloc(size, rounds / 20 + 1, batch);
    tm = run_malloc(size, rounds / 2, batch);
    tc = run_calloc(size, rounds / 2, batch);
    tm += run_malloc(size, rounds - rounds / 2, batch);
    tc += run_calloc(size, rounds - rounds / 2, batch);
    if (tm <= 0)
        tm = 1e-9;
    if (tc <= 0)
        tc = 1e-9;

    bench_result(bench_maxrss_kb(), "size=%zu iters=%lu batch=%lu malloc_ns=%.2f calloc_ns=%.2f "
                 "calloc_over_malloc=%.3f time_s=%.4f",
                 size, n, batch, tm * 1e9 / (double)n, tc * 1e9 / (double)n, tc / tm, tm + tc);
    return 0;
}
