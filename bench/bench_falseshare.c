/*
 * bench_falseshare - does the allocator make threads share cache lines?
 *
 *   bench_falseshare [mode=0] [threads=2] [iters=400000] [writes=100] [objsize=8]
 *
 * mode 0, passive (cache-scratch style): the main thread allocates one
 *   small object per thread, back to back, and hands object i to thread i.
 *   Each thread frees the object it was given, then `iters` times allocates
 *   an object of `objsize` bytes, writes every byte of it `writes` times and
 *   frees it.  An allocator that gives the freed object (or its neighbours)
 *   back to the thread that freed it leaves several threads writing into
 *   one cache line for the whole run.
 * mode 1, active (cache-thrash style): the same loop, without the hand-over;
 *   threads allocating at the same time from a shared heap can be given
 *   neighbouring objects.
 * The writes go through a volatile pointer so each is a real store.
 * Reports the wall time; with no false sharing it scales with the core count.
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
    unsigned char *given;
    double start, end;
    char pad[64];
};

static unsigned long g_iters, g_writes;
static size_t g_objsize;
static pthread_barrier_t g_barrier;

static const char *const usage_text =
    "usage: bench_falseshare [mode=0] [threads=2] [iters=400000] [writes=100] [objsize=8]\n"
    "  mode 0: passive (objects handed out by main, freed by workers, cache-scratch)\n"
    "  mode 1: active (each thread allocates its own, cache-thrash)\n";

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
        fprintf(stderr, "bench_falseshare: bad argument %d: '%s' (want %lu..%lu)\n",
                i, argv[i], lo, hi);
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
    unsigned long i, j;
    size_t k;

    pthread_barrier_wait(&g_barrier);
    w->start = now_s();
    free(w->given);
    for (i = 0; i < g_iters; i++) {
        volatile unsigned char *p = malloc(g_objsize);
        if (p == NULL) {
            fprintf(stderr, "bench_falseshare: malloc(%zu) failed\n", g_objsize);
            abort();
        }
        for (j = 0; j < g_writes; j++)
            for (k = 0; k < g_objsize; k++)
                p[k] = (unsigned char)(p[k] + 1);
        free((void *)p);
    }
    w->end = now_s();
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long mode = arg_ul(argc, argv, 1, 0, 0, 1);
    unsigned long threads = arg_ul(argc, argv, 2, 2, 1, 4096);
    struct worker *w;
    unsigned long t;
    double t0, t1;

    g_iters = arg_ul(argc, argv, 3, 400000, 1, (unsigned long)1 << 40);
    g_writes = arg_ul(argc, argv, 4, 100, 1, (unsigned long)1 << 30);
    g_objsize = arg_ul(argc, argv, 5, 8, 1, 1 << 20);
    if (argc > 6)
        usage(2);

    w = calloc(threads, sizeof(*w));
    if (w == NULL || pthread_barrier_init(&g_barrier, NULL, (unsigned)threads) != 0)
        return 1;
    /* Passive mode: consecutive small objects from the main thread, which
     * a simple allocator places in the same cache line. */
    if (mode == 0) {
        for (t = 0; t < threads; t++) {
            w[t].given = malloc(g_objsize);
            if (w[t].given == NULL)
                return 1;
            memset(w[t].given, 0, g_objsize);
        }
    }
    for (t = 0; t < threads; t++) {
        if (pthread_create(&w[t].tid, NULL, run, &w[t]) != 0) {
            fprintf(stderr, "bench_falseshare: pthread_create failed\n");
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

    printf("bench_falseshare mode=%s threads=%lu iters=%lu writes=%lu objsize=%zu time_s=%.4f "
           "maxrss_kb=%ld\n",
           mode == 0 ? "passive" : "active", threads, g_iters, g_writes, g_objsize, t1 - t0,
           maxrss_kb());
    free(w);
    return 0;
}
