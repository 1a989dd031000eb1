/*
 * bench_frag - fragmentation: many sizes, free most, allocate again.
 *
 *   bench_frag [target_mb=64] [cycles=6] [keep_percent=10]
 *
 * Cycle 0 allocates blocks until `target_mb` MiB are live.  Every later
 * cycle first frees a random (100 - keep_percent)% of the live blocks, so
 * the survivors stay scattered over the pages, then allocates until the
 * target is live again -- each cycle from a different size range (log-
 * uniform within 32-256 B, 256 B-2 KiB, 32 B-4 KiB, 2-16 KiB, 64-512 B,
 * 4-64 KiB, in turn), so the new blocks often cannot simply take the
 * places of the old ones.  Every page of every block is written.  After the
 * last cycle, most blocks are freed once more and the resident set is read
 * from /proc/self/status (VmRSS); then everything is freed and it is read
 * again.
 *
 * Reports the time, the peak RSS (maxrss_kb), the RSS with the final ~10%
 * live (rss_end_kb, next to the bytes actually live: live_end_kb) and the
 * RSS with nothing live (rss_empty_kb).  An allocator that packs well and
 * returns memory keeps maxrss near the target and rss_end near live_end.
 */
#include <math.h>
#include <sys/mman.h>

#define BENCH_NAME "bench_frag"
#define BENCH_USAGE \
    "usage: bench_frag [target_mb=64] [cycles=6] [keep_percent=10]\n" \
    "  fill to target, then per cycle free most and refill with other sizes\n"
#include "bench_common.h"

struct block {
    unsigned char *p;
    size_t size;
};

static const size_t ranges[][2] = {
    { 32, 256 }, { 256, 2048 }, { 32, 4096 }, { 2048, 16384 }, { 64, 512 }, { 4096, 65536 },
};
#define NRANGES (sizeof(ranges) / sizeof(ranges[0]))

static void touch(unsigned char *p, size_t size)
{
    size_t off;

    memset(p, (int)(size & 0xff), size < 64 ? size : 64);
    for (off = 4096; off < size; off += 4096)
        p[off] = (unsigned char)size;
    p[size - 1] = (unsigned char)size;
}

static void release(struct block *b)
{
    if (b->p[0] != (unsigned char)b->size || b->p[b->size - 1] != (unsigned char)b->size) {
        fprintf(stderr, "bench_frag: block %p of %zu bytes was overwritten\n",
                (void *)b->p, b->size);
        abort();
    }
    free(b->p);
}

/* Free each live block with probability (100 - keep)%; compact the list. */
static size_t thin(struct block *live, size_t n, unsigned long keep, size_t *bytes, uint64_t *rng)
{
    size_t i, kept = 0;

    for (i = 0; i < n; i++) {
        if (bench_rand(rng) % 100 < keep) {
            live[kept++] = live[i];
        } else {
            *bytes -= live[i].size;
            release(&live[i]);
        }
    }
    return kept;
}

int main(int argc, char **argv)
{
    unsigned long target_mb = bench_arg_ul(argc, argv, 1, 64, 1, 1 << 20);
    unsigned long cycles = bench_arg_ul(argc, argv, 2, 6, 1, 1000);
    unsigned long keep = bench_arg_ul(argc, argv, 3, 10, 0, 100);
    size_t target = (size_t)target_mb << 20;
    /* The list of live blocks lives outside the allocator under test: it
     * must not take part in the fragmentation it measures. */
    size_t cap = target / 32 + 1024;
    struct block *live;
    size_t n = 0, bytes = 0, i;
    uint64_t rng = 0xF4A6ull;
    unsigned long c;
    long rss_end, rss_empty, live_end, peak;
    double t0, secs;

    if (argc > 4)
        bench_usage(2);
    live = mmap(NULL, cap * sizeof(*live), PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (live == MAP_FAILED) {
        perror("bench_frag: mmap");
        return 1;
    }

    t0 = bench_now_s();
    for (c = 0; c < cycles; c++) {
        double lo = log((double)ranges[c % NRANGES][0]);
        double hi = log((double)ranges[c % NRANGES][1]);

        if (c > 0)
            n = thin(live, n, keep, &bytes, &rng);
        while (bytes < target && n < cap) {
            size_t size = (size_t)exp(lo + (hi - lo) * bench_uniform01(&rng));
            unsigned char *p = bench_malloc(size);

            touch(p, size);
            live[n].p = p;
            live[n].size = size;
            n++;
            bytes += size;
        }
    }
    n = thin(live, n, keep, &bytes, &rng);
    secs = bench_elapsed_s(t0);
    live_end = (long)(bytes >> 10);
    rss_end = bench_vmrss_kb();
    for (i = 0; i < n; i++)
        release(&live[i]);
    rss_empty = bench_vmrss_kb();
    peak = bench_peak_kb(rss_end);

    bench_result(peak, "target_mb=%lu cycles=%lu keep=%lu time_s=%.4f rss_end_kb=%ld "
                 "live_end_kb=%ld rss_empty_kb=%ld",
                 target_mb, cycles, keep, secs, rss_end, live_end, rss_empty);
    munmap(live, cap * sizeof(*live));
    return 0;
}
