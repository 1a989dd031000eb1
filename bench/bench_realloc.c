/*
 * bench_realloc - buffers growing by realloc, interleaved.
 *
 *   bench_realloc [mode=0] [bufs=32] [max=65536] [step=64] [rounds=100]
 *
 * `bufs` buffers grow in turn (one realloc each, round robin), so a buffer's
 * neighbour is usually another growing buffer and in-place growth is not
 * free.  mode 0 (append): every realloc adds `step` bytes, which are then
 * written, like a string or vector being appended to, until `max` bytes.
 * mode 1 (geometric): every realloc grows the buffer by half (starting at
 * `step` bytes) up to `max`, writing one byte in each new page and the new
 * last byte -- the path large vectors take, where an allocator can move
 * pages (mremap) instead of copying.  Every realloc checks that the first
 * and the old last byte survived.  After each round all buffers are freed.
 *
 * Reports the time and the time per realloc.
 */
#define BENCH_NAME "bench_realloc"
#define BENCH_USAGE \
    "usage: bench_realloc [mode=0] [bufs=32] [max=65536] [step=64] [rounds=100]\n" \
    "  mode 0: append `step` bytes per realloc up to `max`\n" \
    "  mode 1: grow by half per realloc from `step` bytes up to `max`\n"
#include "bench_common.h"

struct buf {
    unsigned char *p;
    size_t size;
    unsigned char tag;
};

/* Grow b to n bytes; write the new part (all of it, or sparsely). */
static void grow(struct buf *b, size_t n, int sparse)
{
    size_t old = b->size, off;
    unsigned char *p = realloc(b->p, n);

    if (p == NULL)
        bench_fail("realloc", n);
    if (old > 0 && (p[0] != b->tag || p[old - 1] != b->tag)) {
        fprintf(stderr, "bench_realloc: realloc from %zu to %zu bytes lost the contents\n", old, n);
        abort();
    }
    if (!sparse) {
        memset(p + old, b->tag, n - old);
    } else {
        if (old == 0)
            p[0] = b->tag;
        for (off = (old + 4095) & ~(size_t)4095; off < n; off += 4096)
            p[off] = b->tag;
        p[n - 1] = b->tag;
    }
    b->p = p;
    b->size = n;
}

int main(int argc, char **argv)
{
    unsigned long mode = bench_arg_ul(argc, argv, 1, 0, 0, 1);
    unsigned long nbufs = bench_arg_ul(argc, argv, 2, 32, 1, 1000000);
    size_t max = bench_arg_ul(argc, argv, 3, 65536, 1, (unsigned long)1 << 40);
    size_t step = bench_arg_ul(argc, argv, 4, 64, 1, (unsigned long)1 << 40);
    unsigned long rounds = bench_arg_ul(argc, argv, 5, 100, 1, (unsigned long)1 << 30);
    unsigned long r, i, reallocs = 0;
    struct buf *bufs;
    double t0, secs;
    int growing;

    if (argc > 6)
        bench_usage(2);
    bufs = calloc(nbufs, sizeof(*bufs));
    if (bufs == NULL)
        return 1;

    t0 = bench_now_s();
    for (r = 0; r < rounds; r++) {
        for (i = 0; i < nbufs; i++) {
            bufs[i].p = NULL;
            bufs[i].size = 0;
            bufs[i].tag = (unsigned char)(i * 7 + r + 1);
        }
        do {
            growing = 0;
            for (i = 0; i < nbufs; i++) {
                struct buf *b = &bufs[i];
                size_t n;

                if (b->size >= max)
                    continue;
                if (mode == 0)
                    n = b->size + step;
                else
                    n = b->size == 0 ? step : b->size + b->size / 2 + 1;
                if (n > max)
                    n = max;
                grow(b, n, mode == 1);
                reallocs++;
                growing = 1;
            }
        } while (growing);
        for (i = 0; i < nbufs; i++)
            free(bufs[i].p);
    }
    secs = bench_elapsed_s(t0);

    bench_result(bench_maxrss_kb(),
                 "mode=%s bufs=%lu max=%zu step=%zu rounds=%lu reallocs=%lu time_s=%.4f ns=%.1f",
                 mode == 0 ? "append" : "geometric", nbufs, max, step, rounds, reallocs, secs,
                 secs * 1e9 / (double)reallocs);
    free(bufs);
    return 0;
}
