/*
 * tcache.c - the thread caches: one per thread, a free list per size class,
 * used without any lock or atomic operation.  This file holds their slow
 * paths (the fast paths are inline in malloc.c): creation, refill from the
 * central lists, flush to them, the adaptive bound on each list, and the
 * return of a cache when its thread exits.
 *
 * The cache pointer _mp_tc is an initial-exec TLS variable (8 of the
 * library's 40 bytes of static TLS, which glibc's reserve covers even when
 * the library is dlopen'ed) that starts at _mp_tcache_empty.  That cache's lists are empty
 * and its free checks fail, so a thread's first malloc or free lands here
 * with no test in the fast path.  When a thread exits, its cache is flushed
 * and the pointer moves to tcache_dead, another empty cache, which makes the
 * rest of the thread's life (other TLS destructors may still free) go
 * straight to the central lists.
 *
 * Bounds: each list may grow to max[c] objects; max starts at 0 and grows
 * (1, 2, 4, ... then a batch at a time) on each refill and on each overflow
 * of a free, halved by the periodic trim below, up to the class's tc_limit,
 * while the sum of max[c]*size over the classes stays within
 * MEMPOOL_TCACHE_MAX bytes.
 * room[c] = max[c] - length is what the fast path counts down.
 *
 * A plain malloc whose bin is empty first borrows a block from the next
 * class's bin (tcache_borrow): one class bigger, already resident, instead
 * of new memory for this class.
 *
 * Locking: a cache is only touched by its thread, except the registry
 * links, under registry_lock (stats, fork).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include "internal.h"

__thread mp_tcache_t *_mp_tc __attribute__((tls_model(MP_TLS_MODEL))) = &_mp_tcache_empty;
mp_tcache_t _mp_tcache_empty = { .is_static = true };
static mp_tcache_t tcache_dead = { .is_static = true };

static mp_lock_t registry_lock = MP_LOCK_INIT;
static mp_tcache_t *registry;          /* live caches */
static mp_tcache_t *spare;             /* caches of exited threads, reused */
static size_t ncaches;
static pthread_key_t tc_key;
static bool tc_key_ok;                 /* false: no key left, no caches */
static __thread size_t tc_budget __attribute__((tls_model(MP_TLS_MODEL)));  /* sum of max[c]*size[c] */

static void tcache_thread_exit(void *arg);

void _mp_tcache_setup_thread_key(void) {
    tc_key_ok = pthread_key_create(&tc_key, tcache_thread_exit) == 0;
}

static mp_tcache_t *tcache_create(void) {
    mp_lock(&registry_lock);
    mp_tcache_t *tc = spare;
    if (tc) spare = tc->next;
    mp_unlock(&registry_lock);
    if (tc == NULL) {
        tc = _mp_meta_alloc(sizeof(mp_tcache_t));
        if (tc == NULL) return NULL;
    }
    memset(tc, 0, sizeof *tc);
    tc_budget = 0;
    /* cls[n] = _mp_cls8[(n + 7) >> 3]: cls[0], then each entry of _mp_cls8
     * eight times, stored eight bytes at a time (byte by byte this loop was
     * 29,000 instructions, most of what starting a thread, or a process,
     * costs the library). */
    tc->cls[0] = _mp_cls8[0];
    for (size_t i = 1; i <= MP_LOOKUP_MAX / 8; i++) {
        uint64_t v = _mp_cls8[i] * 0x0101010101010101ull;
        memcpy(&tc->cls[8 * i - 7], &v, sizeof v);
    }
    static _Atomic uint32_t next_arena;
    tc->arena = atomic_fetch_add_explicit(&next_arena, 1, memory_order_relaxed) %
                (uint32_t)mp_option(MP_OPT_ARENAS);
    for (int c = 1; c < _mp_nclasses; c++) {
        const mp_class_t *k = &_mp_classes[c];
        tc->mask[c] = k->span_align - 1;
        tc->divc[c] = k->divc;
        /* MEMPOOL_CHECK: every free fails the fast check and is validated in
         * full by the slow path, which also keeps the lists empty. */
        tc->tplus[c] = mp_option(MP_OPT_CHECK) || !k->fast_free ? 0 : k->tplus;
        /* max, room and the budget start at 0: a bin earns its bound on
         * its first miss, so classes a thread never uses cost it nothing. */
    }
    mp_lock(&registry_lock);
    tc->next = registry;
    if (registry) registry->prev = tc;
    registry = tc;
    ncaches++;
    mp_unlock(&registry_lock);
    _mp_tc = tc;
    pthread_setspecific(tc_key, tc);
    return tc;
}

/* Give a bin's whole list back to the central list. */
static void bin_drain(mp_tcache_t *tc, unsigned c) {
    void *h = tc->head[c];
    if (h == NULL) return;
    uint32_t n = (uint32_t)((int64_t)tc->max[c] - tc->room[c]);
    tc->head[c] = NULL;
    tc->room[c] = (int64_t)tc->max[c];
    _mp_central_give(tc->arena, c, h, n);
}

static void tcache_release(mp_tcache_t *tc) {
    for (int c = 1; c < _mp_nclasses; c++) bin_drain(tc, (unsigned)c);
}

static void tcache_thread_exit(void *arg) {
    mp_tcache_t *tc = arg;
    if (tc == NULL || tc->is_static) return;
    _mp_tc = &tcache_dead;
    tcache_release(tc);
    mp_lock(&registry_lock);
    if (tc->prev) tc->prev->next = tc->next; else registry = tc->next;
    if (tc->next) tc->next->prev = tc->prev;
    ncaches--;
    tc->next = spare;
    spare = tc;
    mp_unlock(&registry_lock);
}

void _mp_tcache_thread_flush(void) {
    mp_tcache_t *tc = _mp_tc;
    if (!tc->is_static) tcache_release(tc);
}

/* The cache of this thread, creating it on first use; NULL when the thread
 * must go without (during start-up, after its exit, in check mode). */
static mp_tcache_t *tcache_get(void) {
    mp_tcache_t *tc = _mp_tc;
    if (MP_LIKELY(!tc->is_static)) return tc;
    if (tc == &tcache_dead) return NULL;
    mp_ensure_init();
    /* Without the key a cache could not go back at thread exit. */
    if (!tc_key_ok) return NULL;
    if (atomic_load_explicit(&_mp_ready, memory_order_acquire) != 2) return NULL; /* re-entry */
    return tcache_create();
}

/* Give n objects of bin c (fewer if it holds fewer; it holds at least one)
 * back to the central list: those after the head, which stays.  The head is
 * what the free fast path checks a pointer against for a double free, and
 * most often the block just freed: a flush from the head made the overflow
 * that a free causes (a consumer thread's every free; one-object batches
 * from 4368 bytes) take that block away, and a second free of it went
 * unnoticed, its block cached twice (tests/misuse/double_free_consumer).
 * The head goes only when it is all the bin holds. */
static void bin_give(mp_tcache_t *tc, unsigned c, uint32_t n) {
    void *keep = tc->head[c];
    void **from = *(void **)keep ? (void **)keep : (void **)&tc->head[c];
    void *h = *from, *tail = h;
    uint32_t taken = 1;
    for (; taken < n && *(void **)tail; taken++) tail = *(void **)tail;
    *from = *(void **)tail;
    *(void **)tail = NULL;
    tc->room[c] += (int64_t)taken;
    _mp_central_give(tc->arena, c, h, taken);
}

/* The bin of class c overflowed (room < 0): give one batch back. */
static void tcache_flush(mp_tcache_t *tc, unsigned c) {
    bin_give(tc, c, _mp_classes[c].batch);
}

/* Set bin c's bound to nmax objects; room (what the fast path counts down)
 * and the thread's byte budget follow it. */
static void bin_set_bound(mp_tcache_t *tc, unsigned c, uint32_t nmax) {
    int64_t d = (int64_t)nmax - (int64_t)tc->max[c];
    tc->max[c] = nmax;
    tc->room[c] += d;
    tc_budget += (size_t)(d * (int64_t)_mp_classes[c].size);
}

/* ---- trimming ------------------------------------------------------------------ */
/* Bins refilled when empty and bounded only when full drift upward when a
 * thread's frees and mallocs of a class balance out at random (each refill
 * adds a batch that the next run of frees may not consume): a thread can end
 * up holding megabytes it does not reuse.  Every 32nd miss, if the bins hold
 * more than MEMPOOL_TCACHE_MAX/8 bytes, each bin gives half its objects
 * back and its bound is halved (not below a batch).  The sum is exact:
 * max - room is a bin's length. */
static void tcache_scavenge(mp_tcache_t *tc) {
    size_t held = 0;
    for (int c = 1; c < _mp_nclasses; c++)
        held += (size_t)(tc->max[c] - tc->room[c]) * _mp_classes[c].size;
    if (held <= (size_t)mp_option(MP_OPT_TCACHE_MAX) / 8) return;
    for (int c = 1; c < _mp_nclasses; c++) {
        const mp_class_t *k = &_mp_classes[c];
        uint32_t len = (uint32_t)(tc->max[c] - tc->room[c]);
        if (len >= 2) bin_give(tc, (unsigned)c, len / 2);
        uint32_t nmax = tc->max[c] / 2 < k->batch ? k->batch : tc->max[c] / 2;
        if (nmax < tc->max[c]) {
            bin_set_bound(tc, (unsigned)c, nmax);
            if (tc->room[c] < 0) tcache_flush(tc, (unsigned)c);
        }
    }
}

/* Every 32nd slow-path event (a miss or an overflow) may trim the cache. */
static inline void tcache_tick(mp_tcache_t *tc) {
    if ((++tc->scavenge_tick & 31) == 0) tcache_scavenge(tc);
}

/* The byte budget is spent: halve the bound of every bin but `except` that
 * holds less than half of it, a bound earned once and no longer filled.
 * Bounds come down otherwise only in the trim above, which runs when the
 * bins hold a lot; a thread whose big bins grew to their limits and then
 * emptied (their objects live) held nothing, kept its whole budget, and no
 * other class could earn a bound: each of its mallocs and frees took the
 * central lock, for good (test_tcache idle_bounds_give_way). */
static void tcache_lower_idle_bounds(mp_tcache_t *tc, unsigned except) {
    for (unsigned c = 1; c < (unsigned)_mp_nclasses; c++) {
        uint32_t len = (uint32_t)(tc->max[c] - tc->room[c]), nmax = tc->max[c] / 2;
        if (c != except && len < nmax) bin_set_bound(tc, c, nmax);
    }
}

/* Grow the bound of bin c towards limit: a thread that keeps missing on its
 * mallocs, or overflowing on its frees, uses this class a lot, so let it
 * keep more, within its class and byte limits.  Slow start (1, 2, 4, ... up
 * to a batch), then a batch at a time: a class used once costs one object,
 * not a batch of touched memory. */
static void bin_grow(mp_tcache_t *tc, unsigned c, uint32_t limit) {
    const mp_class_t *k = &_mp_classes[c];
    if (tc->max[c] >= limit) return;
    /* The first step is a cache line's worth of objects, which the central
     * list carves whole (see _mp_central_take). */
    uint32_t grow = tc->max[c] >= k->batch ? k->batch
                    : tc->max[c]          ? tc->max[c]
                                          : mp_class_line_objs(k->size);
    if (tc->max[c] + grow > limit) grow = limit - tc->max[c];
    size_t add = (size_t)grow * k->size, cap = (size_t)mp_option(MP_OPT_TCACHE_MAX);
    if (tc_budget + add > cap) {
        tcache_lower_idle_bounds(tc, c);
        if (tc_budget + add > cap) return;
    }
    bin_set_bound(tc, c, tc->max[c] + grow);
}

/* ---- allocation slow path ---------------------------------------------------- */
/* Borrowing.  A plain malloc whose bin is empty first takes a block this
 * thread holds of the next class up: the next one a size lookup gives, so
 * never an aligned-only class, and 16-byte aligned like every plain block
 * (aligned requests above 16 do not come here).  That block is resident and
 * idle, where a refill would take more memory from a span of this class.
 * Without it each thread's footprint in a class is its own peak there, and
 * the sum of those peaks is most of what a fluctuating heap costs beyond
 * its live bytes: tb 2 300000 8 4096 75 peaked at 8.1 MB against 8.9
 * without (docs/DESIGN.md).  The block is one class step bigger than
 * mp_good_size says, which mp_usable_size and mp_malloc_usable report; its
 * free goes to its own bin, by the page map.
 *
 * The lender's head stays: it is what the free fast path checks a double
 * free against, most often the block just freed (as in bin_give), and
 * lending it let free(p); q = malloc(smaller); free(p) go unnoticed, q and
 * the next malloc sharing one block (tests/misuse/double_free_borrowed).
 * So a bin lends only from its second block on.
 *
 * A class that keeps borrowing, as a loop does whose temporaries come
 * straight back to the lender, would take this slow path on every malloc.
 * After MP_LEND_RUN borrows a class refills its own bin instead, and the
 * count starts again only then (_mp_tcache_alloc_class_slow), so such a
 * loop runs on its own bin and the fast path after at most 255 slow
 * mallocs (a few microseconds), whatever the rest of the thread does.
 * Lower limits cost tb memory: 64 0.14 MB of the gain, 16 0.27 MB.
 *
 * Only a thread that frees borrows: one whose frees overflowed a bin within
 * its last MP_LEND_FREED slow-path events.  Its bins then hold what its own
 * frees left, idle while a neighbour class refills.  A thread that only
 * allocates, a producer whose blocks another thread frees, has bins that
 * hold what its refills just brought, which its own classes are about to
 * use: borrowing there saves nothing and turns each refilled batch into
 * single slow-path mallocs (bench_prodcons 1 lost 28% of its speed; a
 * producer/consumer in turns 156 instructions a pair against 146). */
static void *tcache_borrow(unsigned c) {
    mp_tcache_t *tc = _mp_tc;
    if (tc->lend_run[c] >= MP_LEND_RUN) return NULL;
    if (tc->scavenge_tick - tc->freed_tick > MP_LEND_FREED) return NULL;
    unsigned d = c + 1;
    while (d < (unsigned)_mp_nclasses && _mp_classes[d].aligned_only) d++;
    if (d >= (unsigned)_mp_nclasses) return NULL;
    void *h = tc->head[d];          /* empty in the static caches, check mode */
    void *p = h ? *(void **)h : NULL;
    if (p == NULL) return NULL;
    *(void **)h = *(void **)p;
    tc->room[d]++;
    tc->lend_run[c]++;
    return p;
}

MP_NOINLINE void *_mp_tcache_alloc_slow(size_t n) {
    mp_ensure_init();
    if (n > MP_SMALL_MAX) return _mp_malloc_generic(n);
    unsigned c = mp_size_class(n);
    void *p = tcache_borrow(c);
    return p ? p : _mp_tcache_alloc_class_slow(c);
}

/* The bin of class c is empty (or this thread has no cache yet). */
MP_NOINLINE void *_mp_tcache_alloc_class_slow(unsigned c) {
    mp_ensure_init();
    mp_tcache_t *tc = tcache_get();
    if (tc == NULL || mp_option(MP_OPT_CHECK)) {
        void *one;
        return _mp_central_take(0, c, 1, 1, &one) ? one : NULL;
    }
    void *p = tc->head[c];
    if (p) {          /* filled by a thread-cache creation race: just pop */
        tc->head[c] = *(void **)p;
        tc->room[c]++;
        return p;
    }
    const mp_class_t *k = &_mp_classes[c];
    tc->lend_run[c] = 0;          /* it may borrow again (tcache_borrow) */
    tcache_tick(tc);
    bin_grow(tc, c, k->tc_limit);
    uint32_t want = k->batch < tc->max[c] ? k->batch : tc->max[c];
    if (want == 0) want = 1;      /* over budget: serve, cache nothing */
    void *head;
    /* The bin is empty: it takes room[c] objects, and the caller one more. */
    uint32_t got = _mp_central_take(tc->arena, c, want, (uint32_t)tc->room[c] + 1, &head);
    if (got == 0) return NULL;
    p = head;
    tc->head[c] = *(void **)p;
    tc->room[c] -= (int64_t)(got - 1);
    return p;
}

/* ---- free slow path -------------------------------------------------------- */
/* Bin c overflowed on a free (room < 0).  The bound grows here as it does on
 * a malloc's miss: a thread that only frees a class (the consumer of a
 * producer/consumer pair) never misses on it, and with a bound that grew on
 * misses alone its bin stayed at 0 and every one of its frees took the
 * central lock for one object (bench_prodcons 8: 8,000,186 flushes for 8M
 * frees).  Frees grow it to one batch only: from there each overflow gives
 * a whole batch back, one lock per batch, into a transfer slot where the
 * producer's next refill takes it in O(1).  More would only hoard: a thread
 * that frees more than it allocates does not reuse what it keeps, and one
 * that does reuse it grows the bound further on its misses.  (Growing to the
 * class limit here held 8 MB more in the 16 threads of bench_prodcons 8.)
 * The scavenger ticks here too, or a thread that never misses would never be
 * trimmed. */
static void tcache_overflow(mp_tcache_t *tc, unsigned c) {
    tcache_tick(tc);
    tc->freed_tick = tc->scavenge_tick;       /* this thread frees (tcache_borrow) */
    if (tc->room[c] >= 0) return;
    bin_grow(tc, c, _mp_classes[c].batch);    /* tc_limit >= 2 batches */
    if (tc->room[c] < 0) tcache_flush(tc, c);
}

/* The free fast path pushed ptr and overflowed its bin of class c.  Its
 * arguments are the registers the fast path already holds them in, so the
 * call costs it no moves; the cache is this thread's. */
MP_NOINLINE void _mp_tcache_overflow(void *ptr, unsigned c) {
    (void)ptr;
    tcache_overflow(_mp_tc, c);
}

/* A free of a small object whose fast check failed because this thread has
 * no cache yet (or no longer), or because MEMPOOL_CHECK is on.  The pointer
 * has been validated by the caller. */
void _mp_tcache_free_small(void *p, unsigned c) {
    mp_tcache_t *tc = tcache_get();
    if (tc == NULL || mp_option(MP_OPT_CHECK)) {
        *(void **)p = NULL;
        _mp_central_give(0, c, p, 1);
        return;
    }
    if (MP_UNLIKELY(tc->head[c] == p)) _mp_fatal("double free", p);
    *(void **)p = tc->head[c];
    tc->head[c] = p;
    if (--tc->room[c] < 0) tcache_overflow(tc, c);
}

/* ---- registry: stats and fork ------------------------------------------- */
size_t _mp_tcache_count(void) {
    mp_lock(&registry_lock);
    size_t n = ncaches;
    mp_unlock(&registry_lock);
    return n;
}

void _mp_tcache_lock_all(void) { mp_lock(&registry_lock); }

/* In a fork child, the one thread left keeps its cache; those of the
 * parent's other threads leave the registry for the spare list (a struct a
 * new thread reuses, cleared).  The objects in their bins are not given
 * back: a thread may have been in the middle of a push or pop when the
 * parent forked, and the child's copy of that list can be torn. */
static void tcache_forget_others(void) {
    mp_tcache_t *mine = _mp_tc, *tc = registry, *nx;
    registry = NULL;
    ncaches = 0;
    for (; tc; tc = nx) {
        nx = tc->next;
        tc->prev = NULL;
        if (tc == mine) {
            tc->next = NULL;
            registry = tc;
            ncaches = 1;
        } else {
            tc->next = spare;
            spare = tc;
        }
    }
}

void _mp_tcache_unlock_all(bool child) {
    if (!child) {
        mp_unlock(&registry_lock);
        return;
    }
    tcache_forget_others();
    mp_lock_reset(&registry_lock);
}
