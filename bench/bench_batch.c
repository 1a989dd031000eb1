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
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static const char *const usage_text =
    "usage: bench_batch [count=10000] [size=64] [rounds=1000] [order=0]\n"
    "  order: 0 free in allocation order, 1 reverse order, 2 shuffled\n";

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
        fprintf(stderr, "bench_batch: bad argument %d: '%s' (want %lu..%lu)\n", i, argv[i], lo, hi);
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

static uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
    unsigned long count = arg_ul(argc, argv, 1, 10000, 1, 100000000);
    size_t size = arg_ul(argc, argv, 2, 64, 1, (unsigned long)1 << 30);
    unsigned long rounds = arg_ul(argc, argv, 3, 1000, 1, (unsigned long)1 << 40);
    unsigned long order = arg_ul(argc, argv, 4, 0, 0, 2);
    size_t head = size < 16 ? size : 16;
    unsigned char **blocks;
    unsigned long *perm = NULL;
    unsigned long r, i;
    uint64_t rng = 42;
    double t0, secs;

    if (argc > 5)
        usage(2);
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
            unsigned long j = (unsigned long)(next_rand(&rng) % (i + 1));
            unsigned long t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
    }

    t0 = now_s();
    for (r = 0; r < rounds; r++) {
        for (i = 0; i < count; i++) {
            unsigned char *p = malloc(size);
            if (p == NULL) {
                fprintf(stderr, "bench_batch: malloc(%zu) failed\n", size);
                abort();
            }
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
    secs = now_s() - t0;
    if (secs <= 0)
        secs = 1e-9;

    printf("bench_batch count=%lu size=%zu rounds=%lu order=%lu time_s=%.4f ns=%.2f mops=%.2f maxrss_kb=%ld\n",
           count, size, rounds, order, secs, secs * 1e9 / ((double)rounds * (double)count),
           (double)rounds * (double)count / secs / 1e6, maxrss_kb());
    free(perm);
    free(blocks);
    return 0;
}
