/* test_tcache.c - thread caches: creation, bounds, flush, exit (tcache.c). */
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "internal.h"
#include "mempool.h"

static size_t bin_len(mp_tcache_t *tc, unsigned c) {
    size_t n = 0;
    for (void *h = tc->head[c]; h; h = *(void **)h) n++;
    return n;
}

static void *fresh_thread(void *arg) {
    int *ok = arg;
    bool before = _mp_tc == &_mp_tcache_empty;
    void *p = mp_malloc(64);
    *ok = before && _mp_tc != &_mp_tcache_empty && p != NULL;
    mp_free(p);
    return NULL;
}

TEST(first_use_creates_cache) {
    pthread_t t;
    int ok = 0;
    pthread_create(&t, NULL, fresh_thread, &ok);
    pthread_join(t, NULL);
    CHECK(ok);
}

/* The cache's own size -> class table, what the malloc fast path reads,
 * agrees with the library's lookup for every size it covers. */
TEST(class_table_matches_lookup) {
    void *p = mp_malloc(1);
    mp_free(p);
    mp_tcache_t *tc = _mp_tc;
    REQUIRE(tc != &_mp_tcache_empty);
    for (size_t n = 0; n <= MP_LOOKUP_MAX; n++) {
        CHECK_MSG(tc->cls[n] == mp_size_class(n), "n=%zu: %u, not %u", n, tc->cls[n],
                  mp_size_class(n));
        if (TEST_FAILED()) return;
    }
}

/* The length of a bin never passes max[c] + 1 and room tracks it. */
TEST(bin_bounded_and_counted) {
    void *warm = mp_malloc(48);
    mp_free(warm);
    mp_tcache_t *tc = _mp_tc;
    REQUIRE(!tc->is_static);
    unsigned c = mp_size_class(48);
    enum { N = 5000 };
    static void *p[N];
    for (int i = 0; i < N; i++) p[i] = mp_malloc(48);
    for (int i = 0; i < N; i++) {
        mp_free(p[i]);
        size_t len = bin_len(tc, c);
        CHECK_LE(len, tc->max[c]);
        CHECK_EQ((int64_t)tc->max[c] - tc->room[c], (int64_t)len);
        if (TEST_FAILED()) return;
    }
    CHECK_LE(tc->max[c], _mp_classes[c].tc_limit);
}

/* The per-thread byte cap bounds what all bins may hold together. */
TEST(byte_cap) {
    mp_tcache_t *tc = _mp_tc;
    size_t sum = 0;
    for (int c = 1; c < _mp_nclasses; c++) sum += (size_t)tc->max[c] * _mp_classes[c].size;
    CHECK_LE(sum, (size_t)mp_option(MP_OPT_TCACHE_MAX));
}

static void *exiting_thread(void *arg) {
    void **objs = arg;
    for (int i = 0; i < 1000; i++) objs[i] = mp_malloc(200);
    for (int i = 0; i < 1000; i++) mp_free(objs[i]);
    return NULL;
}

/* A thread's cache goes back when it exits: live caches drop to before. */
TEST(thread_exit_returns_cache) {
    size_t before = _mp_tcache_count();
    static void *objs[1000];
    for (int i = 0; i < 50; i++) {
        pthread_t t;
        pthread_create(&t, NULL, exiting_thread, objs);
        pthread_join(t, NULL);
    }
    CHECK_EQ(_mp_tcache_count(), before);
    mp_stats_t st;
    mp_stats_get(&st);
    CHECK_LT(st.in_use, (size_t)4 << 20);
}

/* A thread that only frees a class (a consumer) gives it back a batch at a
 * time, not an object at a time, and keeps no more than a batch of it.
 * With a bound that grew only on malloc misses, every one of these frees
 * was a central flush of one object. */
enum { CONSUMED = 20000 };
typedef struct {
    void *objs[CONSUMED];
    size_t max, len;      /* the consumer's bound and bin length at the end */
} consumed_t;

static void *consumer_thread(void *arg) {
    consumed_t *w = arg;
    unsigned c = mp_size_class(96);
    for (int i = 0; i < CONSUMED; i++) mp_free(w->objs[i]);
    w->max = _mp_tc->max[c];
    w->len = bin_len(_mp_tc, c);
    return NULL;
}

TEST(freeing_thread_flushes_in_batches) {
    static consumed_t w;
    for (int i = 0; i < CONSUMED; i++) REQUIRE((w.objs[i] = mp_malloc(96)) != NULL);
    const mp_class_t *k = &_mp_classes[mp_size_class(96)];
    mp_stats_t a, b;
    mp_stats_get(&a);
    pthread_t t;
    pthread_create(&t, NULL, consumer_thread, &w);
    pthread_join(t, NULL);
    mp_stats_get(&b);
    CHECK_LE(w.max, (size_t)k->batch);
    CHECK_LE(w.len, w.max);
    /* A batch per flush, plus the slow start (1, 2, 4, ...) and the exit. */
    uint64_t flushes = b.central_flushes - a.central_flushes;
    CHECK_LE(flushes, (uint64_t)(CONSUMED / k->batch + 16));
}

/* A thread whose bins of two big classes once grew to their limits (about
 * 4 MiB each: the whole MEMPOOL_TCACHE_MAX budget) and then emptied, their
 * objects live, must still be able to cache another class.  The bounds
 * that filled the budget were lowered only by the trim, which runs when
 * the bins hold a lot: these held nothing, so every malloc and free of
 * 64 bytes went to the central list, under its lock, for good (a review's
 * repro: 1,000,000 refills for 1,000,000 mallocs, 18 times slower). */
enum { BIG = 4000, SMALL_PAIRS = 100000 };
typedef struct {
    void *v[BIG], *w[BIG];
    uint64_t refills, flushes;
} starved_t;

static void *budget_thread(void *arg) {
    starved_t *s = arg;
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < BIG; i++) s->v[i] = mp_malloc(4096);
        for (int i = 0; i < BIG; i++) mp_free(s->v[i]);
        for (int i = 0; i < BIG; i++) s->w[i] = mp_malloc(2048);
        for (int i = 0; i < BIG; i++) mp_free(s->w[i]);
    }
    for (int i = 0; i < BIG; i++) s->v[i] = mp_malloc(4096);
    for (int i = 0; i < BIG; i++) s->w[i] = mp_malloc(2048);
    mp_stats_t a, b;
    mp_stats_get(&a);
    for (int i = 0; i < SMALL_PAIRS; i++) mp_free(mp_malloc(64));
    mp_stats_get(&b);
    s->refills = b.central_refills - a.central_refills;
    s->flushes = b.central_flushes - a.central_flushes;
    for (int i = 0; i < BIG; i++) mp_free(s->v[i]);
    for (int i = 0; i < BIG; i++) mp_free(s->w[i]);
    return NULL;
}

TEST(idle_bounds_give_way) {
    static starved_t s;
    pthread_t t;
    pthread_create(&t, NULL, budget_thread, &s);
    pthread_join(t, NULL);
    CHECK_LE(s.refills, (uint64_t)SMALL_PAIRS / 100);
    CHECK_LE(s.flushes, (uint64_t)SMALL_PAIRS / 100);
}

/* After fork() the child has one thread: the caches of the parent's other
 * threads are not its own.  They stayed registered, counted in the stats
 * (a one-thread child showed two thread caches) and never reused.  What
 * their bins held stays where it is: those lists may have been mid-update
 * when the parent forked, so nothing walks them. */
static pthread_barrier_t fork_bar;

static void *forking_peer(void *arg) {
    (void)arg;
    mp_free(mp_malloc(100));            /* this thread's cache */
    pthread_barrier_wait(&fork_bar);    /* it exists */
    pthread_barrier_wait(&fork_bar);    /* the fork is over */
    return NULL;
}

TEST(fork_child_counts_only_its_cache) {
    mp_free(mp_malloc(100));
    REQUIRE(pthread_barrier_init(&fork_bar, NULL, 2) == 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, forking_peer, NULL) == 0);
    pthread_barrier_wait(&fork_bar);
    size_t parent = _mp_tcache_count();
    pid_t pid = fork();
    if (pid == 0) {
        size_t n = _mp_tcache_count();
        mp_free(mp_malloc(100));              /* still works */
        void *p = mp_malloc(5000);
        mp_free(p);
        _exit(n == 1 && _mp_tcache_count() == 1 ? 0 : 10 + (int)n);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    pthread_barrier_wait(&fork_bar);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&fork_bar);
    CHECK_GE(parent, 2);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x (exit 10+n: n caches)", st);
}

/* Leave k blocks of `size` in this thread's emptied cache, and mark the
 * thread as one that frees (as an overflow would), which borrowing needs. */
static void stock_bin(size_t size, int k) {
    enum { KMAX = 64 };
    void *q[KMAX];
    REQUIRE(k <= KMAX);
    mp_thread_flush();
    for (int i = 0; i < k; i++) q[i] = mp_malloc(size);
    for (int i = 0; i < k; i++) mp_free(q[i]);
    _mp_tc->freed_tick = _mp_tc->scavenge_tick;
}

/* A malloc whose bin is empty takes a block this thread holds in the next
 * class's bin, the second (the head stays for the free path's double-free
 * check), and its free puts it back there; an aligned request does not
 * borrow, and with nothing cached the class is exact. */
TEST(malloc_borrows_next_class) {
    size_t n = 1000, g = mp_good_size(n), g2 = mp_good_size(g + 1);
    unsigned c = mp_size_class(n), c2 = mp_size_class(g2);
    REQUIRE(c2 > c);
    mp_thread_flush();
    void *own = mp_malloc(n);
    CHECK_EQ(mp_usable_size(own), g);          /* nothing cached: exact */
    mp_free(own);
    mp_thread_flush();
    void *q1 = mp_malloc(g2), *q2 = mp_malloc(g2);
    mp_free(q2);
    mp_free(q1);
    mp_tcache_t *tc = _mp_tc;
    REQUIRE(tc->head[c] == NULL && tc->head[c2] == q1 && *(void **)q1 == q2);
    tc->freed_tick = tc->scavenge_tick;        /* as after an overflow: it frees */
    size_t u = 0;
    void *p = mp_malloc_usable(n, &u);
    CHECK(p == q2);
    CHECK_EQ(u, g2);
    CHECK_EQ(mp_usable_size(p), g2);
    CHECK(tc->head[c2] == q1);                 /* the head stays */
    mp_free(p);
    CHECK(tc->head[c2] == q2);                 /* back to its own bin */
    CHECK(tc->head[c] == NULL);
    void *a = mp_aligned_alloc(64, n);
    REQUIRE(a != NULL);
    CHECK(a != q1 && a != q2);
    CHECK_EQ((uintptr_t)a % 64, 0);
    CHECK_EQ(mp_usable_size(a) % 64, 0);
    mp_free(a);
}

/* A loop that mallocs and frees one class while the next class's bin is
 * full borrows at most MP_LEND_RUN times; then its own bin is refilled and
 * every later malloc of the loop is the class's own (the fast path). */
TEST(borrow_loop_falls_back_to_own_class) {
    size_t n = 3000, g = mp_good_size(n), g2 = mp_good_size(g + 1);
    stock_bin(g2, 40);
    int borrowed = 0, last_borrow = -1;
    for (int i = 0; i < 1000; i++) {
        void *p = mp_malloc(n);
        REQUIRE(p != NULL);
        if (mp_usable_size(p) == g2) {
            borrowed++;
            last_borrow = i;
        } else {
            CHECK_EQ(mp_usable_size(p), g);
        }
        mp_free(p);
    }
    CHECK_EQ(borrowed, MP_LEND_RUN);
    CHECK_EQ(last_borrow, MP_LEND_RUN - 1);
}

/* The same with another class missing now and then in the loop (its live
 * count grows): those slow paths must not renew the borrowing, or every
 * temporary went through the slow path for good (a review's repro: 126
 * instructions an iteration against 79). */
TEST(borrow_loop_with_other_misses_falls_back) {
    enum { N = 2000 };
    static void *keep[N];
    size_t g = mp_good_size(32), g2 = mp_good_size(g + 1);
    REQUIRE(g2 == mp_good_size(48));
    stock_bin(48, 40);
    int borrowed = 0, last_borrow = -1;
    for (int i = 0; i < N; i++) {
        void *t = mp_malloc(32);
        keep[i] = mp_malloc(48);
        REQUIRE(t != NULL && keep[i] != NULL);
        if (mp_usable_size(t) == g2) {
            borrowed++;
            last_borrow = i;
        }
        mp_free(t);
    }
    for (int i = 0; i < N; i++) mp_free(keep[i]);
    CHECK_LE(borrowed, MP_LEND_RUN);
    CHECK_LT(last_borrow, 200);
}

/* A thread that only allocates (a producer, whose blocks another thread
 * frees) does not borrow: its bins hold what its refills just brought.
 * Once its frees overflow a bin, it does. */
static void *producer_thread(void *arg) {
    int *res = arg;
    enum { M = 20000 };
    static void *blk[M];
    size_t n = 1000, g = mp_good_size(n), g2 = mp_good_size(g + 1);
    for (int i = 0; i < M; i++) blk[i] = mp_malloc(64);   /* > MP_LEND_FREED misses */
    void *q1 = mp_malloc(g2), *q2 = mp_malloc(g2), *q3 = mp_malloc(g2);
    mp_free(q3);
    mp_free(q2);                   /* the lender holds two: borrowing could */
    void *p = mp_malloc(n);
    res[0] = mp_usable_size(p) == g;                      /* it did not */
    for (int i = 0; i < M; i++) mp_free(blk[i]);          /* overflows */
    mp_thread_flush();                                     /* bin c empty again */
    q2 = mp_malloc(g2);
    q3 = mp_malloc(g2);
    mp_free(q3);
    mp_free(q2);
    void *b = mp_malloc(n);
    res[1] = mp_usable_size(b) == g2;                      /* now it borrows */
    mp_free(b);
    mp_free(p);
    mp_free(q1);
    return NULL;
}

TEST(only_a_freeing_thread_borrows) {
    pthread_t t;
    int res[2] = { 0, 0 };
    pthread_create(&t, NULL, producer_thread, res);
    pthread_join(t, NULL);
    CHECK_MSG(res[0], "a thread that had only allocated borrowed");
    CHECK_MSG(res[1], "a thread whose frees overflowed did not borrow");
}

TEST(flush_empties_bins) {
    void *p = mp_malloc(100);
    mp_free(p);
    mp_thread_flush();
    mp_tcache_t *tc = _mp_tc;
    for (int c = 1; c < _mp_nclasses; c++) {
        CHECK(tc->head[c] == NULL);
        CHECK_EQ(tc->room[c], (int64_t)tc->max[c]);
    }
}

int main(void) {
    RUN(class_table_matches_lookup);
    RUN(first_use_creates_cache);
    RUN(bin_bounded_and_counted);
    RUN(byte_cap);
    RUN(thread_exit_returns_cache);
    RUN(freeing_thread_flushes_in_batches);
    RUN(idle_bounds_give_way);
    RUN(fork_child_counts_only_its_cache);
    RUN(flush_empties_bins);
    RUN(malloc_borrows_next_class);
    RUN(borrow_loop_falls_back_to_own_class);
    RUN(borrow_loop_with_other_misses_falls_back);
    RUN(only_a_freeing_thread_borrows);
    return harness_summary();
}
