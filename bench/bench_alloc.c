/*
 * bench_alloc - single-thread latency of a malloc/free cycle at one size.
 *
 *   bench_alloc [size=64] [iters=20000000] [batch=1]
 *
 * Each cycle allocates `batch` blocks of `size` bytes, writes the first bytes
 * of each, then frees them in the same order.  With batch=1 this is the
 * hot malloc/free pair a thread cache serves from its free list; a larger
 * batch keeps several blocks live so the same block is not simply reused.
 * Reports the time per malloc+free pair.
 *
 *   bench_alloc size=64 iters=20000000 batch=1 time_s=0.1523 ns=15.23 mops=65.66 maxrss_kb=1500
 */
#define BENCH_NAME "bench_alloc"
#define BENCH_USAGE \
    "usage: bench_alloc [size=64] [iters=20000000] [batch=1]\n" \
    "  time of one malloc+free pair at a fixed size, single thread\n"
#include "bench_common.h"

#define MAX_BATCH 4096

int main(int argc, char **argv)
{
    size_t size = bench_arg_ul(argc, argv, 1, 64, 1, (unsigned long)1 << 30);
    unsigned long iters = bench_arg_ul(argc, argv, 2, 20000000, 1, (unsigned long)1 << 40);
    unsigned long batch = bench_arg_ul(argc, argv, 3, 1, 1, MAX_BATCH);
    size_t head = size < 16 ? size : 16;
    static unsigned char *blocks[MAX_BATCH];
    unsigned long rounds = (iters + batch - 1) / batch;
    unsigned long i, j;
    double t0, secs;

    if (argc > 4)
        bench_usage(2);

    /* Warm up: the first calls set up the allocator's per-thread state. */
    for (i = 0; i < 1000; i++) {
        unsigned char *p = bench_malloc(size);
        p[0] = 1;
        bench_escape(p);
        free(p);
    }

    t0 = bench_now_s();
    for (i = 0; i < rounds; i++) {
        for (j = 0; j < batch; j++) {
            unsigned char *p = bench_malloc(size);
            memset(p, (int)j, head);
            bench_escape(p);
            blocks[j] = p;
        }
        for (j = 0; j < batch; j++)
            free(blocks[j]);
    }
    secs = bench_elapsed_s(t0);
    iters = rounds * batch;

    bench_result(bench_maxrss_kb(), "size=%zu iters=%lu batch=%lu time_s=%.4f ns=%.2f mops=%.2f",
                 size, iters, batch, secs, secs * 1e9 / (double)iters, (double)iters / secs / 1e6);
    return 0;
}
