/* test_central.c - central free lists: take, give, span life cycle, arenas
 * (central.c). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness.h"
#include "internal.h"
#include "mempool.h"

static size_t list_len(void *h) {
    size_t n = 0;
    for (; h; h = *(void **)h) n++;
    return n;
}

TEST(take_gives_distinct_objects_of_the_class) {
    mp_ensure_init();
    for (unsigned c = 1; c < (unsigned)_mp_nclasses; c += 7) {
        const mp_class_t *k = &_mp_classes[c];
        void *head;
        uint32_t want = k->batch;
        uint32_t got = _mp_central_take(0, c, want, want, &head);
        CHECK_EQ(got, want);
        CHECK_EQ(list_len(head), got);
        for (void *o = head; o; o = *(void **)o) {
            CHECK_EQ(mp_pagemap_class((uintptr_t)o), k->fast_free ? c : 0);
            mp_span_t *s = mp_pagemap_span((uintptr_t)o);
            REQUIRE(s != NULL);
            CHECK_EQ(s->state, MP_SPAN_SMALL);
            CHECK_EQ(((uintptr_t)o - s->start) % k->size, 0);
            for (void *q = *(void **)o; q; q = *(void **)q) CHECK(q != o);
        }
        _mp_central_give(0, c, head, got);
    }
}

/* Two takes of one object from fresh spans share no cache line: the
 * central list carves a line's worth (mp_class_line_objs) when the caller
 * accepts it, so two threads' first objects do not sit in one line.  Runs
 * first, while every class's spans are fresh. */
static bool lines_meet(void *a, void *b, size_t size) {
    for (void *x = a; x; x = *(void **)x)
        for (void *y = b; y; y = *(void **)y) {
            uintptr_t xl = (uintptr_t)x / MP_CACHELINE, xh = ((uintptr_t)x + size - 1) / MP_CACHELINE;
            uintptr_t yl = (uintptr_t)y / MP_CACHELINE, yh = ((uintptr_t)y + size - 1) / MP_CACHELINE;
            if (xl <= yh && yl <= xh) return true;
        }
    return false;
}

TEST(takes_do_not_share_lines) {
    mp_ensure_init();
    for (unsigned c = 1; c < (unsigned)_mp_nclasses; c++) {
        const mp_class_t *k = &_mp_classes[c];
        if (k->size >= 1024) break;
        void *a, *b;
        uint32_t na = _mp_central_take(0, c, 1, 64, &a);
        uint32_t nb = _mp_central_take(0, c, 1, 64, &b);
        CHECK_EQ(na, mp_class_line_objs(k->size));
        CHECK_EQ(nb, mp_class_line_objs(k->size));
        CHECK_MSG(!lines_meet(a, b, k->size), "class %u (%u B): two takes share a line", c,
                  (unsigned)k->size);
        /* Without room for it, a take stops at what it wants. */
        void *one;
        CHECK_EQ(_mp_central_take(0, c, 1, 1, &one), 1);
        _mp_central_give(0, c, a, na);
        _mp_central_give(0, c, b, nb);
        _mp_central_give(0, c, one, 1);
        if (TEST_FAILED()) return;
    }
}

/* Take `nspans` spans' worth of class c one object at a time through arena
 * ta, give every object back one at a time through arena ga, and check
 * where the emptied spans went: kept on the central list while the kept
 * ones come to at most MEMPOOL_RETAIN (plus one spare per class of one-page
 * spans), the rest back to the page heap. */
static void spans_fill_and_empty(unsigned ta, unsigned ga, unsigned c, size_t nspans) {
    const mp_class_t *k = &_mp_classes[c];
    size_t span = (size_t)k->pages * MP_PAGE_SIZE, n = nspans * k->nobj;
    size_t cap = (size_t)mp_option(MP_OPT_RETAIN);
    void **objs = mp_malloc(n * sizeof *objs);
    REQUIRE(objs != NULL);
    _mp_central_drain_slots();          /* start with nothing kept */
    CHECK_EQ(_mp_central_cached_bytes(), 0);
    for (size_t i = 0; i < n; i++) REQUIRE(_mp_central_take(ta, c, 1, 1, &objs[i]) == 1);
    mp_pageheap_stats_t before, after;
    _mp_pageheap_stats(&before);
    CHECK_GE(before.small_spans_bytes, (nspans - 1) * span);
    for (size_t i = 0; i < n; i++) {
        *(void **)objs[i] = NULL;
        _mp_central_give(ga, c, objs[i], 1);
    }
    _mp_pageheap_stats(&after);
    size_t kept = _mp_central_cached_bytes();
    CHECK_LE(kept, cap + span);
    CHECK_GE(kept + span, cap);       /* the cache filled up to its cap */
    /* Everything beyond what is kept went back (two spans of slack: the
     * first and last may be shared with other objects of the class). */
    CHECK_LE(after.small_spans_bytes + (nspans - 2) * span, before.small_spans_bytes + kept);
    CHECK_EQ(_mp_pageheap_check(), 0);
    _mp_central_drain_slots();
    CHECK_EQ(_mp_central_cached_bytes(), 0);
    mp_free(objs);
}

/* Objects given back one at a time return to their spans; emptied spans
 * beyond what the central lists keep go back to the page heap, and those of
 * classes of a few objects a span all go back. */
TEST(spans_return_to_page_heap) {
    unsigned c = mp_size_class(1024);
    size_t span = (size_t)_mp_classes[c].pages * MP_PAGE_SIZE;
    spans_fill_and_empty(0, 0, c, (size_t)mp_option(MP_OPT_RETAIN) / span + 500);
    unsigned c2 = mp_size_class(4096);          /* two objects a span */
    REQUIRE(_mp_classes[c2].nobj < 4);
    enum { N = 400 };
    static void *objs[N];
    for (int i = 0; i < N; i++) REQUIRE(_mp_central_take(0, c2, 1, 1, &objs[i]) == 1);
    for (int i = 0; i < N; i++) {
        *(void **)objs[i] = NULL;
        _mp_central_give(0, c2, objs[i], 1);
    }
    CHECK_LE(_mp_central_cached_bytes(), (size_t)_mp_classes[c2].pages * MP_PAGE_SIZE);
    _mp_central_drain_slots();
}

/* An emptied span kept on its list is carved again from its start, in
 * address order, with no page-heap traffic; mp_trim's drain frees it. */
TEST(empty_spans_are_kept_and_carved_again) {
    unsigned c = mp_size_class(1024);
    const mp_class_t *k = &_mp_classes[c];
    size_t span = (size_t)k->pages * MP_PAGE_SIZE;
    enum { SPANS = 64 };
    static void *objs[SPANS * 64];
    size_t n = SPANS * (size_t)k->nobj;
    REQUIRE(n <= sizeof objs / sizeof objs[0]);
    REQUIRE(SPANS * span < (size_t)mp_option(MP_OPT_RETAIN));
    _mp_central_drain_slots();
    for (size_t i = 0; i < n; i++) REQUIRE(_mp_central_take(0, c, 1, 1, &objs[i]) == 1);
    for (size_t i = 0; i < n; i++) {
        *(void **)objs[i] = NULL;
        _mp_central_give(0, c, objs[i], 1);
    }
    CHECK_GE(_mp_central_cached_bytes(), (SPANS - 1) * span);
    mp_pageheap_stats_t before, after;
    _mp_pageheap_stats(&before);
    for (size_t i = 0; i < n; i++) REQUIRE(_mp_central_take(0, c, 1, 1, &objs[i]) == 1);
    _mp_pageheap_stats(&after);
    CHECK_EQ(after.small_spans_bytes, before.small_spans_bytes);   /* no new span */
    CHECK_EQ(_mp_central_cached_bytes(), 0);
    /* Carved afresh: each span's objects come out in address order. */
    for (size_t i = 1; i < n; i++) {
        if (mp_pagemap_span((uintptr_t)objs[i]) != mp_pagemap_span((uintptr_t)objs[i - 1])) continue;
        CHECK_EQ((uintptr_t)objs[i], (uintptr_t)objs[i - 1] + k->size);
    }
    for (size_t i = 0; i < n; i++) {
        *(void **)objs[i] = NULL;
        _mp_central_give(0, c, objs[i], 1);
    }
    _mp_central_drain_slots();
    _mp_pageheap_stats(&after);
    CHECK_EQ(_mp_central_cached_bytes(), 0);
    CHECK_LE(after.small_spans_bytes + (SPANS - 2) * span, before.small_spans_bytes);
    CHECK_EQ(_mp_pageheap_check(), 0);
}

/* A full batch is kept whole in a transfer slot and handed out whole. */
TEST(transfer_slots) {
    unsigned c = mp_size_class(64);
    const mp_class_t *k = &_mp_classes[c];
    void *h;
    uint32_t n = _mp_central_take(0, c, k->batch, k->batch, &h);
    REQUIRE(n == k->batch);
    _mp_central_give(0, c, h, n);
    void *h2;
    uint32_t n2 = _mp_central_take(0, c, k->batch, k->batch, &h2);
    CHECK_EQ(n2, n);
    CHECK(h2 == h);            /* the same list came back */
    _mp_central_give(0, c, h2, n2);
}

/* ---- several arenas: run in a child with MEMPOOL_ARENAS=4 ---------------- */
static void *thread_arena(void *arg) {
    void *p = mp_malloc(64);
    *(unsigned *)arg = _mp_tc->arena;
    mp_free(p);
    return NULL;
}

/* Threads are given arenas round-robin: any four in a row use all four. */
TEST(arenas_round_robin) {
    CHECK_EQ(mp_option(MP_OPT_ARENAS), 4);
    unsigned seen = 0;
    for (int i = 0; i < 4; i++) {
        unsigned a = 99;
        pthread_t t;
        pthread_create(&t, NULL, thread_arena, &a);
        pthread_join(t, NULL);
        REQUIRE(a < 4);
        seen |= 1u << a;
    }
    CHECK_EQ(seen, 0xfu);
}

/* A whole batch given through another arena lands in the transfer slots of
 * the arena whose span it came from, where that arena's next take finds it. */
TEST(batch_goes_back_to_its_arena) {
    unsigned c = mp_size_class(208);
    const mp_class_t *k = &_mp_classes[c];
    void *h;
    REQUIRE(_mp_central_take(1, c, k->batch, k->batch, &h) == k->batch);
    _mp_central_give(2, c, h, k->batch);
    void *h2;
    uint32_t n2 = _mp_central_take(2, c, k->batch, k->batch, &h2);
    CHECK(h2 != h);                  /* not in arena 2's slots */
    void *h1;
    uint32_t n1 = _mp_central_take(1, c, k->batch, k->batch, &h1);
    CHECK(h1 == h);                  /* but in arena 1's */
    _mp_central_give(1, c, h1, n1);
    _mp_central_give(2, c, h2, n2);
}

/* Objects given one at a time through another arena go back to their own
 * spans, and emptied spans beyond what is kept return to the page heap. */
TEST(objects_go_back_across_arenas) {
    unsigned c = mp_size_class(1024);
    size_t span = (size_t)_mp_classes[c].pages * MP_PAGE_SIZE;
    spans_fill_and_empty(1, 3, c, (size_t)mp_option(MP_OPT_RETAIN) / span + 300);
}

/* mp_trim leaves no empty span behind in any arena, even when a transfer
 * slot of a later arena holds objects of an earlier arena's span (a list
 * goes to the arena of its first object).  Draining arena by arena, the
 * earlier arena's span became empty after its turn and stayed committed. */
TEST(trim_empties_every_arena) {
    unsigned c = mp_size_class(512);            /* no other test here uses it */
    const mp_class_t *k = &_mp_classes[c];
    REQUIRE(k->batch >= 2 && k->nobj >= k->batch);
    mp_trim();
    CHECK_EQ(_mp_central_cached_bytes(), 0);
    void *rest, *first;
    REQUIRE(_mp_central_take(0, c, k->batch - 1, k->batch - 1, &rest) == k->batch - 1);
    REQUIRE(_mp_central_take(1, c, 1, 1, &first) == 1);
    mp_span_t *s0 = mp_pagemap_span((uintptr_t)rest);
    REQUIRE(s0 != NULL && s0->arena == 0 && s0->used == k->batch - 1);
    REQUIRE(mp_pagemap_span((uintptr_t)first)->arena == 1);
    *(void **)first = rest;
    _mp_central_give(0, c, first, k->batch);    /* a whole batch: arena 1's slots */
    mp_trim();
    CHECK_EQ(_mp_central_cached_bytes(), 0);
    CHECK(mp_pagemap_span((uintptr_t)rest) == NULL ||
          mp_pagemap_span((uintptr_t)rest)->state != MP_SPAN_SMALL);
    CHECK_EQ(_mp_pageheap_check(), 0);
}

/* Threads of four arenas trade objects, so their caches flush lists that
 * mix arenas, and one arena's count of objects out runs "negative" while
 * another's runs high.  mp_stats_get, called meanwhile, must stay sane (and
 * race-free under TSAN).  Summed one arena at a time, a read could miss a
 * take and see its give; it wraps only if that exceeds all bytes in use, a
 * window this test does not hit on two cores: it guards the locking, and
 * the reasoning in _mp_central_stats guards the rest. */
enum { TRADE_THREADS = 4, TRADE_SLOTS = 4096 };
static void *trade_pool[TRADE_SLOTS];
static pthread_mutex_t trade_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int trade_stop;

static void *trade_thread(void *arg) {
    uint64_t x = (uintptr_t)arg * 0x9e3779b97f4a7c15u + 1;
    void *mine[64];
    while (!atomic_load_explicit(&trade_stop, memory_order_relaxed)) {
        for (int i = 0; i < 64; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            mine[i] = mp_malloc(16 + x % 600);
            if (mine[i] == NULL) abort();   /* REQUIRE returns from a test, not a thread */
        }
        pthread_mutex_lock(&trade_lock);
        for (int i = 0; i < 64; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            void **slot = &trade_pool[x % TRADE_SLOTS];
            void *t = *slot;
            *slot = mine[i];
            mine[i] = t;
        }
        pthread_mutex_unlock(&trade_lock);
        for (int i = 0; i < 64; i++) mp_free(mine[i]);
    }
    mp_thread_flush();
    return NULL;
}

TEST(stats_while_arenas_trade) {
    pthread_t t[TRADE_THREADS];
    atomic_store(&trade_stop, 0);
    for (uintptr_t i = 0; i < TRADE_THREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, trade_thread, (void *)(i + 1)) == 0);
    size_t worst = 0;
    long reads = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        mp_stats_t st;
        mp_stats_get(&st);
        if (st.in_use > worst) worst = st.in_use;
        reads++;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - t0.tv_sec) * 1000000000L + (now.tv_nsec - t0.tv_nsec) < 1000000000L);
    atomic_store(&trade_stop, 1);
    for (int i = 0; i < TRADE_THREADS; i++) pthread_join(t[i], NULL);
    /* Live at most: the pool and each thread's 64, under 700 bytes each,
     * plus what the caches hold; far below 1 GiB, which a wrap is above. */
    CHECK_MSG(worst < ((size_t)1 << 30), "in_use read as %zu (%ld reads)", worst, reads);
    for (int i = 0; i < TRADE_SLOTS; i++) {
        mp_free(trade_pool[i]);
        trade_pool[i] = NULL;
    }
}

static int arenas_child(void) {
    RUN(arenas_round_robin);
    RUN(batch_goes_back_to_its_arena);
    RUN(objects_go_back_across_arenas);
    RUN(trim_empties_every_arena);
    RUN(stats_while_arenas_trade);
    return harness_summary();
}

TEST(several_arenas) {
    static const char *const env[] = { "MEMPOOL_ARENAS=4", "MP_TEST_ARENAS_CHILD=1", NULL };
    CHECK(harness_rerun(env, NULL));
}

/* By default, one arena per CPU the process may run on, at most 16. */
TEST(arenas_default_to_the_cpus) {
    if (getenv("MEMPOOL_ARENAS")) {
        harness_skip("arenas_default_to_the_cpus", "MEMPOOL_ARENAS is set");
        return;
    }
    mp_ensure_init();
    cpu_set_t set;
    REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
    long n = CPU_COUNT(&set);
    CHECK_EQ(mp_option(MP_OPT_ARENAS), n > MP_MAX_ARENAS ? MP_MAX_ARENAS : n);
}

int main(void) {
    if (getenv("MP_TEST_ARENAS_CHILD")) return arenas_child();
    RUN(takes_do_not_share_lines);
    RUN(take_gives_distinct_objects_of_the_class);
    RUN(spans_return_to_page_heap);
    RUN(empty_spans_are_kept_and_carved_again);
    RUN(transfer_slots);
    RUN(several_arenas);
    RUN(arenas_default_to_the_cpus);
    return harness_summary();
}
