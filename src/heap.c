/*
 * heap.c - heaps: malloc, calloc, realloc and free of any size inside a
 * heap that owns its memory, so that destroying the heap frees everything
 * in it at once (the arenas of jemalloc and seed 001, the heaps of mimalloc
 * and rpmalloc).
 *
 * A heap has a bin per size class (mempool's classes, 16 B to 32 KiB).  A
 * bin's objects live in chunks of 256 KiB, aligned to 256 KiB, from the
 * page heap; each chunk starts with a header: its class, a free list
 * (linked through the objects' first word), a lazily-advanced carve count,
 * and a bitmap with one bit per object, set while the object is handed
 * out.  Objects above 32 KiB get pages of their own: a 64-byte header, then
 * the object.  The heap links every chunk and every large object, so
 * mp_heap_destroy returns them to the page heap in time proportional to
 * their number - a few hundred chunks for a million small objects - never
 * touching the objects.
 *
 * Pointer checks (under the heap's lock).  The heap keeps a set of the
 * starts of its spans (chunks and large objects, each tagged by kind), so a
 * check reads no memory but its own: p & ~(256 KiB - 1) must be one of its
 * chunks; p - base must then be a multiple of the class size (Lemire's
 * divisibility test) below the carve count, and its bit set (else a double
 * free).  Otherwise p - 64 must be one of its large objects.  Otherwise p is
 * a double free, when its chunk's address or p - 64 starts a FREE span of
 * the page heap (an emptied chunk released, or a large object freed, the
 * pages not reused since); interior, when it falls inside one
 * of the heap's large objects (found by walking them: refused frees only);
 * or else foreign.  Reading a header
 * found by masking alone would race with whoever owns that address: the
 * start of another heap's span, or of an mp_malloc block.
 *
 * The free list is the one thing the heap reads from user memory (a freed
 * object's first word): each link is checked before it is followed (the
 * list's end, or a freed object of the same chunk), so a write after free
 * there is reported, not followed to a wild address.  A write that makes a
 * link skip ahead to another freed object cannot be seen; the objects it
 * skips are lost to their chunk, which then counts as full when its list
 * runs dry.
 *
 * Invariants
 *   - A chunk with free or uncarved objects is on its bin's partial list;
 *     a full one is on no list; an empty one is the bin's spare (at most one
 *     per bin) or is returned to the page heap.
 *   - bit i of a chunk is set iff object i is handed out.
 *
 * Locking: one lock per heap, held by every call for the heap's own
 * structures (the page heap's lock is taken inside it: heap -> core).  So
 * any thread may call anything, serialised per heap; mp_heap_destroy must
 * not overlap another call on the same heap.
 */
#define _GNU_SOURCE
#include <string.h>
#include "xalloc.h"

#define HCHUNK_MAGIC  0x6b6e6863706d7831ull   /* "1xmpchnk" */
#define HLARGE_MAGIC  0x6772616c706d7831ull   /* "1xmplarg" */
#define HCHUNK        ((size_t)256 << 10)
#define HSMALL_MAX    ((size_t)32 << 10)
#define HLARGE_HDR    ((size_t)64)

typedef struct hchunk_s hchunk_t;
struct hchunk_s {
    uint64_t magic;              /* for debuggers: checks use the span set */
    mp_heap_t *heap;
    mp_span_t *span;
    hchunk_t *next, *prev;       /* the bin's partial list */
    hchunk_t *anext, *aprev;     /* all chunks of the heap */
    void *free;                  /* freed objects */
    uint64_t divc;               /* UINT64_MAX / size + 1 */
    uintptr_t base;              /* first object */
    uint32_t size, nobj;
    uint32_t nfree;              /* objects not handed out (free or uncarved) */
    uint32_t ncarved;
    uint32_t cls;
    bool in_partial;
    uint64_t live[];             /* one bit per object */
};

typedef struct hlarge_s hlarge_t;
struct hlarge_s {                /* the 64 bytes before a large object */
    uint64_t magic;              /* for debuggers: checks use the span set */
    mp_heap_t *heap;
    mp_span_t *span;
    hlarge_t *next, *prev;
    size_t size;                 /* bytes asked for */
    uint64_t pad[2];
};
_Static_assert(sizeof(hlarge_t) == HLARGE_HDR, "large header");

typedef struct {
    hchunk_t *partial;
    hchunk_t *spare;
} hbin_t;

/* The heap's span starts: an open-addressing set of page-aligned addresses,
 * the low bit telling a large object (1) from a chunk (0).  0 is an empty
 * slot, 2 a deleted one. */
typedef struct {
    uintptr_t *key;
    size_t cap;                  /* a power of two, or 0 */
    size_t used;                 /* keys and deleted slots */
    size_t n;                    /* keys */
} hset_t;
#define HSET_EMPTY   ((uintptr_t)0)
#define HSET_DELETED ((uintptr_t)2)

struct mp_heap_s {
    mp_lock_t lock;
    unsigned flags;
    uint32_t id;
    uint64_t tag;
    hchunk_t *all;
    hlarge_t *large;
    size_t in_use, objects, nlarge, bytes, nchunks;
    hset_t spans;
    mp_xcounters_t err;
    hbin_t bins[MP_MAX_CLASSES];
};

/* ---- the span set (heap lock held) -------------------------------------------- */
MP_INLINE size_t hset_hash(const hset_t *t, uintptr_t k) {
    return (size_t)(((k >> MP_PAGE_SHIFT) * 0x9e3779b97f4a7c15ull) >> 20) & (t->cap - 1);
}

static bool hset_has(const hset_t *t, uintptr_t k) {
    /* The markers are no one's key: a freed pointer below one page makes
     * k 0 or 1, which would "find" an empty or deleted slot. */
    if (t->cap == 0 || k == HSET_EMPTY || k == HSET_DELETED) return false;
    for (size_t i = hset_hash(t, k);; i = (i + 1) & (t->cap - 1)) {
        if (t->key[i] == k) return true;
        if (t->key[i] == HSET_EMPTY) return false;
    }
}

static bool hset_grow(hset_t *t) {
    size_t cap = t->cap ? (t->n * 4 > t->cap ? t->cap * 2 : t->cap) : 64;
    uintptr_t *key = mp_calloc(cap, sizeof *key);
    if (key == NULL) return false;
    for (size_t j = 0; j < t->cap; j++) {
        uintptr_t k = t->key[j];
        if (k == HSET_EMPTY || k == HSET_DELETED) continue;
        size_t i = hset_hash(&(hset_t){ key, cap, 0, 0 }, k);
        while (key[i] != HSET_EMPTY) i = (i + 1) & (cap - 1);
        key[i] = k;
    }
    mp_free(t->key);
    t->key = key;
    t->cap = cap;
    t->used = t->n;
    return true;
}

/* Make room for one more key first, so that a later add cannot fail. */
static bool hset_reserve(hset_t *t) {
    return (t->used + 1) * 2 <= t->cap || hset_grow(t);
}

static void hset_add(hset_t *t, uintptr_t k) {
    size_t i = hset_hash(t, k);
    while (t->key[i] != HSET_EMPTY && t->key[i] != HSET_DELETED) i = (i + 1) & (t->cap - 1);
    if (t->key[i] == HSET_EMPTY) t->used++;
    t->key[i] = k;
    t->n++;
}

static void hset_del(hset_t *t, uintptr_t k) {
    for (size_t i = hset_hash(t, k);; i = (i + 1) & (t->cap - 1)) {
        if (t->key[i] == k) {
            t->key[i] = HSET_DELETED;
            t->n--;
            return;
        }
        if (t->key[i] == HSET_EMPTY) return;
    }
}

/* ---- chunks (heap lock held) ------------------------------------------------ */
static void bin_push(hbin_t *b, hchunk_t *c) {
    c->prev = NULL;
    c->next = b->partial;
    if (b->partial) b->partial->prev = c;
    b->partial = c;
    c->in_partial = true;
}

static void bin_remove(hbin_t *b, hchunk_t *c) {
    if (c->prev) c->prev->next = c->next;
    else b->partial = c->next;
    if (c->next) c->next->prev = c->prev;
    c->next = c->prev = NULL;
    c->in_partial = false;
}

static hchunk_t *hchunk_new(mp_heap_t *h, unsigned cls) {
    if (!hset_reserve(&h->spans)) return NULL;
    mp_span_t *s = _mp_pageheap_alloc(HCHUNK >> MP_PAGE_SHIFT, HCHUNK, NULL);
    if (s == NULL) return NULL;
    hchunk_t *c = (hchunk_t *)s->start;
    uint32_t size = _mp_classes[cls].size;
    uint32_t n0 = (uint32_t)(HCHUNK / size);
    size_t hdr = mp_align_up(sizeof *c + ((n0 + 63) / 64) * 8, 16);
    memset(c, 0, hdr);
    c->heap = h;
    c->span = s;
    c->size = size;
    c->nobj = (uint32_t)((HCHUNK - hdr) / size);
    c->nfree = c->nobj;
    c->divc = UINT64_MAX / size + 1;
    c->base = (uintptr_t)c + hdr;
    c->cls = cls;
    c->magic = HCHUNK_MAGIC;
    c->aprev = NULL;
    c->anext = h->all;
    if (h->all) h->all->aprev = c;
    h->all = c;
    h->bytes += HCHUNK;
    h->nchunks++;
    hset_add(&h->spans, (uintptr_t)c);
    return c;
}

static void hchunk_release(mp_heap_t *h, hchunk_t *c) {
    hset_del(&h->spans, (uintptr_t)c);
    if (c->aprev) c->aprev->anext = c->anext;
    else h->all = c->anext;
    if (c->anext) c->anext->aprev = c->aprev;
    h->bytes -= HCHUNK;
    h->nchunks--;
    c->magic = 0;
    _mp_pageheap_free(c->span);
}

MP_INLINE uint32_t hchunk_index(const hchunk_t *c, uintptr_t off) {
    return (uint32_t)(((unsigned __int128)c->divc * off) >> 64);
}

/* Is p the start of an object c has carved (its index in *i)?  On a
 * multiple of the size past base (Lemire's divisibility test), below the
 * carve count. */
MP_INLINE bool hchunk_object(const hchunk_t *c, uintptr_t p, uint32_t *i) {
    if (p < c->base) return false;
    uint64_t off = p - c->base;
    if (off * c->divc > c->divc - 1) return false;
    *i = hchunk_index(c, off);
    return *i < c->ncarved;
}

MP_INLINE bool hchunk_live(const hchunk_t *c, uint32_t i) {
    return c->live[i / 64] >> (i % 64) & 1;
}

/* A free-list link read from the freed object p: the list's end, or
 * another freed object of the chunk.  The link is the object's first word,
 * which a use-after-free write may have changed, so it is checked before the
 * list follows it (poisoning skips that word: it holds the link).  p itself
 * is still a freed object while it is popped: a link to itself (a write of
 * the object's own address) would hand it out twice, so it is refused. */
MP_INLINE bool hchunk_link_ok(const hchunk_t *c, uintptr_t p, uintptr_t next) {
    uint32_t i;
    return next == 0 || (next != p && hchunk_object(c, next, &i) && !hchunk_live(c, i));
}

/* The freed object p held a link that is no freed object of its chunk: a
 * write after free.  Report it, and give up the rest of the list (those
 * objects stay unused until the heap is destroyed) rather than follow it:
 * the chunk goes on with what it has not carved yet. */
static MP_NOINLINE uintptr_t hchunk_bad_link(mp_heap_t *h, hchunk_t *c, uintptr_t p) {
    _mp_xreport_uaf(&h->err, (void *)p);
    c->nfree = c->nobj - c->ncarved + 1;      /* + p, handed out next */
    return 0;
}

/* ---- pointer checks (heap lock held) ----------------------------------------- */
typedef struct {
    hchunk_t *c;                 /* small object: its chunk and index */
    uint32_t i;
    hlarge_t *l;                 /* large object: its header */
} hfound_t;

static int heap_find(mp_heap_t *h, uintptr_t p, hfound_t *f) {
    f->c = NULL;
    f->l = NULL;
    uintptr_t cs = p & ~(HCHUNK - 1);
    if (hset_has(&h->spans, cs)) {
        hchunk_t *c = (hchunk_t *)cs;
        uint32_t i;
        if (!hchunk_object(c, p, &i)) return MP_EINTERIOR;
        if (!hchunk_live(c, i)) return MP_EDOUBLEFREE;
        f->c = c;
        f->i = i;
        return MP_OK;
    }
    /* A small object freed after its chunk emptied and went back to the
     * page heap: a free span still starts there. */
    if (_mp_pageheap_free_at(cs, HCHUNK)) return MP_EDOUBLEFREE;
    if ((p & (MP_PAGE_SIZE - 1)) == HLARGE_HDR) {
        uintptr_t q = p - HLARGE_HDR;
        if (hset_has(&h->spans, q | 1)) {
            f->l = (hlarge_t *)q;
            return MP_OK;
        }
        /* A large object freed and its pages not reused: the page heap has
         * a free span starting there (asked under its lock, as other threads
         * rewrite span records). */
        if (_mp_pageheap_free_at(q, MP_PAGE_SIZE)) return MP_EDOUBLEFREE;
    }
    /* Inside one of its large objects (the page map cannot say whose: its
     * entries for a span's inner pages may be stale): a walk of the heap's
     * large objects, on this error path only. */
    for (hlarge_t *l = h->large; l; l = l->next)
        if (p > (uintptr_t)l && p < (uintptr_t)l + l->span->npages * MP_PAGE_SIZE)
            return MP_EINTERIOR;
    return MP_EFOREIGN;
}

/* ---- allocation ------------------------------------------------------------------ */
static void *heap_large_alloc(mp_heap_t *h, size_t n, bool zero) {
    if (n > PTRDIFF_MAX) return _mp_xfail(&h->err, MP_EOVERFLOW);
    size_t npages = (n + HLARGE_HDR + MP_PAGE_SIZE - 1) >> MP_PAGE_SHIFT;
    mp_zrange_t zr;
    mp_span_t *s = _mp_pageheap_alloc(npages, MP_PAGE_SIZE, &zr);
    if (s == NULL) return _mp_xfail(&h->err, MP_ENOMEM);
    hlarge_t *l = (hlarge_t *)s->start;
    mp_lock(&h->lock);
    if (!hset_reserve(&h->spans)) {
        mp_unlock(&h->lock);
        _mp_pageheap_free(s);
        return _mp_xfail(&h->err, MP_ENOMEM);
    }
    l->heap = h;
    l->span = s;
    l->size = n;
    l->magic = HLARGE_MAGIC;
    hset_add(&h->spans, (uintptr_t)l | 1);
    l->prev = NULL;
    l->next = h->large;
    if (h->large) h->large->prev = l;
    h->large = l;
    h->nlarge++;
    h->objects++;
    h->in_use += npages * MP_PAGE_SIZE - HLARGE_HDR;
    h->bytes += npages * MP_PAGE_SIZE;
    mp_unlock(&h->lock);
    void *p = l + 1;
    if (zero) mp_zero_fill(s->start, (uintptr_t)p, n, zr);
    return p;
}

static void heap_large_free(mp_heap_t *h, hlarge_t *l) {
    hset_del(&h->spans, (uintptr_t)l | 1);
    if (l->prev) l->prev->next = l->next;
    else h->large = l->next;
    if (l->next) l->next->prev = l->prev;
    size_t bytes = l->span->npages * MP_PAGE_SIZE;
    h->nlarge--;
    h->objects--;
    h->in_use -= bytes - HLARGE_HDR;
    h->bytes -= bytes;
    l->magic = 0;
    _mp_pageheap_free(l->span);
}

void *mp_heap_malloc(mp_heap_t *h, size_t n) {
    if (MP_UNLIKELY(h == NULL)) return _mp_xfail(NULL, MP_EINVAL);
    if (n > HSMALL_MAX) return heap_large_alloc(h, n, false);
    unsigned cls = mp_size_class(n < 16 ? 16 : n);
    hbin_t *b = &h->bins[cls];
    mp_lock(&h->lock);
    hchunk_t *c;
again:
    c = b->partial;
    if (MP_UNLIKELY(c == NULL)) {
        c = b->spare;
        if (c != NULL) b->spare = NULL;
        else c = hchunk_new(h, cls);
        if (c == NULL) {
            mp_unlock(&h->lock);
            return _mp_xfail(&h->err, MP_ENOMEM);
        }
        bin_push(b, c);
    }
    uintptr_t p = (uintptr_t)c->free;
    uint32_t i;
    bool reused = p != 0;
    if (reused) {
        uintptr_t next = *(uintptr_t *)p;
        if (MP_UNLIKELY(!hchunk_link_ok(c, p, next))) next = hchunk_bad_link(h, c, p);
        c->free = (void *)next;
        i = hchunk_index(c, p - c->base);
    } else {
        if (MP_UNLIKELY(c->ncarved == c->nobj)) {
            /* nfree says there are free objects, the list is empty and all
             * are carved: a write after free made a link skip some freed
             * objects (a skip cannot be seen; a link anywhere else is caught
             * above).  They stay unused; this chunk counts as full. */
            _mp_xreport_uaf(&h->err, (void *)c->base);
            c->nfree = 0;
            bin_remove(b, c);
            goto again;
        }
        i = c->ncarved++;
        p = c->base + (uintptr_t)i * c->size;
    }
    c->live[i / 64] |= (uint64_t)1 << (i % 64);
    if (--c->nfree == 0) bin_remove(b, c);
    h->in_use += c->size;
    h->objects++;
    if (MP_UNLIKELY(reused && (h->flags & MP_FLAG_POISON)))
        _mp_xpoison_check(&h->err, (void *)p, (char *)p + sizeof(void *), c->size - sizeof(void *));
    mp_unlock(&h->lock);
    return (void *)p;
}

void *mp_heap_calloc(mp_heap_t *h, size_t n, size_t size) {
    if (MP_UNLIKELY(h == NULL)) return _mp_xfail(NULL, MP_EINVAL);
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return _mp_xfail(&h->err, MP_EOVERFLOW);
    if (total > HSMALL_MAX) return heap_large_alloc(h, total, true);
    void *p = mp_heap_malloc(h, total);
    if (p != NULL) memset(p, 0, total);
    return p;
}

int mp_heap_free(mp_heap_t *h, void *ptr) {
    if (MP_UNLIKELY(h == NULL)) return _mp_xrefuse(NULL, MP_EINVAL);
    if (ptr == NULL) return MP_OK;
    hfound_t f;
    mp_lock(&h->lock);
    int r = heap_find(h, (uintptr_t)ptr, &f);
    if (MP_UNLIKELY(r != MP_OK)) {
        mp_unlock(&h->lock);
        return _mp_xrefuse(&h->err, r);
    }
    if (f.l != NULL) {
        heap_large_free(h, f.l);
        mp_unlock(&h->lock);
        return MP_OK;
    }
    hchunk_t *c = f.c;
    hbin_t *b = &h->bins[c->cls];
    c->live[f.i / 64] &= ~((uint64_t)1 << (f.i % 64));
    if (MP_UNLIKELY(h->flags & MP_FLAG_POISON))
        _mp_xpoison((char *)ptr + sizeof(void *), c->size - sizeof(void *));
    *(void **)ptr = c->free;
    c->free = ptr;
    h->in_use -= c->size;
    h->objects--;
    if (++c->nfree == 1) bin_push(b, c);            /* was full */
    if (MP_UNLIKELY(c->nfree == c->nobj)) {         /* empty */
        bin_remove(b, c);
        if (b->spare == NULL) b->spare = c;
        else hchunk_release(h, c);
    }
    mp_unlock(&h->lock);
    return MP_OK;
}

static size_t found_usable(const hfound_t *f) {
    return f->l ? f->l->span->npages * MP_PAGE_SIZE - HLARGE_HDR : f->c->size;
}

size_t mp_heap_usable_size(mp_heap_t *h, const void *p) {
    if (h == NULL || p == NULL) return 0;
    hfound_t f;
    mp_lock(&h->lock);
    size_t u = heap_find(h, (uintptr_t)p, &f) == MP_OK ? found_usable(&f) : 0;
    mp_unlock(&h->lock);
    return u;
}

void *mp_heap_realloc(mp_heap_t *h, void *p, size_t n) {
    if (MP_UNLIKELY(h == NULL)) return _mp_xfail(NULL, MP_EINVAL);
    if (p == NULL) return mp_heap_malloc(h, n);
    if (n == 0) {
        int r = mp_heap_free(h, p);
        if (r != MP_OK) errno = EINVAL;
        return NULL;
    }
    hfound_t f;
    mp_lock(&h->lock);
    int r = heap_find(h, (uintptr_t)p, &f);
    size_t old = r == MP_OK ? found_usable(&f) : 0;
    if (r == MP_OK && f.l != NULL && n <= old && n >= old / 2) f.l->size = n;
    mp_unlock(&h->lock);
    if (r != MP_OK) return _mp_xfail(&h->err, r);
    /* Keep the block when n still fits and would not waste half of it. */
    if (n <= old && (n >= old / 2 || old <= 16)) return p;
    void *q = mp_heap_malloc(h, n);
    if (q == NULL) return NULL;
    memcpy(q, p, n < old ? n : old);
    mp_heap_free(h, p);
    return q;
}

/* ---- life cycle -------------------------------------------------------------------- */
mp_heap_t *mp_heap_create(unsigned flags) {
    mp_ensure_init();
    if (flags & ~MP_FLAG_POISON) return _mp_xfail(NULL, MP_EINVAL);
    mp_heap_t *h = mp_aligned_alloc(64, sizeof *h);
    if (h == NULL) return _mp_xfail(NULL, MP_ENOMEM);
    memset(h, 0, sizeof *h);
    h->flags = flags | MP_XFLAGS_FORCED;
    h->lock = (mp_lock_t)MP_LOCK_INIT;
    h->id = _mp_xreg_add(h, XK_HEAP, &h->lock, NULL, &h->tag);
    if (h->id == UINT32_MAX) {
        mp_free(h);
        return _mp_xfail(NULL, MP_ENOMEM);
    }
    return h;
}

void mp_heap_destroy(mp_heap_t *h) {
    if (h == NULL) return;
    _mp_xreg_remove(h->id, h->tag);
    mp_lock(&h->lock);
    for (hchunk_t *c = h->all, *next; c; c = next) {
        next = c->anext;
        c->magic = 0;
        _mp_pageheap_free(c->span);
    }
    for (hlarge_t *l = h->large, *next; l; l = next) {
        next = l->next;
        l->magic = 0;
        _mp_pageheap_free(l->span);
    }
    mp_unlock(&h->lock);
    mp_free(h->spans.key);
    mp_free(h);
}

int mp_heap_stats(mp_heap_t *h, mp_heap_stats_t *st) {
    if (h == NULL || st == NULL) return _mp_xrefuse(h ? &h->err : NULL, MP_EINVAL);
    memset(st, 0, sizeof *st);
    mp_lock(&h->lock);
    st->in_use = h->in_use;
    st->objects = h->objects;
    st->large = h->nlarge;
    st->bytes = h->bytes;
    st->chunks = h->nchunks;
    mp_unlock(&h->lock);
    _mp_xcounters_read(&h->err, &st->errors);
    return MP_OK;
}
