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
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_BATCH 4096

static const char *const usage_text =
    "usage: bench_alloc [size=64] [iters=20000000] [batch=1]\n"
    "  time of one malloc+free pair at a fixed size, single thread\n";

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
        fprintf(stderr, "bench_alloc: bad argument %d: '%s' (want %lu..%lu)\n", i, argv[i], lo, hi);
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

/* Keep the compiler from pairing up and deleting a malloc and its free. */
static inline void escape(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (p == NULL) {
        fprintf(stderr, "bench_alloc: malloc(%zu) failed\n", n);
        abort();
    }
    return p;
}

int main(int argc, char **argv)
{
    size_t size = arg_ul(argc, argv, 1, 64, 1, (unsigned long)1 << 30);
    unsigned long iters = arg_ul(argc, argv, 2, 20000000, 1, (unsigned long)1 << 40);
    unsigned long batch = arg_ul(argc, argv, 3, 1, 1, MAX_BATCH);
    size_t head = size < 16 ? size : 16;
    static unsigned char *blocks[MAX_BATCH];
    unsigned long rounds = (iters + batch - 1) / batch;
    unsigned long i, j;
    double t0, secs;

    if (argc > 4)
        usage(2);

    /* Warm up: the first calls set up the allocator's per-thread state. */
    for (i = 0; i < 1000; i++) {
        unsigned char *p = xmalloc(size);
        p[0] = 1;
        escape(p);
        free(p);
    }

    t0 = now_s();
    for (i = 0; i < rounds; i++) {
        for (j = 0; j < batch; j++) {
            unsigned char *p = xmalloc(size);
            memset(p, (int)j, head);
            escape(p);
            blocks[j] = p;
        }
        for (j = 0; j < batch; j++)
            free(blocks[j]);
    }
    secs = now_s() - t0;
    if (secs <= 0)
        secs = 1e-9;
    iters = rounds * batch;

    printf("bench_alloc size=%zu iters=%lu batch=%lu time_s=%.4f ns=%.2f mops=%.2f maxrss_kb=%ld\n",
           size, iters, batch, secs, secs * 1e9 / (double)iters,
           (double)iters / secs / 1e6, maxrss_kb());
    return 0;
}
