/*
 * central.c - the central free lists: one per size class, each under its
 * own lock, between the thread caches above and the page heap below.
 *
 * A class's central list has two parts:
 *   - the transfer slots: whole batches (linked lists of exactly `batch`
 *     objects) that one thread flushed and another can take in O(1).  This is
 *     what makes producer/consumer hand-off cheap: the objects never go back
 *     to their spans.
 *   - the partial spans: SMALL spans with objects to give, on their free
 *     list or still uncarved past their bump pointer (carving lazily keeps a
 *     new span's untouched pages out of RSS).
 * Objects from a flush that does not fill a slot go back to their own span
 * (found in the page map).  A span of at most 4 pages and 4 objects or
 * more whose last object comes back stays on its class's list, empty,
 * while all the empty spans kept so (every class and arena) come to at
 * most MEMPOOL_RETAIN; the next
 * take that reaches it carves it again from its start, as if fresh.  Other
 * emptied spans return to the page heap, except one spare per class of
 * one-page spans.  Why: a thread that allocates and frees more than its
 * cache holds (seed 004's rounds: 10,000 blocks of 1 KiB) otherwise sends
 * every span back to the page heap, to be merged there and split off again
 * the next round, about 520 instructions a span under the page heap's one
 * lock (bench_rounds 1024: 1.24x / 1.21x / 1.42x the speed at 1 / 5 / 10
 * threads).  The page heap counts these bytes against its own retain
 * limit, so the free memory kept resident stays within what that allows.
 *
 * Arenas (MEMPOOL_ARENAS=n, seed 001's model): n sets of central lists, by
 * default one per CPU the process may run on (at most 16); each thread
 * cache is assigned one round-robin when it is created and takes from and
 * flushes to it, so up to n threads share no spans and no lock.  A span
 * belongs to the arena that carved it; a list given back goes to the arena
 * of its first object's span, and an object of another arena's span goes
 * back to it under its own arena's lock.
 *
 * Locking: central[a][c].lock guards everything of class c in arena a.  The
 * page heap lock is taken inside it (allocating or returning a span), never
 * the other way.  A thread that holds more than one central lock took them
 * in class then arena order: the fork handlers (all of them) and the
 * statistics (one class in every arena); every other path holds one at a
 * time.
 */
#include <string.h>
#include "internal.h"

#define MP_XFER_MAX 16

typedef struct {
    void *head;
    uint32_t n;
} xfer_slot_t;

/* One cache line per class: the lock and what every take or give reads.
 * The transfer slots live apart (xfer below) so that the lock words of all
 * classes fit in two pages: the fork handlers write every lock, and after
 * fork() each page they wrote is copied in the parent and in the child. */
typedef struct {
    mp_lock_t lock;
    uint32_t nslots;               /* batches in xfer[arena][class] */
    uint32_t nempty;               /* spans on `partial` with used == 0
                                    * (each counted in cached_empty) */
    mp_span_t *partial;            /* spans with objects to give */
    size_t out;                    /* objects handed out (to users or caches) */
    uint64_t takes, gives;
} MP_ALIGNED(MP_CACHELINE) central_t;

static central_t central[MP_MAX_ARENAS][MP_MAX_CLASSES];
static xfer_slot_t xfer[MP_MAX_ARENAS][MP_MAX_CLASSES][MP_XFER_MAX];

/* Bytes in the empty spans kept on the central lists (nempty above, summed).
 * Updated under each class's own lock, so only the sum is atomic; a race
 * may let the cap be passed by a span or two. */
static _Atomic size_t cached_empty;

size_t _mp_central_cached_bytes(void) {
    return atomic_load_explicit(&cached_empty, memory_order_relaxed);
}

static inline size_t span_bytes(const mp_class_t *k) { return (size_t)k->pages * MP_PAGE_SIZE; }

/* Keep a span of class k, just emptied, on its list?  Within MEMPOOL_RETAIN
 * for all of them, and always the first one of a class of one-page spans (a
 * class that oscillates around a span boundary).  Only spans of at most 4
 * pages and 4 objects or more (most classes up to 2 KiB and some to 8 KiB;
 * not, e.g., 1280 B, whose spans are 8 pages): a span of fewer objects
 * is little more than a free object, which the thread caches already keep,
 * and a bigger span saves the same page-heap round trip for more memory
 * that no other class can use meanwhile, where in the page heap its pages
 * serve every class (with all classes kept, tb's 256 KiB case peaked at
 * 325 MB against 313; with those of 4 objects or more, 317). */
static bool central_keep_empty(central_t *c, const mp_class_t *k) {
    size_t bytes = span_bytes(k);
    bool spare = c->nempty == 0 && k->pages == 1;
    bool fits = k->nobj >= 4 && k->pages <= 4 &&
                _mp_central_cached_bytes() + bytes <= (size_t)mp_option(MP_OPT_RETAIN);
    if (!spare && !fits) return false;
    c->nempty++;
    atomic_fetch_add_explicit(&cached_empty, bytes, memory_order_relaxed);
    return true;
}

/* An empty span leaves the cache: it is carved again, or freed. */
static void central_unkeep_empty(central_t *c, const mp_class_t *k) {
    c->nempty--;
    atomic_fetch_sub_explicit(&cached_empty, span_bytes(k), memory_order_relaxed);
}

/* The arenas in use: MEMPOOL_ARENAS, fixed at start-up.  Walks over all the
 * lists (fork, stats, trim) stop here and at _mp_nclasses: touching the
 * unused ones would fault in their pages, and after fork() every page the
 * fork handlers wrote is copied once in the parent and once in the child
 * (with all 16 arenas that was ~300 page faults per fork, doubling the cost
 * of a shell's fork+exec). */
static inline int central_narenas(void) { return (int)mp_option(MP_OPT_ARENAS); }

/* Batches one arena's transfer slots of a class may hold: the class's
 * share (xfer_slots, 64 KiB worth) split between the arenas, at least two
 * so that a producer and a consumer can pass batches back and forth.  With
 * the whole share each, 16 arenas could pin 16 times the memory (1 MiB a
 * class): a batch in a slot keeps its objects' spans from going back. */
static inline uint32_t central_xfer_cap(const mp_class_t *k) {
    uint32_t n = k->xfer_slots / (uint32_t)central_narenas();
    return n >= 2 ? n : k->xfer_slots < 2 ? k->xfer_slots : 2;
}

static void partial_push(central_t *c, mp_span_t *s) {
    s->prev = NULL;
    s->next = c->partial;
    if (c->partial) c->partial->prev = s;
    c->partial = s;
    s->in_list = 1;
}

static void partial_remove(central_t *c, mp_span_t *s) {
    if (s->prev) s->prev->next = s->next; else c->partial = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->in_list = 0;
}

/* A fresh span for class cls, from the page heap. */
static mp_span_t *central_new_span(unsigned arena, unsigned cls) {
    const mp_class_t *k = &_mp_classes[cls];
    mp_span_t *s = _mp_pageheap_alloc(k->pages, k->span_align, NULL);
    if (s == NULL) return NULL;
    _mp_pageheap_set_small(s, cls);
    s->nobj = k->nobj;
    s->used = 0;
    s->free = NULL;
    s->bump = s->start;
    s->arena = (uint8_t)arena;
    return s;
}

uint32_t _mp_central_take(unsigned arena, unsigned cls, uint32_t want, uint32_t upto,
                          void **head) {
    central_t *c = &central[arena][cls];
    const mp_class_t *k = &_mp_classes[cls];
    mp_lock(&c->lock);
    c->takes++;
    if (c->nslots > 0 && xfer[arena][cls][c->nslots - 1].n <= want) {
        xfer_slot_t *sl = &xfer[arena][cls][--c->nslots];
        *head = sl->head;
        c->out += sl->n;
        uint32_t n = sl->n;
        mp_unlock(&c->lock);
        return n;
    }
    void *list = NULL;
    uint32_t got = 0;
    uintptr_t size = k->size;
    /* Fresh objects are carved on past `want` (up to `upto`) to the end of
     * a cache line, so that the next take, often another thread's, starts
     * on a line of its own: slow-started caches (1, 2, 4 objects) would
     * otherwise interleave the first, hottest objects of several threads
     * in one line.  (Alone it made no measurable difference on tb; what
     * separated the threads there was one arena each, see the top.) */
    uintptr_t line = size < 1024 ? MP_CACHELINE - 1 : 0;
    while (got < want) {
        mp_span_t *s = c->partial;
        if (s == NULL) {
            s = central_new_span(arena, cls);
            if (s == NULL) break;
            partial_push(c, s);
        } else if (s->used == 0) {
            /* A kept empty span: all its objects are on its free list, so
             * it can be carved afresh, in address order. */
            central_unkeep_empty(c, k);
            s->free = NULL;
            s->bump = s->start;
        }
        while (got < want && s->free) {
            void *o = s->free;
            s->free = *(void **)o;
            *(void **)o = list;
            list = o;
            got++;
            s->used++;
        }
        uintptr_t end = s->start + (uintptr_t)s->nobj * size;
        while (s->bump < end && (got < want || (got < upto && (s->bump & line)))) {
            void *o = (void *)s->bump;
            s->bump += size;
            *(void **)o = list;
            list = o;
            got++;
            s->used++;
        }
        if (s->free == NULL && s->bump >= end) partial_remove(c, s);
    }
    c->out += got;
    mp_unlock(&c->lock);
    *head = list;
    return got;
}

/* Check mode, where no thread cache or transfer slot holds objects: is
 * object o of the small span s free?  SPAN_FREE_LISTED: on the span's free
 * list; SPAN_FREE_UNCARVED: past its bump pointer (not handed out since the
 * span was carved).  Called with the span's central lock held. */
enum { SPAN_LIVE, SPAN_FREE_LISTED, SPAN_FREE_UNCARVED };
static int span_object_state(const mp_span_t *s, const void *o) {
    if ((uintptr_t)o >= s->bump) return SPAN_FREE_UNCARVED;
    for (void *f = s->free; f; f = *(void **)f)
        if (f == o) return SPAN_FREE_LISTED;
    return SPAN_LIVE;
}

/* Put one object back on its span.  Called with c->lock held; may return
 * the span to the page heap (page heap lock nested inside). */
static void central_put_back(central_t *c, unsigned cls, void *o) {
    mp_span_t *s = mp_pagemap_span((uintptr_t)o);
    if (MP_UNLIKELY(mp_option(MP_OPT_CHECK)) && s && s->state == MP_SPAN_SMALL) {
        /* Check mode: objects come back one at a time, straight from free();
         * one already on the span's free list is a double free. */
        int st = span_object_state(s, o);
        if (st == SPAN_FREE_UNCARVED) _mp_fatal("free of a pointer not from mempool", o);
        if (st == SPAN_FREE_LISTED) _mp_fatal("double free", o);
    }
    if (MP_UNLIKELY(s == NULL || s->state != MP_SPAN_SMALL || s->cls != cls || s->used == 0))
        _mp_fatal("double free or corrupted free list", o);
    *(void **)o = s->free;
    s->free = o;
    s->used--;
    if (!s->in_list) partial_push(c, s);
    if (s->used == 0 && !central_keep_empty(c, &_mp_classes[cls])) {
        partial_remove(c, s);
        _mp_pageheap_free(s);
    }
}

/* Put a list of objects back on their spans.  *held is the arena whose
 * lock of class cls the caller holds; an object of another arena's span
 * moves the lock there (one central lock at a time, as always). */
static void central_put_back_list(unsigned *held, unsigned cls, void *head) {
    while (head) {
        void *nx = *(void **)head;
        mp_span_t *s = mp_pagemap_span((uintptr_t)head);
        unsigned a = s != NULL && s->state == MP_SPAN_SMALL ? s->arena : *held;
        if (MP_UNLIKELY(a != *held)) {
            mp_unlock(&central[*held][cls].lock);
            mp_lock(&central[a][cls].lock);
            *held = a;
        }
        central_put_back(&central[a][cls], cls, head);
        head = nx;
    }
}

void _mp_central_check_live(void *o, unsigned cls, const char *freed, const char *uncarved) {
    mp_span_t *s = mp_pagemap_span((uintptr_t)o);
    central_t *c = &central[s->arena][cls];
    mp_lock(&c->lock);
    int st = span_object_state(s, o);
    mp_unlock(&c->lock);
    if (st == SPAN_FREE_UNCARVED) _mp_fatal(uncarved, o);
    if (st == SPAN_FREE_LISTED) _mp_fatal(freed, o);
}

void _mp_central_give(unsigned arena, unsigned cls, void *head, uint32_t n) {
    /* With several arenas, a list goes to the arena of its first object's
     * span: a consumer's flushes of what a producer in another arena
     * allocated then land in the producer's transfer slots, where its next
     * refill takes them whole, and not object by object on their spans
     * under the consumer's arena's lock and then the producer's. */
    if (central_narenas() > 1) {
        mp_span_t *s = mp_pagemap_span((uintptr_t)head);
        if (s != NULL && s->state == MP_SPAN_SMALL && s->cls == cls) arena = s->arena;
    }
    central_t *c = &central[arena][cls];
    const mp_class_t *k = &_mp_classes[cls];
    mp_lock(&c->lock);
    c->gives++;
    c->out -= n;
    if (n == k->batch && c->nslots < central_xfer_cap(k) && !mp_option(MP_OPT_CHECK)) {
        xfer[arena][cls][c->nslots].head = head;
        xfer[arena][cls][c->nslots].n = n;
        c->nslots++;
        mp_unlock(&c->lock);
        return;
    }
    unsigned held = arena;
    central_put_back_list(&held, cls, head);
    mp_unlock(&central[held][cls].lock);
}

/* Return every transfer-slot object to its span, and the spare empty spans
 * to the page heap (mp_trim). */
void _mp_central_drain_slots(void) {
    /* Pass 1: every arena's slots.  A slot's list can hold objects of other
     * arenas' spans (a list goes to the arena of its first object), so a
     * span of an arena already passed may become empty here. */
    for (unsigned a = 0; a < (unsigned)central_narenas(); a++) {
        for (int cls = 1; cls < _mp_nclasses; cls++) {
            unsigned held = a;
            mp_lock(&central[a][cls].lock);
            while (central[a][cls].nslots > 0) {
                central_t *c = &central[a][cls];
                void *head = xfer[a][cls][--c->nslots].head;
                central_put_back_list(&held, (unsigned)cls, head);
                if (held != a) {
                    mp_unlock(&central[held][cls].lock);
                    mp_lock(&central[a][cls].lock);
                    held = a;
                }
            }
            mp_unlock(&central[a][cls].lock);
        }
    }
    /* Pass 2: the spare empty spans too: trimming means giving all back. */
    for (unsigned a = 0; a < (unsigned)central_narenas(); a++) {
        for (int cls = 1; cls < _mp_nclasses; cls++) {
            central_t *c = &central[a][cls];
            mp_lock(&c->lock);
            for (mp_span_t *s = c->partial, *nx; s; s = nx) {
                nx = s->next;
                if (s->used == 0) {
                    partial_remove(c, s);
                    central_unkeep_empty(c, &_mp_classes[cls]);
                    _mp_pageheap_free(s);
                }
            }
            mp_unlock(&c->lock);
        }
    }
}

/* Class i's lock in every arena, in arena order. */
static void central_lock_class(int i) {
    for (int a = 0; a < central_narenas(); a++) mp_lock(&central[a][i].lock);
}
static void central_unlock_class(int i) {
    for (int a = central_narenas() - 1; a >= 0; a--) mp_unlock(&central[a][i].lock);
}

/* Every central lock, class then arena: the one order in which a thread may
 * hold more than one (the fork handlers, and the statistics below, which
 * hold one class in all arenas at once). */
void _mp_central_lock_all(void) {
    for (int i = 1; i < _mp_nclasses; i++) central_lock_class(i);
}

void _mp_central_unlock_all(bool child) {
    for (int i = _mp_nclasses - 1; i >= 1; i--)
        for (int a = central_narenas() - 1; a >= 0; a--) {
            if (child) mp_lock_reset(&central[a][i].lock);
            else mp_unlock(&central[a][i].lock);
        }
}

/* Each class's objects out are summed over the arenas with all of that
 * class's locks held.  One arena's count alone may be "negative" (a batch
 * taken from arena a's slots and flushed to arena b's counts out in a and
 * back in b); their sum at one instant is not, but summed one lock at a time
 * it could miss the take, see the give, and wrap. */
void _mp_central_stats(uint64_t *takes, uint64_t *gives, size_t *small_in_use) {
    uint64_t t = 0, g = 0;
    size_t bytes = 0;
    for (int i = 1; i < _mp_nclasses; i++) {
        size_t out = 0;
        central_lock_class(i);
        for (int a = 0; a < central_narenas(); a++) {
            t += central[a][i].takes;
            g += central[a][i].gives;
            out += central[a][i].out;
        }
        central_unlock_class(i);
        bytes += out * _mp_classes[i].size;
    }
    *takes = t;
    *gives = g;
    *small_in_use = bytes;
}

static void put(int fd, const char *s) { _mp_write(fd, s, strlen(s)); }
static void put_num(int fd, uint64_t v, int width) {
    char b[24];
    size_t n = _mp_fmt_u64(b, v);
    for (int i = (int)n; i < width; i++) _mp_write(fd, " ", 1);
    _mp_write(fd, b, n);
}

/* One line per class in use (all arenas together): objects out, spans, bytes. */
void _mp_central_print(int fd) {
    put(fd, "class     size     objects-out  partial-spans  xfer-batches     bytes-out\n");
    for (int i = 1; i < _mp_nclasses; i++) {
        size_t out = 0, nsp = 0, ns = 0;
        central_lock_class(i);
        for (int a = 0; a < central_narenas(); a++) {
            central_t *c = &central[a][i];
            out += c->out;
            ns += c->nslots;
            for (mp_span_t *s = c->partial; s; s = s->next) nsp++;
        }
        central_unlock_class(i);
        if (out == 0 && nsp == 0 && ns == 0) continue;
        put_num(fd, (uint64_t)i, 5);
        put_num(fd, _mp_classes[i].size, 9);
        put_num(fd, out, 16);
        put_num(fd, nsp, 15);
        put_num(fd, ns, 14);
        put_num(fd, out * _mp_classes[i].size, 14);
        put(fd, "\n");
    }
}
