/* api_threads.c - threads: concurrent churn, blocks freed by another thread
 * than the one that allocated them (also after that thread has exited),
 * 1000 short-lived threads in sequence with bounded memory, and fork() while
 * other threads allocate. */
#define _GNU_SOURCE
#include "api_common.h"

#include <signal.h>
#include <sys/wait.h>

/* ---- concurrent churn ------------------------------------------------- */

struct churn_arg {
    int id;
    int ops;
};

static void *churn_thread(void *v)
{
    struct churn_arg *a = v;
    enum { SLOTS = 256 };
    unsigned char *p[SLOTS] = { 0 };
    size_t n[SLOTS] = { 0 };
    uint64_t rng = 0x1234567ULL * (uint64_t)(a->id + 1);
    for (int op = 0; op < a->ops && !TEST_FAILED(); op++) {
        uint64_t x = harness_rand(&rng);
        int s = (int)(x % SLOTS);
        if (p[s]) {
            CHECK_PATTERN(p[s], n[s], (uintptr_t)p[s] ^ n[s]);
            A->free_fn(p[s]);
            p[s] = NULL;
        } else {
            n[s] = (x >> 20) % 8 == 0 ? (size_t)((x >> 32) % 70000) : (size_t)((x >> 32) % 600);
            p[s] = A->malloc_fn(n[s]);
            CHECK(p[s] != NULL);
            if (!p[s])
                break;
            harness_fill(p[s], n[s], (uintptr_t)p[s] ^ n[s]);
        }
    }
    for (int s = 0; s < SLOTS; s++) {
        if (p[s]) {
            CHECK_PATTERN(p[s], n[s], (uintptr_t)p[s] ^ n[s]);
            A->free_fn(p[s]);
        }
    }
    return NULL;
}

TEST(concurrent_churn)
{
    enum { T = 8 };
    pthread_t th[T];
    struct churn_arg arg[T];
    for (int i = 0; i < T; i++) {
        arg[i].id = i;
        arg[i].ops = 50000;
        REQUIRE(pthread_create(&th[i], NULL, churn_thread, &arg[i]) == 0);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
}

/* ---- producer/consumer: allocated in one thread, freed in another ----- */

struct xfer_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void *item[1024];
    size_t len[1024];
    int head, count, done;
};

static void q_push(struct xfer_queue *q, void *p, size_t n)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == 1024)
        pthread_cond_wait(&q->cv, &q->mu);
    int i = (q->head + q->count) % 1024;
    q->item[i] = p;
    q->len[i] = n;
    q->count++;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Returns 0 when the queue is finished and empty. */
static int q_pop(struct xfer_queue *q, void **p, size_t *n)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !q->done)
        pthread_cond_wait(&q->cv, &q->mu);
    if (q->count == 0) {
        pthread_mutex_unlock(&q->mu);
        return 0;
    }
    *p = q->item[q->head];
    *n = q->len[q->head];
    q->head = (q->head + 1) % 1024;
    q->count--;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return 1;
}

static struct xfer_queue xq = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { 0 },
                                { 0 }, 0, 0, 0 };

static void *producer(void *v)
{
    uint64_t rng = (uint64_t)(uintptr_t)v * 7919 + 1;
    for (int i = 0; i < 60000 && !TEST_FAILED(); i++) {
        uint64_t x = harness_rand(&rng);
        size_t n = (x & 63) == 0 ? (size_t)(x >> 40) % (300 * KiB) : (size_t)(x >> 40) % 1024;
        unsigned char *p = A->malloc_fn(n);
        CHECK(p != NULL);
        if (!p)
            break;
        harness_fill(p, n, (uintptr_t)p + n);
        q_push(&xq, p, n);
    }
    return NULL;
}

static void *consumer(void *v)
{
    void *p;
    size_t n;
    while (q_pop(&xq, &p, &n)) {
        CHECK_PATTERN(p, n, (uintptr_t)p + n);
        A->free_fn(p);
    }
    return NULL;
}

TEST(cross_thread_free)
{
    enum { P = 2, C = 2 };
    pthread_t prod[P], cons[C];
    xq.head = xq.count = xq.done = 0;
    size_t rss0 = harness_rss_bytes();
    for (int i = 0; i < C; i++)
        REQUIRE(pthread_create(&cons[i], NULL, consumer, NULL) == 0);
    for (int i = 0; i < P; i++)
        REQUIRE(pthread_create(&prod[i], NULL, producer, (void *)(uintptr_t)(i + 1)) == 0);
    for (int i = 0; i < P; i++)
        pthread_join(prod[i], NULL);
    pthread_mutex_lock(&xq.mu);
    xq.done = 1;
    pthread_cond_broadcast(&xq.cv);
    pthread_mutex_unlock(&xq.mu);
    for (int i = 0; i < C; i++)
        pthread_join(cons[i], NULL);
    /* 2 * 60000 blocks averaging ~2.8 KiB went through: ~330 MiB.  At most
     * 1024 (~3 MiB) are alive at a time, so memory must stay well below
     * that; blocks freed by the consumers must be reused by the producers. */
    size_t rss1 = harness_rss_bytes();
    if (!API_SANITIZED && rss0 && rss1)
        CHECK_MSG(rss1 <= rss0 + 64 * MiB, "RSS grew from %zu to %zu", rss0, rss1);
}

/* ---- blocks outliving the thread that allocated them ------------------ */

struct orphan_arg {
    unsigned char *p[500];
    size_t n[500];
};

static void *orphan_maker(void *v)
{
    struct orphan_arg *a = v;
    for (int i = 0; i < 500; i++) {
        a->n[i] = (size_t)(i * 131) % 9000 + (i % 50 == 0 ? 400 * KiB : 0);
        a->p[i] = A->malloc_fn(a->n[i]);
        if (a->p[i])
            harness_fill(a->p[i], a->n[i], (uint64_t)i);
    }
    /* also leave freed blocks in this thread's cache */
    for (int i = 0; i < 1000; i++)
        A->free_fn(A->malloc_fn((size_t)i % 2000));
    return NULL;
}

TEST(free_after_owner_exit)
{
    static struct orphan_arg a;
    for (int round = 0; round < 20; round++) {
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, orphan_maker, &a) == 0);
        pthread_join(t, NULL);
        for (int i = 0; i < 500; i++) {
            REQUIRE(a.p[i] != NULL);
            CHECK_PATTERN(a.p[i], a.n[i], (uint64_t)i);
        }
        /* reuse: new allocations must not land on the orphans */
        unsigned char *fresh[200];
        for (int i = 0; i < 200; i++) {
            fresh[i] = A->malloc_fn((size_t)i * 40);
            REQUIRE(fresh[i] != NULL);
            memset(fresh[i], 0xee, (size_t)i * 40);
        }
        for (int i = 0; i < 500; i++) {
            CHECK_PATTERN(a.p[i], a.n[i], (uint64_t)i);
            A->free_fn(a.p[i]);
        }
        for (int i = 0; i < 200; i++)
            A->free_fn(fresh[i]);
    }
}

/* ---- 1000 threads in sequence ----------------------------------------- */

static void *short_lived(void *v)
{
    uintptr_t id = (uintptr_t)v;
    void **keep = (void **)A->malloc_fn(64 * sizeof(void *));
    if (!keep)
        return NULL;
    /* small blocks, a medium and a large one; most freed here, so this
     * thread's cache holds memory when it exits */
    for (int i = 0; i < 64; i++) {
        size_t n = (size_t)((id * 17 + (uintptr_t)i * 13) % 3000) + 1;
        keep[i] = A->malloc_fn(n);
        if (keep[i])
            memset(keep[i], (int)id, n);
    }
    void *big = A->malloc_fn(300 * KiB);
    void *mid = A->malloc_fn(40 * KiB);
    if (big)
        memset(big, 1, 300 * KiB);
    for (int i = 0; i < 56; i++)
        A->free_fn(keep[i]);
    A->free_fn(big);
    A->free_fn(mid);
    /* 8 blocks (and the array) go back to the main thread to free */
    memmove(keep, keep + 56, 8 * sizeof(void *));
    return keep;
}

TEST(thousand_threads_in_sequence)
{
    size_t rss0 = harness_rss_bytes();
#ifndef MP_TEST_PLAIN
    mp_stats_t s0, s1;
    mp_trim();
    mp_stats_get(&s0);
#endif
    for (int i = 0; i < 1000 && !TEST_FAILED(); i++) {
        pthread_t t;
        void *ret = NULL;
        REQUIRE(pthread_create(&t, NULL, short_lived, (void *)(uintptr_t)i) == 0);
        REQUIRE(pthread_join(t, &ret) == 0);
        CHECK(ret != NULL);
        if (ret) {
            void **keep = ret;
            for (int j = 0; j < 8; j++)
                A->free_fn(keep[j]);
            A->free_fn(keep);
        }
    }
    size_t rss1 = harness_rss_bytes();
    /* 1000 threads touched ~500 MiB in all; caches that were not returned
     * at thread exit would keep a good part of it. */
    if (!API_SANITIZED && rss0 && rss1)
        CHECK_MSG(rss1 <= rss0 + 64 * MiB, "RSS grew from %zu to %zu", rss0, rss1);
#ifndef MP_TEST_PLAIN
    mp_stats_get(&s1);
    if (A->has_usable) {
        CHECK_MSG(s1.in_use <= s0.in_use + 16 * MiB, "in_use grew from %zu to %zu", s0.in_use,
                  s1.in_use);
        CHECK_MSG(s1.committed <= s0.committed + 64 * MiB, "committed grew from %zu to %zu",
                  s0.committed, s1.committed);
    }
    /* the dead threads' caches are gone: only this thread's (and perhaps
     * one in the middle of exiting) remain */
    CHECK_MSG(s1.thread_caches <= s0.thread_caches + 1,
              "thread_caches: %zu before, %zu after 1000 threads", s0.thread_caches,
              s1.thread_caches);
    CHECK_LE(s1.thread_caches, 4);
#endif
}

/* ---- the thread_caches statistic follows live threads ------------------- */

#ifndef MP_TEST_PLAIN
static pthread_barrier_t tc_barrier;

static void *tc_thread(void *v)
{
    void *p = mp_malloc(100);
    pthread_barrier_wait(&tc_barrier); /* allocated */
    pthread_barrier_wait(&tc_barrier); /* main has looked */
    mp_free(p);
    return NULL;
}

TEST(thread_caches_count)
{
    enum { T = 6 };
    pthread_t th[T];
    mp_free(mp_malloc(10)); /* this thread has a cache */
    mp_stats_t a, b, c;
    mp_stats_get(&a);
    CHECK_GE(a.thread_caches, 1);
    pthread_barrier_init(&tc_barrier, NULL, T + 1);
    for (int i = 0; i < T; i++)
        REQUIRE(pthread_create(&th[i], NULL, tc_thread, NULL) == 0);
    pthread_barrier_wait(&tc_barrier);
    mp_stats_get(&b);
    CHECK_MSG(b.thread_caches >= a.thread_caches + T, "%zu caches before, %zu with %d more threads",
              a.thread_caches, b.thread_caches, T);
    pthread_barrier_wait(&tc_barrier);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&tc_barrier);
    mp_stats_get(&c);
    CHECK_MSG(c.thread_caches == a.thread_caches, "%zu caches before, %zu after the threads",
              a.thread_caches, c.thread_caches);
}
#endif

/* ---- large and aligned blocks from several threads -------------------- */

static void *large_worker(void *v)
{
    uint64_t rng = (uintptr_t)v * 31 + 5;
    for (int i = 0; i < 300 && !TEST_FAILED(); i++) {
        uint64_t x = harness_rand(&rng);
        size_t n = 256 * KiB + (size_t)(x % (4 * MiB));
        size_t align = (size_t)1 << (4 + (x >> 60)); /* 16 B .. 512 KiB */
        unsigned char *p = (x & 1) ? A->aligned_alloc_fn(align, n) : A->malloc_fn(n);
        CHECK(p != NULL);
        if (!p)
            break;
        fill_sparse(p, n, (uintptr_t)p);
        if (x & 2)
            sched_yield();
        CHECK_SPARSE(p, n, (uintptr_t)p);
        A->free_fn(p);
    }
    return NULL;
}

TEST(concurrent_large)
{
    enum { T = 4 };
    pthread_t th[T];
    for (int i = 0; i < T; i++)
        REQUIRE(pthread_create(&th[i], NULL, large_worker, (void *)(uintptr_t)i) == 0);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
}

/* ---- fork while other threads allocate -------------------------------- */

static int fork_stop;

static void *fork_busy(void *v)
{
    uint64_t rng = (uintptr_t)v + 99;
    while (!__atomic_load_n(&fork_stop, __ATOMIC_RELAXED)) {
        size_t n = (size_t)(harness_rand(&rng) % 5000);
        void *p = A->malloc_fn(n);
        if (p)
            memset(p, 3, n);
        A->free_fn(p);
        if ((rng & 63) == 0) {
            void *q = A->malloc_fn(300 * KiB);
            A->free_fn(q);
        }
    }
    return NULL;
}

/* The child of fork() must be able to allocate even if another thread held
 * an allocator lock at the moment of the fork. */
TEST(fork_while_threads_allocate)
{
    enum { T = 3 };
    pthread_t th[T];
    __atomic_store_n(&fork_stop, 0, __ATOMIC_RELAXED);
    for (int i = 0; i < T; i++)
        REQUIRE(pthread_create(&th[i], NULL, fork_busy, (void *)(uintptr_t)i) == 0);
    int bad = 0;
    for (int i = 0; i < 60 && bad == 0; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10); /* a deadlock in the child ends in SIGALRM */
            for (int j = 0; j < 1000; j++) {
                void *p = A->malloc_fn((size_t)j * 7 % 4000 + 1);
                if (!p)
                    _exit(2);
                memset(p, 1, 1);
                A->free_fn(p);
            }
            void *big = A->malloc_fn(2 * MiB);
            if (!big)
                _exit(3);
            A->free_fn(big);
            _exit(0);
        }
        REQUIRE(pid > 0);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            bad = 1;
            if (WIFSIGNALED(st))
                CHECK_MSG(0, "fork #%d: child killed by signal %d%s", i, WTERMSIG(st),
                          WTERMSIG(st) == SIGALRM ? " (deadlock)" : "");
            else
                CHECK_MSG(0, "fork #%d: child exited with %d", i, WEXITSTATUS(st));
        }
    }
    __atomic_store_n(&fork_stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
}

int main(void)
{
    api_init();
    RUN_ALL(concurrent_churn);
    RUN_ALL(cross_thread_free);
    RUN_ALL(free_after_owner_exit);
    RUN_ALL(thousand_threads_in_sequence);
#ifdef MP_TEST_PLAIN
    harness_skip("thread_caches_count", "needs mp_stats_get");
#else
    RUN(thread_caches_count);
#endif
    RUN_ALL_NOSAN(concurrent_large);
#ifdef __SANITIZE_THREAD__
    harness_skip("fork_while_threads_allocate", "fork of a threaded process under TSAN");
#else
    RUN_ALL_NOSAN(fork_while_threads_allocate);
#endif
    return harness_summary();
}
