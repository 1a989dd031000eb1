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
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

struct block {
    unsigned char *p;
    size_t size;
};

static const size_t ranges[][2] = {
    { 32, 256 }, { 256, 2048 }, { 32, 4096 }, { 2048, 16384 }, { 64, 512 }, { 4096, 65536 },
};
#define NRANGES (sizeof(ranges) / sizeof(ranges[0]))

static const char *const usage_text =
    "usage: bench_frag [target_mb=64] [cycles=6] [keep_percent=10]\n"
    "  fill to target, then per cycle free most and refill with other sizes\n";

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
        fprintf(stderr, "bench_frag: bad argument %d: '%s' (want %lu..%lu)\n", i, argv[i], lo, hi);
        usage(2);
    }
    return v;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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

/* VmRSS from /proc/self/status, in KiB; -1 when it cannot be read.  The
 * stream is unbuffered, so the only allocation is fopen's small FILE. */
static long vmrss_kb(void)
{
    static char buf[8192];
    FILE *f = NULL;
    size_t n;
    char *s;

    f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    setvbuf(f, NULL, _IONBF, 0);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    s = strstr(buf, "VmRSS:");
    return s != NULL ? strtol(s + 6, NULL, 10) : -1;
}

static uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *rng)
{
    return (double)(next_rand(rng) >> 11) * (1.0 / 9007199254740992.0);
}

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
        if (next_rand(rng) % 100 < keep) {
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
    unsigned long target_mb = arg_ul(argc, argv, 1, 64, 1, 1 << 20);
    unsigned long cycles = arg_ul(argc, argv, 2, 6, 1, 1000);
    unsigned long keep = arg_ul(argc, argv, 3, 10, 0, 100);
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
        usage(2);
    live = mmap(NULL, cap * sizeof(*live), PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (live == MAP_FAILED) {
        perror("bench_frag: mmap");
        return 1;
    }

    t0 = now_s();
    for (c = 0; c < cycles; c++) {
        double lo = log((double)ranges[c % NRANGES][0]);
        double hi = log((double)ranges[c % NRANGES][1]);

        if (c > 0)
            n = thin(live, n, keep, &bytes, &rng);
        while (bytes < target && n < cap) {
            size_t size = (size_t)exp(lo + (hi - lo) * uniform01(&rng));
            unsigned char *p = malloc(size);

            if (p == NULL) {
                fprintf(stderr, "bench_frag: malloc(%zu) failed\n", size);
                abort();
            }
            touch(p, size);
            live[n].p = p;
            live[n].size = size;
            n++;
            bytes += size;
        }
    }
    n = thin(live, n, keep, &bytes, &rng);
    secs = now_s() - t0;
    live_end = (long)(bytes >> 10);
    rss_end = vmrss_kb();
    for (i = 0; i < n; i++)
        release(&live[i]);
    rss_empty = vmrss_kb();
    peak = maxrss_kb();
    if (rss_end > peak)     /* the kernel's high-water mark can lag a little */
        peak = rss_end;
    if (secs <= 0)
        secs = 1e-9;

    printf("bench_frag target_mb=%lu cycles=%lu keep=%lu time_s=%.4f rss_end_kb=%ld "
           "live_end_kb=%ld rss_empty_kb=%ld maxrss_kb=%ld\n",
           target_mb, cycles, keep, secs, rss_end, live_end, rss_empty, peak);
    munmap(live, cap * sizeof(*live));
    return 0;
}
