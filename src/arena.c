/*
 * arena.c - the arena allocator: bump allocation, everything released at
 * once by a reset, memory kept for the next round.
 *
 * An arena is a chain of chunks from the page heap ("standard" chunks, each
 * as big as all the standard chunks before it, from `initial` up to 64 MiB
 * each) plus blocks of their own for big requests.  Each chunk starts with
 * a 64-byte header (so that no arena pointer is ever the start of a page-
 * heap span: mp_free of one is reported as interior, not taken for a large
 * block).
 *
 * Thread-safe bump without an atomic per allocation: every thread that uses
 * the arena bumps inside its own region - a block of up to 64 KiB taken
 * from the current chunk under the arena lock.
 *   - The first thread to allocate owns the arena's lane: its region is
 *     kept in the arena itself and found by comparing the thread pointer
 *     (%fs:0 on x86-64, the TCB address: unique among live threads) with
 *     `owner`.  That is the single-threaded case: no table lookup.  A reset
 *     frees the lane for whichever thread allocates next.  If the owner
 *     exits, a thread that later gets the same thread pointer inherits the
 *     lane, which is harmless: never two live threads at once.
 *   - Other threads keep a region in their entry of the per-thread table
 *     (xalloc.h), valid while its stamp equals the arena's; a reset changes
 *     the arena's stamp, so every thread's region lapses at once without
 *     the reset touching the threads.
 *   alloc hit:  owner (or stamp) test, bounds test, bump (relaxed atomic
 *               load/store of the region's cursor: plain moves; stats read
 *               it).
 * A poisoning arena has no lane (owner = 1, never a thread pointer) and
 * its regions never match on the fast path; its slow path bumps them and
 * checks the poison.
 * Requests above 16 KiB (with their alignment) bypass the regions: they
 * are cut from the current chunk under the lock, or get a block of their
 * own when they exceed a quarter of the next chunk's size.
 *
 * Invariants
 *   - Standard chunks are on `chunks` in creation order; `cur` is the one
 *     being cut; chunks after it are empty (kept by a reset).
 *   - used = used_retired + the sum of (cur - start) over linked regions.
 *   - A linked region belongs to a live thread and lies in a standard chunk.
 *
 * Locking: the fast path takes no lock.  The arena lock guards the chunks,
 * the region list, used_retired; reset and destroy must not run at the
 * same time as other calls on the arena (the API's contract).
 */
#define _GNU_SOURCE
#include <string.h>
#include "xalloc.h"

#define ARENA_MAGIC   0x616e7261706d7831ull   /* "1xmparna" */
#define ANO_LANE      ((uintptr_t)1)
#define ACHUNK_HDR    64
#define AREGION       ((size_t)64 << 10)      /* a thread's block */
#define ADIRECT       (AREGION / 4)           /* bigger requests skip regions */
#define ACHUNK_MAX    ((size_t)64 << 20)
#define AMIN_CHUNK    ((size_t)64 << 10)

typedef struct achunk_s achunk_t;
struct achunk_s {                 /* the first 64 bytes of every chunk */
    uint64_t magic;
    mp_arena_t *arena;
    mp_span_t *span;
    achunk_t *next;
    size_t size;                  /* bytes of the span */
    uintptr_t top;                /* next free byte (16-aligned) */
    uintptr_t poison_top;         /* [data, poison_top) is poisoned */
    uint64_t pad;
};
_Static_assert(sizeof(achunk_t) == ACHUNK_HDR, "arena chunk header");

typedef struct aregion_s aregion_t;
struct aregion_s {
    mp_xent_t x;                  /* x.stamp: rstamp, or 0 in a poisoning arena
                                   * (whose every call takes the slow path) */
    uint64_t rstamp;              /* the arena's stamp when the region was taken */
    _Atomic uintptr_t cur;
    uintptr_t end, start;
    uintptr_t poison_end;         /* poisoned bytes of the region end here */
    aregion_t *next, *prev;       /* the arena's list (lock) */
    bool linked;
};

struct mp_arena_s {
    /* what the fast path reads */
    _Atomic uint64_t stamp;       /* a fresh value at every reset */
    uint32_t id;
    unsigned flags;
    _Atomic uintptr_t owner;      /* the lane's thread pointer; 0: free, 1: none */
    uint64_t tag;
    aregion_t lane;               /* the owner's region */
    /* the rest: arena lock */
    _Alignas(64) mp_lock_t lock;
    achunk_t *chunks, *tail, *cur;
    achunk_t *bigs;
    size_t initial;               /* bytes of the first chunk */
    size_t std_bytes, big_bytes, nchunks;
    size_t used_retired;
    aregion_t *regions;
    uint64_t resets;
    mp_xcounters_t err;
};

/* The calling thread's thread pointer: unique among live threads. */
MP_INLINE uintptr_t thread_ptr(void) { return (uintptr_t)__builtin_thread_pointer(); }

MP_INLINE uintptr_t achunk_data(achunk_t *c) { return (uintptr_t)c + ACHUNK_HDR; }
MP_INLINE uintptr_t achunk_end(achunk_t *c) { return (uintptr_t)c + c->size; }

static achunk_t *achunk_new(mp_arena_t *a, size_t bytes, size_t align) {
    size_t npages = (bytes + MP_PAGE_SIZE - 1) >> MP_PAGE_SHIFT;
    mp_span_t *s = _mp_pageheap_alloc(npages, align, NULL);
    if (s == NULL) return NULL;
    achunk_t *c = (achunk_t *)s->start;
    c->magic = ARENA_MAGIC;
    c->arena = a;
    c->span = s;
    c->next = NULL;
    c->size = npages * MP_PAGE_SIZE;
    c->top = achunk_data(c);
    c->poison_top = achunk_data(c);
    return c;
}

static void achunk_free(achunk_t *c) {
    c->magic = 0;
    _mp_pageheap_free(c->span);
}

/* Append a standard chunk with room for `need` bytes.  Lock held. */
static achunk_t *arena_grow(mp_arena_t *a, size_t need) {
    size_t bytes = a->std_bytes < a->initial ? a->initial
                 : a->std_bytes < ACHUNK_MAX ? a->std_bytes : ACHUNK_MAX;
    if (bytes < need + ACHUNK_HDR) bytes = need + ACHUNK_HDR;
    achunk_t *c = achunk_new(a, bytes, MP_PAGE_SIZE);
    if (c == NULL) return NULL;
    if (a->tail) a->tail->next = c;
    else a->chunks = c;
    a->tail = c;
    a->std_bytes += c->size;
    a->nchunks++;
    return c;
}

/* Bytes [p, p+n) from the standard chunks, p aligned to align (<= ADIRECT
 * plus n fits in a chunk): the current chunk, a kept one, or a new one.
 * `take` > n asks for a region: up to `take` bytes if available.  Returns
 * p and stores the block's end in *end and, if pad is not NULL, the bytes
 * skipped before p in *pad.  Lock held. */
static uintptr_t arena_cut(mp_arena_t *a, size_t n, size_t align, size_t take, uintptr_t *end,
                           uintptr_t *poison_end, size_t *pad) {
    for (;;) {
        achunk_t *c = a->cur;
        if (c != NULL) {
            uintptr_t p = mp_align_up(c->top, align);
            uintptr_t e = achunk_end(c);
            if (p <= e && n <= e - p) {
                uintptr_t stop = e - p >= take ? p + take : e;
                stop = mp_align_down(stop, 16);
                if (stop < p + n) stop = p + n;
                if (pad) *pad = p - c->top;     /* skipped for the alignment */
                c->top = stop;
                *end = stop;
                *poison_end = c->poison_top;
                return p;
            }
            if (c->next != NULL) {
                a->cur = c->next;
                continue;
            }
        }
        c = arena_grow(a, n + align);
        if (c == NULL) return 0;
        a->cur = c;
    }
}

/* A block of its own for n bytes aligned to align.  Lock held. */
static uintptr_t arena_big(mp_arena_t *a, size_t n, size_t align) {
    size_t off = align > ACHUNK_HDR ? align : ACHUNK_HDR;
    if (n > SIZE_MAX - off - MP_PAGE_SIZE) return 0;
    achunk_t *c = achunk_new(a, off + n, align > MP_PAGE_SIZE ? align : MP_PAGE_SIZE);
    if (c == NULL) return 0;
    c->next = a->bigs;
    a->bigs = c;
    a->big_bytes += c->size;
    a->nchunks++;
    c->top = (uintptr_t)c + off + n;
    return (uintptr_t)c + off;
}

static void arena_region_unlink(mp_arena_t *a, aregion_t *r) {
    if (!r->linked) return;
    a->used_retired += atomic_load_explicit(&r->cur, memory_order_relaxed) - r->start;
    if (r->prev) r->prev->next = r->next;
    else a->regions = r->next;
    if (r->next) r->next->prev = r->prev;
    r->linked = false;
}

/* Registry lock held: r's thread is exiting. */
static void arena_detach(void *obj, mp_xent_t *e) {
    mp_arena_t *a = obj;
    mp_lock(&a->lock);
    arena_region_unlink(a, (aregion_t *)e);
    mp_unlock(&a->lock);
}

/* The calling thread's region entry for a (created empty if needed), or
 * NULL when the thread can have none. */
static aregion_t *arena_region_get(mp_arena_t *a) {
    mp_xent_t **slot = _mp_xtls_slot(a->id);
    if (slot == NULL) return NULL;
    mp_xent_t *e = *slot;
    if (e->tag == a->tag) return (aregion_t *)e;
    if (e != &_mp_xent_none) {
        *slot = &_mp_xent_none;
        mp_free(e);
    }
    aregion_t *r = mp_malloc(sizeof *r);
    if (r == NULL) return NULL;
    memset(r, 0, sizeof *r);
    r->x = (mp_xent_t){ 0, a->tag, a->id, XK_ARENA };   /* stamp 0: no region yet */
    *slot = &r->x;
    return r;
}

/* Poisoning: the bytes of a new object that lie below the poisoned mark
 * must still hold the poison. */
static void arena_poison_check(mp_arena_t *a, uintptr_t p, size_t n, uintptr_t poison_end) {
    if (p < poison_end)
        _mp_xpoison_check(&a->err, (void *)p, (void *)p, (p + n < poison_end ? p + n : poison_end) - p);
}

static MP_NOINLINE void *arena_alloc_slow(mp_arena_t *a, size_t n, size_t align) {
    if (n == 0) return _mp_xfail(&a->err, MP_EINVAL);
    if (!mp_is_pow2(align)) return _mp_xfail(&a->err, MP_EALIGN);
    if (n > PTRDIFF_MAX || align > ((size_t)1 << 40)) return _mp_xfail(&a->err, MP_EOVERFLOW);
    if (align < 16) align = 16;
    size_t sz = mp_align_up(n, 16);
    aregion_t *r;
    uintptr_t me = thread_ptr(), owner = atomic_load_explicit(&a->owner, memory_order_relaxed);
    if (owner == me ||
        (owner == 0 && atomic_compare_exchange_strong_explicit(&a->owner, &owner, me,
                                                               memory_order_relaxed,
                                                               memory_order_relaxed)))
        r = &a->lane;
    else
        r = arena_region_get(a);
    uintptr_t p, end, pend = 0;
    if (r != NULL && r->rstamp == atomic_load_explicit(&a->stamp, memory_order_relaxed) &&
        sz + align <= ADIRECT) {
        uintptr_t cur = atomic_load_explicit(&r->cur, memory_order_relaxed);
        p = mp_align_up(cur, align);
        if (p <= r->end && sz <= r->end - p) {
            atomic_store_explicit(&r->cur, p + sz, memory_order_relaxed);
            if (a->flags & MP_FLAG_POISON) arena_poison_check(a, p, sz, r->poison_end);
            return (void *)p;
        }
    }
    mp_lock(&a->lock);
    if (r == NULL || sz + align > ADIRECT) {
        /* A direct cut, or a block of its own. */
        size_t next = a->std_bytes < ACHUNK_MAX ? a->std_bytes : ACHUNK_MAX;
        if (next < a->initial) next = a->initial;
        if (sz + align > next / 4) {
            p = arena_big(a, sz, align);
            if (p != 0) a->used_retired += sz;
        } else {
            size_t pad;
            p = arena_cut(a, sz, align, sz, &end, &pend, &pad);
            if (p != 0) a->used_retired += pad + sz;     /* as a region's cuts count */
        }
        mp_unlock(&a->lock);
        if (p == 0) return _mp_xfail(&a->err, MP_ENOMEM);
        if (a->flags & MP_FLAG_POISON) arena_poison_check(a, p, sz, pend);
        return (void *)p;
    }
    /* A new region for this thread; the old one is retired only once it is
     * cut.  If that fails, the old one stays as it was, still serving (and
     * counting) what fits in it: retired, the lane's fast path, which checks
     * no stamp, went on bumping it uncounted. */
    uint64_t stamp = atomic_load_explicit(&a->stamp, memory_order_relaxed);
    uintptr_t start = arena_cut(a, sz + align - 16, 16, AREGION, &end, &pend, NULL);
    if (start == 0) {
        mp_unlock(&a->lock);
        return _mp_xfail(&a->err, MP_ENOMEM);
    }
    arena_region_unlink(a, r);
    p = mp_align_up(start, align);
    r->start = start;
    atomic_store_explicit(&r->cur, p + sz, memory_order_relaxed);
    r->end = end;
    r->poison_end = pend;
    r->rstamp = stamp;
    r->x.stamp = (a->flags & MP_FLAG_POISON) ? 0 : stamp;
    r->prev = NULL;
    r->next = a->regions;
    if (a->regions) a->regions->prev = r;
    a->regions = r;
    r->linked = true;
    mp_unlock(&a->lock);
    if (a->flags & MP_FLAG_POISON) arena_poison_check(a, p, sz, pend);
    return (void *)p;
}

void *mp_arena_alloc(mp_arena_t *a, size_t n) {
    if (MP_UNLIKELY(a == NULL)) return _mp_xfail(NULL, MP_EINVAL);
    if (MP_LIKELY(atomic_load_explicit(&a->owner, memory_order_relaxed) == thread_ptr())) {
        aregion_t *r = &a->lane;
        size_t sz = (n + 15) & ~(size_t)15;
        uintptr_t cur = atomic_load_explicit(&r->cur, memory_order_relaxed);
        if (MP_LIKELY(n - 1 < ADIRECT && sz <= r->end - cur)) {
            atomic_store_explicit(&r->cur, cur + sz, memory_order_relaxed);
            return (void *)cur;
        }
        return arena_alloc_slow(a, n, 16);
    }
    mp_xtls_t *t = _mp_xtls;
    uint32_t id = a->id;
    if (MP_LIKELY(id < t->cap)) {
        aregion_t *r = (aregion_t *)t->ent[id];
        if (MP_LIKELY(r->x.stamp == atomic_load_explicit(&a->stamp, memory_order_relaxed) &&
                      n - 1 < ADIRECT)) {
            size_t sz = (n + 15) & ~(size_t)15;
            uintptr_t cur = atomic_load_explicit(&r->cur, memory_order_relaxed);
            if (MP_LIKELY(sz <= r->end - cur)) {
                atomic_store_explicit(&r->cur, cur + sz, memory_order_relaxed);
                return (void *)cur;
            }
        }
    }
    return arena_alloc_slow(a, n, 16);
}

void *mp_arena_alloc_aligned(mp_arena_t *a, size_t n, size_t align) {
    if (MP_UNLIKELY(a == NULL)) return _mp_xfail(NULL, MP_EINVAL);
    if (MP_UNLIKELY(!mp_is_pow2(align))) return _mp_xfail(&a->err, MP_EALIGN);
    if (align <= 16) return mp_arena_alloc(a, n);
    mp_xtls_t *t = _mp_xtls;
    uint32_t id = a->id;
    if (n - 1 < ADIRECT && align < ADIRECT) {
        aregion_t *r = NULL;
        if (atomic_load_explicit(&a->owner, memory_order_relaxed) == thread_ptr())
            r = &a->lane;
        else if (id < t->cap &&
                 t->ent[id]->stamp == atomic_load_explicit(&a->stamp, memory_order_relaxed))
            r = (aregion_t *)t->ent[id];
        if (r != NULL) {
            size_t sz = (n + 15) & ~(size_t)15;
            uintptr_t cur = atomic_load_explicit(&r->cur, memory_order_relaxed);
            uintptr_t p = mp_align_up(cur, align);
            if (p <= r->end && sz <= r->end - p) {
                atomic_store_explicit(&r->cur, p + sz, memory_order_relaxed);
                return (void *)p;
            }
        }
    }
    return arena_alloc_slow(a, n, align);
}

mp_arena_t *mp_arena_create(size_t initial, unsigned flags) {
    mp_ensure_init();
    if (flags & ~MP_FLAG_POISON) return _mp_xfail(NULL, MP_EINVAL);
    if (initial > ((size_t)1 << 40)) return _mp_xfail(NULL, MP_EOVERFLOW);
    flags |= MP_XFLAGS_FORCED;
    mp_arena_t *a = mp_aligned_alloc(64, sizeof *a);
    if (a == NULL) return _mp_xfail(NULL, MP_ENOMEM);
    memset(a, 0, sizeof *a);
    a->flags = flags;
    atomic_store_explicit(&a->owner, (flags & MP_FLAG_POISON) ? ANO_LANE : 0, memory_order_relaxed);
    /* The chunk holds `initial` bytes after its header. */
    a->initial = initial + ACHUNK_HDR <= AMIN_CHUNK ? AMIN_CHUNK
                                                    : mp_align_up(initial + ACHUNK_HDR, MP_PAGE_SIZE);
    a->lock = (mp_lock_t)MP_LOCK_INIT;
    atomic_store_explicit(&a->stamp, _mp_xstamp(), memory_order_relaxed);
    a->id = _mp_xreg_add(a, XK_ARENA, &a->lock, arena_detach, &a->tag);
    if (a->id == UINT32_MAX) {
        mp_free(a);
        return _mp_xfail(NULL, MP_ENOMEM);
    }
    achunk_t *c = arena_grow(a, 0);
    if (c == NULL) {
        mp_arena_destroy(a);
        return _mp_xfail(NULL, MP_ENOMEM);
    }
    a->cur = c;
    return a;
}

int mp_arena_reset(mp_arena_t *a) {
    if (a == NULL) return _mp_xrefuse(NULL, MP_EINVAL);
    mp_lock(&a->lock);
    atomic_store_explicit(&a->stamp, _mp_xstamp(), memory_order_relaxed);
    for (aregion_t *r = a->regions, *next; r; r = next) {
        next = r->next;
        r->linked = false;
        r->next = r->prev = NULL;
    }
    a->regions = NULL;
    /* the lane goes to whichever thread allocates next */
    atomic_store_explicit(&a->lane.cur, 0, memory_order_relaxed);
    a->lane.end = a->lane.start = 0;
    a->lane.rstamp = 0;
    if (!(a->flags & MP_FLAG_POISON)) atomic_store_explicit(&a->owner, 0, memory_order_relaxed);
    for (achunk_t *c = a->bigs, *next; c; c = next) {
        next = c->next;
        achunk_free(c);
        a->nchunks--;
    }
    a->bigs = NULL;
    a->big_bytes = 0;
    /* Keep the standard chunks the round used, and unused ones (first
     * come) while the kept bytes are short of `initial`.  The used ones are
     * not always a prefix of the list: a request that does not fit the rest
     * of a chunk moves on to the next, and may leave chunks unused behind. */
    size_t kept = 0;
    for (achunk_t *c = a->chunks; c; c = c->next)
        if (c->top > achunk_data(c)) kept += c->size;
    achunk_t **link = &a->chunks, *c;
    a->tail = NULL;
    while ((c = *link) != NULL) {
        bool used = c->top > achunk_data(c);
        if (used || kept < a->initial) {
            if (!used) kept += c->size;
            if (a->flags & MP_FLAG_POISON) {
                if (c->top > c->poison_top) c->poison_top = c->top;
                _mp_xpoison((void *)achunk_data(c), c->poison_top - achunk_data(c));
            }
            c->top = achunk_data(c);
            a->tail = c;
            link = &c->next;
        } else {
            *link = c->next;
            a->std_bytes -= c->size;
            a->nchunks--;
            achunk_free(c);
        }
    }
    a->cur = a->chunks;
    a->used_retired = 0;
    a->resets++;
    mp_unlock(&a->lock);
    return MP_OK;
}

void mp_arena_destroy(mp_arena_t *a) {
    if (a == NULL) return;
    _mp_xreg_remove(a->id, a->tag);
    for (achunk_t *c = a->chunks, *next; c; c = next) {
        next = c->next;
        achunk_free(c);
    }
    for (achunk_t *c = a->bigs, *next; c; c = next) {
        next = c->next;
        achunk_free(c);
    }
    mp_free(a);
}

int mp_arena_stats(mp_arena_t *a, mp_arena_stats_t *st) {
    if (a == NULL || st == NULL) return _mp_xrefuse(a ? &a->err : NULL, MP_EINVAL);
    memset(st, 0, sizeof *st);
    mp_lock(&a->lock);
    size_t used = a->used_retired;
    for (aregion_t *r = a->regions; r; r = r->next)
        used += atomic_load_explicit(&r->cur, memory_order_relaxed) - r->start;
    st->used = used;
    st->capacity = a->std_bytes + a->big_bytes;
    st->chunks = a->nchunks;
    st->resets = a->resets;
    mp_unlock(&a->lock);
    _mp_xcounters_read(&a->err, &st->errors);
    return MP_OK;
}
