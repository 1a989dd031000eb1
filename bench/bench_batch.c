/*
 * bench_batch - allocate a batch of blocks, then free them all.
 *
 *   bench_batch [count=10000] [size=64] [rounds=1000] [order=0]
 *
 * Each round allocates `count` blocks of `size` bytes (writing the first
 * bytes of each), then frees all of them: order=0 frees them in allocation
 * order (FIFO), order=1 in reverse (LIFO), order=2 in a shuffled order.
 * A thread cache sized for a few dozen blocks must go to its central lists
 * here, so this measures the refill and release paths as well as the fast
 * path.  Reports the time per malloc+free pair.
 */
#define BENCH_NAME "bench_batch"
#define BENCH_USAGE \
    "usage: bench_batch [count=10000] [size=64] [rounds=1000] [order=0]\n" \
    "  order: 0 free in allocation order, 1 reverse order, 2 shuffled\n"
#include "bench_common.h"

int main(int argc, char **argv)
{
    unsigned long count = bench_arg_ul(argc, argv, 1, 10000, 1, 100000000);
    size_t size = bench_arg_ul(argc, argv, 2, 64, 1, (unsigned long)1 << 30);
    unsigned long rounds = bench_arg_ul(argc, argv, 3, 1000, 1, (unsigned long)1 << 40);
    unsigned long order = bench_arg_ul(argc, argv, 4, 0, 0, 2);
    size_t head = size < 16 ? size : 16;
    unsigned char **blocks;
    unsigned long *perm = NULL;
    unsigned long r, i;
    uint64_t rng = 42;
    double t0, secs;

    if (argc > 5)
        bench_usage(2);
    blocks = malloc(count * sizeof(*blocks));
    if (blocks == NULL)
        return 1;
    if (order == 2) {
        perm = malloc(count * sizeof(*perm));
        if (perm == NULL)
            return 1;
        for (i = 0; i < count; i++)
            perm[i] = i;
        for (i = count - 1; i > 0; i--) {
            unsigned long j = (unsigned long)(bench_rand(&rng) % (i + 1));
            unsigned long t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
    }

    t0 = bench_now_s();
    for (r = 0; r < rounds; r++) {
        for (i = 0; i < count; i++) {
            unsigned char *p = bench_malloc(size);
            memset(p, (int)(i & 0xff), head);
            blocks[i] = p;
        }
        if (order == 0) {
            for (i = 0; i < count; i++)
                free(blocks[i]);
        } else if (order == 1) {
            for (i = count; i-- > 0;)
                free(blocks[i]);
        } else {
            for (i = 0; i < count; i++)
                free(blocks[perm[i]]);
        }
    }
    secs = bench_elapsed_s(t0);

    bench_result(bench_maxrss_kb(),
                 "count=%lu size=%zu rounds=%lu order=%lu time_s=%.4f ns=%.2f mops=%.2f",
                 count, size, rounds, order, secs, secs * 1e9 / ((double)rounds * (double)count),
                 (double)rounds * (double)count / secs / 1e6);
    free(perm);
    free(blocks);
    return 0;
}
