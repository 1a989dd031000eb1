/*
 * stress.c - multi-threaded stress test of mempool (through the mp_ calls,
 * so that the sanitizer builds exercise mempool too).
 *
 *   stress [--mode local|handoff|mixed] [--threads N] [--producers N]
 *          [--consumers N] [--ops N] [--min BYTES] [--max BYTES] [--slots N]
 *          [--seed N] [--max-mb N]
 *
 * Defaults: --threads 4 --producers 2 --consumers 2 --ops 100000 --min 1
 * --max 512 (1M in mode mixed) --slots 1000 (64 in mode mixed) --seed 1
 * --max-mb 256.  Sizes accept a K or M suffix.
 *
 * Modes:
 *   local    each thread keeps --slots live objects and at random frees one
 *            (after checking its contents) or allocates one (filling it with
 *            a pattern derived from its address and size).
 *   handoff  --producers threads allocate and fill objects and pass them
 *            through a queue to --consumers threads, which check and free
 *            them: every free is a cross-thread free.  Committed memory (and
 *            RSS) must stay within --max-mb of the start: memory freed by
 *            the consumers has to come back to the producers.
 *   mixed    like local, with log-uniform sizes up to --max (1 MiB by
 *            default, so large blocks too), calloc (checked zero), realloc
 *            (contents kept), aligned_alloc and posix_memalign with random
 *            power-of-two alignments up to 1 MiB (checked), mp_malloc_usable,
 *            mp_free_sized with the requested or the usable size, and a
 *            shared exchange through which objects move between threads.
 *
 * In every mode, once the threads have finished, in_use must be back near
 * its starting value and the dead threads' caches gone.
 *
 * Prints one summary line; exit status 0 on success, 1 on a failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mempool.h"
#include "harness.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define MiB ((size_t)1 << 20)

enum mode { MODE_LOCAL, MODE_HANDOFF, MODE_MIXED };

static struct {
    enum mode mode;
    int threads, producers, consumers;
    long ops;
    size_t min, max;
    int slots;
    uint64_t seed;
    size_t max_mb;
} opt = { MODE_LOCAL, 4, 2, 2, 100000, 1, 0, 0, 1, 256 };

static int failed;                 /* set on the first failure */
static char fail_msg[512];
static uint64_t total_allocs, total_bytes;

__attribute__((format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
    if (__atomic_exchange_n(&failed, 1, __ATOMIC_SEQ_CST))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fail_msg, sizeof fail_msg, fmt, ap);
    va_end(ap);
}

static inline bool stop(void)
{
    return __atomic_load_n(&failed, __ATOMIC_RELAXED) != 0;
}

/* ---- object contents -------------------------------------------------- */

/* Objects up to FULL bytes are filled entirely; bigger ones in segments:
 * the first and last 4 KiB and 64 bytes of every 4 KiB in between. */
#define FULL ((size_t)64 << 10)

static uint64_t obj_seed(const void *p, size_t n)
{
    uint64_t x = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ULL ^ (n + 0x51ED);
    x ^= x >> 31;
    return x * 0xD6E8FEB86659FD93ULL;
}

static void obj_fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *b = p;
    if (n <= FULL) {
        harness_fill(b, n, seed);
        return;
    }
    harness_fill(b, 4096, seed);
    for (size_t off = 4096; off + 64 <= n - 4096; off += 4096)
        harness_fill(b + off, 64, seed + off);
    harness_fill(b + n - 4096, 4096, seed + n);
}

/* Check the bytes below `limit` of an object of n bytes filled with seed;
 * returns the first bad offset or (size_t)-1. */
static size_t obj_check(const void *p, size_t n, size_t limit, uint64_t seed)
{
    const unsigned char *b = p;
    size_t bad;
    if (n <= FULL)
        return harness_verify(b, n < limit ? n : limit, seed);
    if ((bad = harness_verify(b, limit < 4096 ? limit : 4096, seed)) != (size_t)-1)
        return bad;
    for (size_t off = 4096; off + 64 <= n - 4096 && off + 64 <= limit; off += 4096)
        if ((bad = harness_verify(b + off, 64, seed + off)) != (size_t)-1)
            return off + bad;
    if (n <= limit && (bad = harness_verify(b + n - 4096, 4096, seed + n)) != (size_t)-1)
        return n - 4096 + bad;
    return (size_t)-1;
}

static bool obj_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    if (n <= FULL)
        return harness_first_nonzero(b, n) == (size_t)-1;
    if (harness_first_nonzero(b, 4096) != (size_t)-1 ||
        harness_first_nonzero(b + n - 4096, 4096) != (size_t)-1)
        return false;
    for (size_t off = 4096; off + 64 <= n - 4096; off += 4096)
        if (harness_first_nonzero(b + off, 64) != (size_t)-1)
            return false;
    return true;
}

struct obj {
    unsigned char *p;
    size_t n;
    uint64_t seed;
};

static bool verify_obj(const struct obj *o, const char *when)
{
    size_t bad = obj_check(o->p, o->n, o->n, o->seed);
    if (bad != (size_t)-1) {
        fail("%s: object %p of %zu bytes corrupted at offset %zu", when, (void *)o->p, o->n, bad);
        return false;
    }
    size_t u = mp_usable_size(o->p);
    if (u < o->n) {
        fail("%s: mp_usable_size(%p) = %zu < %zu", when, (void *)o->p, u, o->n);
        return false;
    }
    return true;
}

static size_t rand_uniform(uint64_t *rng, size_t lo, size_t hi)
{
    return lo + (size_t)(harness_rand(rng) % (uint64_t)(hi - lo + 1));
}

/* Log-uniform in [lo, hi]: as many sizes in 16..32 as in 512K..1M. */
static size_t rand_logsize(uint64_t *rng, size_t lo, size_t hi)
{
    int blo = 63 - __builtin_clzll(lo | 1), bhi = 63 - __builtin_clzll(hi | 1);
    int b = blo + (int)(harness_rand(rng) % (uint64_t)(bhi - blo + 1));
    size_t base = (size_t)1 << b;
    size_t n = base + (size_t)(harness_rand(rng) % base);
    if (n < lo)
        n = lo;
    if (n > hi)
        n = hi;
    return n;
}

/* ---- memory monitor --------------------------------------------------- */

static struct {
    int stop;
    size_t committed0, rss0, in_use0, caches0;
    size_t peak_committed, peak_rss;
} mon;

static void *monitor(void *arg)
{
    while (!__atomic_load_n(&mon.stop, __ATOMIC_ACQUIRE)) {
        mp_stats_t st;
        mp_stats_get(&st);
        if (st.committed > mon.peak_committed)
            mon.peak_committed = st.committed;
        size_t r = harness_rss_bytes();
        if (r > mon.peak_rss)
            mon.peak_rss = r;
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* ---- mode local -------------------------------------------------------- */

static void *local_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t rng = opt.seed * 0x100000001B3ULL + (uint64_t)id * 7919 + 1;
    struct obj *slot = calloc((size_t)opt.slots, sizeof *slot);
    uint64_t allocs = 0, bytes = 0;
    if (!slot) {
        fail("calloc of the slot table failed");
        return NULL;
    }
    for (long op = 0; op < opt.ops && !stop(); op++) {
        struct obj *o = &slot[harness_rand(&rng) % (uint64_t)opt.slots];
        if (o->p) {
            if (!verify_obj(o, "local free"))
                break;
            mp_free(o->p);
            o->p = NULL;
        } else {
            o->n = rand_uniform(&rng, opt.min, opt.max);
            o->p = mp_malloc(o->n);
            if (!o->p) {
                fail("mp_malloc(%zu) returned NULL", o->n);
                break;
            }
            if (((uintptr_t)o->p & (o->n <= 8 ? 7 : 15)) != 0) {
                fail("mp_malloc(%zu) = %p: misaligned", o->n, (void *)o->p);
                break;
            }
            o->seed = obj_seed(o->p, o->n);
            obj_fill(o->p, o->n, o->seed);
            allocs++;
            bytes += o->n;
        }
    }
    for (int i = 0; i < opt.slots; i++) {
        if (slot[i].p) {
            if (!stop())
                verify_obj(&slot[i], "local final");
            mp_free(slot[i].p);
        }
    }
    free(slot);
    __atomic_add_fetch(&total_allocs, allocs, __ATOMIC_RELAXED);
    __atomic_add_fetch(&total_bytes, bytes, __ATOMIC_RELAXED);
    return NULL;
}

/* ---- mode handoff ------------------------------------------------------- */

#define BATCH 32
#define QCAP 64 /* batches */

struct batch {
    int count;
    struct obj o[BATCH];
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    struct batch b[QCAP];
    int head, count, producers_left;
} q = { .mu = PTHREAD_MUTEX_INITIALIZER,
        .not_empty = PTHREAD_COND_INITIALIZER,
        .not_full = PTHREAD_COND_INITIALIZER };

static void q_put(const struct batch *b)
{
    pthread_mutex_lock(&q.mu);
    while (q.count == QCAP && !stop())
        pthread_cond_wait(&q.not_full, &q.mu);
    if (q.count < QCAP) {
        q.b[(q.head + q.count) % QCAP] = *b;
        q.count++;
        pthread_cond_signal(&q.not_empty);
    } else {
        /* stopping after a failure with a full queue: drop the batch */
        for (int i = 0; i < b->count; i++)
            mp_free(b->o[i].p);
    }
    pthread_mutex_unlock(&q.mu);
}

/* Returns false when every producer is done and the queue is empty. */
static bool q_get(struct batch *b)
{
    pthread_mutex_lock(&q.mu);
    while (q.count == 0 && q.producers_left > 0)
        pthread_cond_wait(&q.not_empty, &q.mu);
    if (q.count == 0) {
        pthread_mutex_unlock(&q.mu);
        return false;
    }
    *b = q.b[q.head];
    q.head = (q.head + 1) % QCAP;
    q.count--;
    pthread_cond_signal(&q.not_full);
    pthread_mutex_unlock(&q.mu);
    return true;
}

static void *producer_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t rng = opt.seed * 0x100000001B3ULL + (uint64_t)id * 104729 + 3;
    uint64_t allocs = 0, bytes = 0;
    struct batch b;
    b.count = 0;
    for (long op = 0; op < opt.ops && !stop(); op++) {
        struct obj *o = &b.o[b.count];
        o->n = rand_uniform(&rng, opt.min, opt.max);
        o->p = mp_malloc(o->n);
        if (!o->p) {
            fail("producer: mp_malloc(%zu) returned NULL", o->n);
            break;
        }
        o->seed = obj_seed(o->p, o->n);
        obj_fill(o->p, o->n, o->seed);
        allocs++;
        bytes += o->n;
        if (++b.count == BATCH) {
            q_put(&b);
            b.count = 0;
        }
    }
    if (b.count)
        q_put(&b);
    pthread_mutex_lock(&q.mu);
    q.producers_left--;
    pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.mu);
    __atomic_add_fetch(&total_allocs, allocs, __ATOMIC_RELAXED);
    __atomic_add_fetch(&total_bytes, bytes, __ATOMIC_RELAXED);
    return NULL;
}

static void *consumer_thread(void *arg)
{
    struct batch b;
    uint64_t n = 0;
    while (q_get(&b)) {
        for (int i = 0; i < b.count; i++) {
            if (!stop())
                verify_obj(&b.o[i], "consumer");
            /* alternate the two kinds of free */
            if (n++ & 1)
                mp_free(b.o[i].p);
            else
                mp_free_sized(b.o[i].p, b.o[i].n);
        }
    }
    return NULL;
}

/* ---- mode mixed ---------------------------------------------------------- */

#define XCHG 256
static struct {
    pthread_mutex_t mu;
    struct obj o;
} xchg[XCHG];

static bool mixed_alloc(struct obj *o, uint64_t *rng, uint64_t *allocs, uint64_t *bytes)
{
    size_t n = rand_logsize(rng, opt.min, opt.max);
    unsigned kind = (unsigned)(harness_rand(rng) % 100);
    unsigned char *p;
    size_t align = n <= 8 ? 8 : 16;
    bool zero = false;
    if (kind < 45) {
        p = mp_malloc(n);
    } else if (kind < 60) {
        zero = true;
        p = (n % 8 == 0 && n) ? mp_calloc(n / 8, 8) : mp_calloc(n, 1);
    } else if (kind < 80) {
        align = (size_t)1 << (harness_rand(rng) % 21); /* 1 .. 1 MiB */
        p = mp_aligned_alloc(align, n);
    } else if (kind < 90) {
        align = (size_t)8 << (harness_rand(rng) % 18); /* 8 .. 1 MiB */
        void *out = NULL;
        int rc = mp_posix_memalign(&out, align, n);
        if (rc != 0) {
            fail("mp_posix_memalign(%zu, %zu) = %d", align, n, rc);
            return false;
        }
        p = out;
    } else {
        size_t u = 0;
        p = mp_malloc_usable(n, &u);
        if (p && (u < n || u != mp_usable_size(p))) {
            fail("mp_malloc_usable(%zu) reported %zu, mp_usable_size says %zu", n, u,
                 mp_usable_size(p));
            return false;
        }
    }
    if (!p) {
        fail("allocation of %zu bytes (kind %u, align %zu) returned NULL", n, kind, align);
        return false;
    }
    if ((uintptr_t)p & (align - 1)) {
        fail("%zu bytes at %p: not aligned to %zu (kind %u)", n, (void *)p, align, kind);
        return false;
    }
    if (zero && !obj_zero(p, n)) {
        fail("mp_calloc of %zu bytes at %p: not zero", n, (void *)p);
        return false;
    }
    o->p = p;
    o->n = n;
    o->seed = obj_seed(p, n);
    obj_fill(p, n, o->seed);
    (*allocs)++;
    *bytes += n;
    return true;
}

static void mixed_free(struct obj *o, uint64_t *rng)
{
    unsigned kind = (unsigned)(harness_rand(rng) % 10);
    if (kind < 4)
        mp_free(o->p);
    else if (kind < 7)
        mp_free_sized(o->p, o->n);
    else
        mp_free_sized(o->p, mp_usable_size(o->p));
    o->p = NULL;
}

static void *mixed_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t rng = opt.seed * 0x100000001B3ULL + (uint64_t)id * 15485863 + 5;
    struct obj *slot = calloc((size_t)opt.slots, sizeof *slot);
    uint64_t allocs = 0, bytes = 0;
    if (!slot) {
        fail("calloc of the slot table failed");
        return NULL;
    }
    for (long op = 0; op < opt.ops && !stop(); op++) {
        struct obj *o = &slot[harness_rand(&rng) % (uint64_t)opt.slots];
        if (!o->p) {
            if (!mixed_alloc(o, &rng, &allocs, &bytes))
                break;
            continue;
        }
        if (!verify_obj(o, "mixed"))
            break;
        unsigned what = (unsigned)(harness_rand(&rng) % 100);
        if (what < 15) {
            /* realloc to a new size; the common prefix must survive */
            size_t m = rand_logsize(&rng, opt.min, opt.max);
            unsigned char *q2 = mp_realloc(o->p, m);
            if (!q2) {
                fail("mp_realloc(%p, %zu) returned NULL", (void *)o->p, m);
                break;
            }
            size_t bad = obj_check(q2, o->n, m, o->seed);
            if (bad != (size_t)-1) {
                fail("mp_realloc %zu -> %zu bytes: byte %zu changed", o->n, m, bad);
                break;
            }
            if ((uintptr_t)q2 & (m <= 8 ? 7 : 15)) {
                fail("mp_realloc(.., %zu) = %p: misaligned", m, (void *)q2);
                break;
            }
            o->p = q2;
            o->n = m;
            o->seed = obj_seed(q2, m);
            obj_fill(q2, m, o->seed);
            allocs++;
            bytes += m;
        } else if (what < 25) {
            /* swap with the shared exchange: objects change threads */
            int x = (int)(harness_rand(&rng) % XCHG);
            pthread_mutex_lock(&xchg[x].mu);
            struct obj t = xchg[x].o;
            xchg[x].o = *o;
            *o = t;
            pthread_mutex_unlock(&xchg[x].mu);
            if (o->p && !verify_obj(o, "mixed exchange"))
                break;
        } else {
            mixed_free(o, &rng);
        }
    }
    for (int i = 0; i < opt.slots; i++) {
        if (slot[i].p) {
            if (!stop())
                verify_obj(&slot[i], "mixed final");
            mixed_free(&slot[i], &rng);
        }
    }
    free(slot);
    __atomic_add_fetch(&total_allocs, allocs, __ATOMIC_RELAXED);
    __atomic_add_fetch(&total_bytes, bytes, __ATOMIC_RELAXED);
    return NULL;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: stress [--mode local|handoff|mixed] [--threads N] [--producers N]\n"
            "              [--consumers N] [--ops N] [--min BYTES] [--max BYTES]\n"
            "              [--slots N] [--seed N] [--max-mb N]\n");
    exit(2);
}

static size_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        usage();
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    else if (*end == 'm' || *end == 'M')
        v <<= 20, end++;
    if (*end)
        usage();
    return (size_t)v;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "mode", required_argument, 0, 'm' },      { "threads", required_argument, 0, 't' },
        { "producers", required_argument, 0, 'p' }, { "consumers", required_argument, 0, 'c' },
        { "ops", required_argument, 0, 'o' },       { "min", required_argument, 0, 'a' },
        { "max", required_argument, 0, 'b' },       { "slots", required_argument, 0, 'l' },
        { "seed", required_argument, 0, 's' },      { "max-mb", required_argument, 0, 'M' },
        { 0, 0, 0, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (!strcmp(optarg, "local"))
                opt.mode = MODE_LOCAL;
            else if (!strcmp(optarg, "handoff"))
                opt.mode = MODE_HANDOFF;
            else if (!strcmp(optarg, "mixed"))
                opt.mode = MODE_MIXED;
            else
                usage();
            break;
        case 't': opt.threads = (int)parse_size(optarg); break;
        case 'p': opt.producers = (int)parse_size(optarg); break;
        case 'c': opt.consumers = (int)parse_size(optarg); break;
        case 'o': opt.ops = (long)parse_size(optarg); break;
        case 'a': opt.min = parse_size(optarg); break;
        case 'b': opt.max = parse_size(optarg); break;
        case 'l': opt.slots = (int)parse_size(optarg); break;
        case 's': opt.seed = parse_size(optarg); break;
        case 'M': opt.max_mb = parse_size(optarg); break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    if (opt.max == 0)
        opt.max = opt.mode == MODE_MIXED ? MiB : 512;
    if (opt.slots == 0)
        opt.slots = opt.mode == MODE_MIXED ? 64 : 1000;
    if (opt.min > opt.max || opt.threads < 1 || opt.producers < 1 || opt.consumers < 1 ||
        opt.slots < 1 || opt.ops < 0 || opt.threads > 1024 || opt.producers + opt.consumers > 1024)
        usage();

    static const char *const names[] = { "local", "handoff", "mixed" };
    char desc[200];
    if (opt.mode == MODE_HANDOFF)
        snprintf(desc, sizeof desc, "mode=handoff producers=%d consumers=%d", opt.producers,
                 opt.consumers);
    else
        snprintf(desc, sizeof desc, "mode=%s threads=%d", names[opt.mode], opt.threads);

    for (int i = 0; i < XCHG; i++)
        pthread_mutex_init(&xchg[i].mu, NULL);

    mp_stats_t st0, st1;
    mp_free(mp_malloc(1)); /* this thread's cache exists from now on */
    mp_trim();
    mp_stats_get(&st0);
    mon.committed0 = mon.peak_committed = st0.committed;
    mon.rss0 = mon.peak_rss = harness_rss_bytes();

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t mon_thread;
    if (pthread_create(&mon_thread, NULL, monitor, NULL) != 0) {
        fprintf(stderr, "stress: cannot create the monitor thread\n");
        return 1;
    }

    int nth = opt.mode == MODE_HANDOFF ? opt.producers + opt.consumers : opt.threads;
    pthread_t *th = calloc((size_t)nth, sizeof *th);
    if (!th)
        return 1;
    q.producers_left = opt.producers;
    for (int i = 0; i < nth; i++) {
        void *(*fn)(void *) = opt.mode == MODE_LOCAL   ? local_thread
                              : opt.mode == MODE_MIXED ? mixed_thread
                              : i < opt.producers      ? producer_thread
                                                       : consumer_thread;
        if (pthread_create(&th[i], NULL, fn, (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "stress: cannot create thread %d\n", i);
            return 1;
        }
    }
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    free(th);

    __atomic_store_n(&mon.stop, 1, __ATOMIC_RELEASE);
    pthread_join(mon_thread, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    /* what is left in the exchange (mixed) */
    uint64_t rng = 1;
    for (int i = 0; i < XCHG; i++) {
        if (xchg[i].o.p) {
            if (!stop())
                verify_obj(&xchg[i].o, "exchange final");
            mixed_free(&xchg[i].o, &rng);
        }
    }

    /* everything was freed and the workers have exited */
    mp_trim();
    mp_stats_get(&st1);
    size_t peak_c = mon.peak_committed - mon.committed0;
    size_t peak_r = mon.peak_rss > mon.rss0 ? mon.peak_rss - mon.rss0 : 0;
    if (!failed && st1.in_use > st0.in_use + 8 * MiB)
        fail("in_use %zu at the start, %zu after everything was freed", st0.in_use, st1.in_use);
    if (!failed && st1.thread_caches > st0.thread_caches + 1)
        fail("%zu thread caches at the start, %zu after the threads exited", st0.thread_caches,
             st1.thread_caches);
    if (!failed && opt.mode == MODE_HANDOFF) {
        if (peak_c > opt.max_mb * MiB)
            fail("committed memory grew by %.1f MiB (limit %zu MiB): memory freed by other "
                 "threads is not reused",
                 (double)peak_c / (double)MiB, opt.max_mb);
        else if (!SANITIZED && mon.rss0 && peak_r > opt.max_mb * MiB)
            fail("RSS grew by %.1f MiB (limit %zu MiB)", (double)peak_r / (double)MiB,
                 opt.max_mb);
    }

    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("stress: %s ops=%ld sizes=%zu..%zu seed=%ju: %s allocs=%ju volume=%.1fMiB "
           "peak_committed=+%.1fMiB peak_rss=+%.1fMiB time=%.2fs%s%s\n",
           desc, opt.ops, opt.min, opt.max, (uintmax_t)opt.seed, failed ? "FAIL" : "ok",
           (uintmax_t)total_allocs, (double)total_bytes / (double)MiB,
           (double)peak_c / (double)MiB, (double)peak_r / (double)MiB, secs,
           failed ? ": " : "", failed ? fail_msg : "");
    return failed ? 1 : 0;
}
