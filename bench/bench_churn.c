/*
 * bench_churn - thread churn: many short-lived threads that allocate.
 *
 *   bench_churn [threads=4000] [concurrent=4] [ops=2000] [min=16] [max=1024]
 *
 * Starts `threads` threads in all, at most `concurrent` at a time.  Each
 * does `ops` mallocs of random size in [min,max], keeping a ring of 64
 * blocks live (freeing the oldest), frees what its ring holds, hands its
 * last block to the main thread (which frees it after joining), and exits.
 * This is the life of a thread in a pool-less server: the allocator's per-
 * thread state is set up and torn down over and over, and whatever a dead
 * thread cached must be reclaimed or it piles up.
 *
 * Reports the time, threads per second, the peak RSS and the RSS after the
 * last thread is gone (rss_end_kb, read from /proc/self/status).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define RING 64

struct slot {
    pthread_t tid;
    uint64_t seed;
    unsigned char *handed;   /* the block the thread leaves to main */
};

static unsigned long g_ops;
static size_t g_min, g_max;

static const char *const usage_text =
    "usage: bench_churn [threads=4000] [concurrent=4] [ops=2000] [min=16] [max=1024]\n"
    "  `threads` short-lived threads, `concurrent` at a time, `ops` mallocs each\n";

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
        fprintf(stderr, "bench_churn: bad argument %d: '%s' (want %lu..%lu)\n", i, argv[i], lo, hi);
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

static long vmrss_kb(void)
{
    static char buf[8192];
    FILE *f = fopen("/proc/self/status", "r");
    size_t n;
    char *s;

    if (f == NULL)
        return -1;
    setvbuf(f, NULL, _IONBF, 0);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    s = strstr(buf, "VmRSS:");
    return s != NULL ? strtol(s + 6, NULL, 10) : -1;
}

static inline uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void *run(void *arg)
{
    struct slot *s = arg;
    unsigned char *ring[RING] = { 0 };
    uint64_t rng = s->seed;
    uint64_t span = (uint64_t)(g_max - g_min) + 1;
    unsigned long i;
    unsigned k = 0;

    for (i = 0; i < g_ops; i++) {
        size_t size = g_min + (size_t)(((unsigned __int128)next_rand(&rng) * span) >> 64);
        unsigned char *p = malloc(size);

        if (p == NULL) {
            fprintf(stderr, "bench_churn: malloc(%zu) failed\n", size);
            abort();
        }
        memset(p, (int)(i & 0xff), size < 32 ? size : 32);
        free(ring[k]);
        ring[k] = p;
        k = (k + 1) % RING;
    }
    /* Leave one block to the main thread, free the rest. */
    k = (k + RING - 1) % RING;
    s->handed = ring[k];
    ring[k] = NULL;
    for (i = 0; i < RING; i++)
        free(ring[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long total = arg_ul(argc, argv, 1, 4000, 1, 100000000);
    unsigned long conc = arg_ul(argc, argv, 2, 4, 1, 1024);
    unsigned long started = 0, joined = 0;
    struct slot *slots;
    double t0, secs;
    long rss_end, peak;

    g_ops = arg_ul(argc, argv, 3, 2000, 1, (unsigned long)1 << 40);
    g_min = arg_ul(argc, argv, 4, 16, 1, (unsigned long)1 << 30);
    g_max = arg_ul(argc, argv, 5, 1024, 1, (unsigned long)1 << 30);
    if (argc > 6 || g_min > g_max)
        usage(2);

    slots = calloc(conc, sizeof(*slots));
    if (slots == NULL)
        return 1;

    /* Slot i % conc is reused by thread i once thread i - conc is joined. */
    t0 = now_s();
    while (joined < total) {
        while (started < total && started - joined < conc) {
            struct slot *s = &slots[started % conc];
            s->seed = 0xC4u + started * 2654435761u;
            s->handed = NULL;
            if (pthread_create(&s->tid, NULL, run, s) != 0) {
                fprintf(stderr, "bench_churn: pthread_create failed\n");
                return 1;
            }
            started++;
        }
        pthread_join(slots[joined % conc].tid, NULL);
        free(slots[joined % conc].handed);
        joined++;
    }
    secs = now_s() - t0;
    if (secs <= 0)
        secs = 1e-9;
    rss_end = vmrss_kb();
    peak = maxrss_kb();
    if (rss_end > peak)     /* the kernel's high-water mark can lag a little */
        peak = rss_end;

    printf("bench_churn threads=%lu concurrent=%lu ops=%lu min=%zu max=%zu time_s=%.4f "
           "threads_per_s=%.0f rss_end_kb=%ld maxrss_kb=%ld\n",
           total, conc, g_ops, g_min, g_max, secs, (double)total / secs, rss_end, peak);
    free(slots);
    return 0;
}
