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
 * (found in the page map); a span whose last object comes back returns to
 * the page heap, except one spare per class for small spans so that a class
 * that oscillates around a span boundary does not churn the page heap.
 *
 * Locking: central[c].lock guards everything of class c.  The page heap lock
 * is taken inside it (allocating or returning a span), never the other way.
 * No thread holds two central locks except the fork handler, which takes
 * them in class order.
 */
#include <string.h>
#include "internal.h"

#define MP_XFER_MAX 16

typedef struct {
    void *head;
    uint32_t n;
} xfer_slot_t;

typedef struct {
    mp_lock_t lock;
    uint32_t nslots;
    uint32_t nempty;               /* spans on `partial` with used == 0 */
    mp_span_t *partial;            /* spans with objects to give */
    xfer_slot_t slot[MP_XFER_MAX];
    size_t out;                    /* objects handed out (to users or caches) */
    uint64_t takes, gives;
} MP_ALIGNED(MP_CACHELINE) central_t;

static central_t central[MP_MAX_CLASSES];

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
static mp_span_t *central_new_span(unsigned cls) {
    const mp_class_t *k = &_mp_classes[cls];
    bool zeroed;
    mp_span_t *s = _mp_pageheap_alloc(k->pages, k->span_align, &zeroed);
    if (s == NULL) return NULL;
    _mp_pageheap_set_small(s, cls);
    s->nobj = k->nobj;
    s->used = 0;
    s->free = NULL;
    s->bump = s->start;
    return s;
}

uint32_t _mp_central_take(unsigned cls, uint32_t want, void **head) {
    central_t *c = &central[cls];
    const mp_class_t *k = &_mp_classes[cls];
    mp_lock(&c->lock);
    c->takes++;
    if (c->nslots > 0 && c->slot[c->nslots - 1].n <= want) {
        xfer_slot_t *sl = &c->slot[--c->nslots];
        *head = sl->head;
        c->out += sl->n;
        uint32_t n = sl->n;
        mp_unlock(&c->lock);
        return n;
    }
    void *list = NULL;
    uint32_t got = 0;
    uintptr_t size = k->size;
    while (got < want) {
        mp_span_t *s = c->partial;
        if (s == NULL) {
            s = central_new_span(cls);
            if (s == NULL) break;
            partial_push(c, s);
            c->nempty++;
        }
        if (s->used == 0) c->nempty--;
        while (got < want && s->free) {
            void *o = s->free;
            s->free = *(void **)o;
            *(void **)o = list;
            list = o;
            got++;
            s->used++;
        }
        uintptr_t end = s->start + (uintptr_t)s->nobj * size;
        while (got < want && s->bump < end) {
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

/* Put one object back on its span.  Called with c->lock held; may return
 * the span to the page heap (page heap lock nested inside). */
static void central_put_back(central_t *c, unsigned cls, void *o) {
    mp_span_t *s = mp_pagemap_span((uintptr_t)o);
    if (MP_UNLIKELY(mp_option(MP_OPT_CHECK)) && s && s->state == MP_SPAN_SMALL) {
        /* Check mode: objects come back one at a time, straight from free();
         * one already on the span's free list is a double free. */
        if ((uintptr_t)o >= s->bump) _mp_fatal("free of a pointer not from mempool", o);
        for (void *f = s->free; f; f = *(void **)f)
            if (f == o) _mp_fatal("double free", o);
    }
    if (MP_UNLIKELY(s == NULL || s->state != MP_SPAN_SMALL || s->cls != cls || s->used == 0))
        _mp_fatal("double free or corrupted free list", o);
    *(void **)o = s->free;
    s->free = o;
    s->used--;
    if (!s->in_list) partial_push(c, s);
    if (s->used == 0) {
        const mp_class_t *k = &_mp_classes[cls];
        if (c->nempty == 0 && k->pages == 1) {
            c->nempty++;            /* keep one spare */
        } else {
            partial_remove(c, s);
            _mp_pageheap_free(s);
        }
    }
}

void _mp_central_give(unsigned cls, void *head, uint32_t n) {
    central_t *c = &central[cls];
    const mp_class_t *k = &_mp_classes[cls];
    mp_lock(&c->lock);
    c->gives++;
    c->out -= n;
    if (n == k->batch && c->nslots < k->xfer_slots && !mp_option(MP_OPT_CHECK)) {
        c->slot[c->nslots].head = head;
        c->slot[c->nslots].n = n;
        c->nslots++;
        mp_unlock(&c->lock);
        return;
    }
    while (head) {
        void *nx = *(void **)head;
        central_put_back(c, cls, head);
        head = nx;
    }
    mp_unlock(&c->lock);
}

/* Return every transfer-slot object to its span, and the spare empty spans
 * to the page heap (mp_trim). */
void _mp_central_drain_slots(void) {
    for (int cls = 1; cls < _mp_nclasses; cls++) {
        central_t *c = &central[cls];
        mp_lock(&c->lock);
        while (c->nslots > 0) {
            void *head = c->slot[--c->nslots].head;
            while (head) {
                void *nx = *(void **)head;
                central_put_back(c, (unsigned)cls, head);
                head = nx;
            }
        }
        /* The spare empty spans too: trimming means giving everything back. */
        for (mp_span_t *s = c->partial, *nx; s; s = nx) {
            nx = s->next;
            if (s->used == 0) {
                partial_remove(c, s);
                c->nempty--;
                _mp_pageheap_free(s);
            }
        }
        mp_unlock(&c->lock);
    }
}

void _mp_central_lock_all(void) {
    for (int i = 1; i < MP_MAX_CLASSES; i++) mp_lock(&central[i].lock);
}

void _mp_central_unlock_all(bool child) {
    for (int i = MP_MAX_CLASSES - 1; i >= 1; i--) {
        if (child) mp_lock_reset(&central[i].lock);
        else mp_unlock(&central[i].lock);
    }
}

void _mp_central_stats(uint64_t *takes, uint64_t *gives, size_t *small_in_use) {
    uint64_t t = 0, g = 0;
    size_t bytes = 0;
    for (int i = 1; i < _mp_nclasses; i++) {
        central_t *c = &central[i];
        mp_lock(&c->lock);
        t += c->takes;
        g += c->gives;
        bytes += c->out * _mp_classes[i].size;
        mp_unlock(&c->lock);
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

/* One line per class in use: objects out, spans, bytes. */
void _mp_central_print(int fd) {
    put(fd, "class     size     objects-out  partial-spans  xfer-batches     bytes-out\n");
    for (int i = 1; i < _mp_nclasses; i++) {
        central_t *c = &central[i];
        mp_lock(&c->lock);
        size_t out = c->out, nsp = 0, ns = c->nslots;
        for (mp_span_t *s = c->partial; s; s = s->next) nsp++;
        mp_unlock(&c->lock);
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
