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
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct buf {
    unsigned char *p;
    size_t size;
    unsigned char tag;
};

static const char *const usage_text =
    "usage: bench_realloc [mode=0] [bufs=32] [max=65536] [step=64] [rounds=100]\n"
    "  mode 0: append `step` bytes per realloc up to `max`\n"
    "  mode 1: grow by half per realloc from `step` bytes up to `max`\n";

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
        fprintf(stderr, "bench_realloc: bad argument %d: '%s' (want %lu..%lu)\n", i, argv[i], lo, hi);
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

/* Grow b to n bytes; write the new part (all of it, or sparsely). */
static void grow(struct buf *b, size_t n, int sparse)
{
    size_t old = b->size, off;
    unsigned char *p = realloc(b->p, n);

    if (p == NULL) {
        fprintf(stderr, "bench_realloc: realloc(%zu) failed\n", n);
        abort();
    }
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
    unsigned long mode = arg_ul(argc, argv, 1, 0, 0, 1);
    unsigned long nbufs = arg_ul(argc, argv, 2, 32, 1, 1000000);
    size_t max = arg_ul(argc, argv, 3, 65536, 1, (unsigned long)1 << 40);
    size_t step = arg_ul(argc, argv, 4, 64, 1, (unsigned long)1 << 40);
    unsigned long rounds = arg_ul(argc, argv, 5, 100, 1, (unsigned long)1 << 30);
    unsigned long r, i, reallocs = 0;
    struct buf *bufs;
    double t0, secs;
    int growing;

    if (argc > 6)
        usage(2);
    bufs = calloc(nbufs, sizeof(*bufs));
    if (bufs == NULL)
        return 1;

    t0 = now_s();
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
    secs = now_s() - t0;
    if (secs <= 0)
        secs = 1e-9;

    printf("bench_realloc mode=%s bufs=%lu max=%zu step=%zu rounds=%lu reallocs=%lu time_s=%.4f "
           "ns=%.1f maxrss_kb=%ld\n",
           mode == 0 ? "append" : "geometric", nbufs, max, step, rounds, reallocs, secs,
           secs * 1e9 / (double)reallocs, maxrss_kb());
    free(bufs);
    return 0;
}
