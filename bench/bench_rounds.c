/*
 * bench_rounds - rounds of "allocate N objects, free them all" per thread.
 *
 *   bench_rounds [threads=1] [size=64] [rounds=100] [count=10000]
 *
 * Every thread runs `rounds` rounds; a round allocates `count` objects of
 * `size` bytes (writing the first bytes of each), then frees them all in
 * allocation order.  The threads start together at a barrier.  The seed's
 * settings are threads 1, 5 and 10, 100 rounds of 10,000, at 64 B and 1 KiB.
 * Reports the wall time and the aggregate malloc+free pairs per second.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct worker {
    pthread_t tid;
    unsigned char **blocks;
    double start, end;
    char pad[64];
};

static size_t g_size;
static unsigned long g_rounds, g_count;
static pthread_barrier_t g_barrier;

static const char *const usage_text =
    "usage: bench_rounds [threads=1] [size=64] [rounds=100] [count=10000]\n"
    "  each thread: `rounds` times allocate `count` objects then free them all\n";

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
        fprintf(stderr, "bench_rounds: bad argument %d: '%s' (want %lu..%lu)\n", i, argv[i], lo, hi);
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

static void *run(void *arg)
{
    struct worker *w = arg;
    size_t head = g_size < 16 ? g_size : 16;
    unsigned long r, i;

    pthread_barrier_wait(&g_barrier);
    w->start = now_s();
    for (r = 0; r < g_rounds; r++) {
        for (i = 0; i < g_count; i++) {
            unsigned char *p = malloc(g_size);
            if (p == NULL) {
                fprintf(stderr, "bench_rounds: malloc(%zu) failed\n", g_size);
                abort();
            }
            memset(p, (int)(r & 0xff), head);
            w->blocks[i] = p;
        }
        for (i = 0; i < g_count; i++) {
            if (w->blocks[i][0] != (unsigned char)(r & 0xff)) {
                fprintf(stderr, "bench_rounds: block %p was overwritten\n", (void *)w->blocks[i]);
                abort();
            }
            free(w->blocks[i]);
        }
    }
    w->end = now_s();
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long threads = arg_ul(argc, argv, 1, 1, 1, 4096);
    unsigned long t;
    struct worker *w;
    double t0, t1, pairs;

    g_size = arg_ul(argc, argv, 2, 64, 1, (unsigned long)1 << 30);
    g_rounds = arg_ul(argc, argv, 3, 100, 1, (unsigned long)1 << 40);
    g_count = arg_ul(argc, argv, 4, 10000, 1, 100000000);
    if (argc > 5)
        usage(2);

    w = calloc(threads, sizeof(*w));
    if (w == NULL || pthread_barrier_init(&g_barrier, NULL, (unsigned)threads) != 0)
        return 1;
    for (t = 0; t < threads; t++) {
        w[t].blocks = calloc(g_count, sizeof(*w[t].blocks));
        if (w[t].blocks == NULL)
            return 1;
    }
    for (t = 0; t < threads; t++) {
        if (pthread_create(&w[t].tid, NULL, run, &w[t]) != 0) {
            fprintf(stderr, "bench_rounds: pthread_create failed\n");
            return 1;
        }
    }
    for (t = 0; t < threads; t++)
        pthread_join(w[t].tid, NULL);
    t0 = w[0].start;
    t1 = w[0].end;
    for (t = 1; t < threads; t++) {
        if (w[t].start < t0)
            t0 = w[t].start;
        if (w[t].end > t1)
            t1 = w[t].end;
    }
    if (t1 - t0 <= 0)
        t1 = t0 + 1e-9;
    pairs = (double)threads * (double)g_rounds * (double)g_count;

    printf("bench_rounds threads=%lu size=%zu rounds=%lu count=%lu time_s=%.4f mops=%.2f maxrss_kb=%ld\n",
           threads, g_size, g_rounds, g_count, t1 - t0, pairs / (t1 - t0) / 1e6, maxrss_kb());
    for (t = 0; t < threads; t++)
        free(w[t].blocks);
    free(w);
    pthread_barrier_destroy(&g_barrier);
    return 0;
}
