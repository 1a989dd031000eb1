/*
 * xalloc.h - what the explicit allocators (slab.c, pool.c, arena.c, heap.c)
 * share, beside internal.h: error codes and counters, poisoning, the chunk
 * layout of the fixed-size allocators, and the per-thread table that gives
 * every pool and arena its own per-thread state.  None of it is used by the
 * core layers, and nothing here is exported.
 *
 * Chunks (slab, pool).  A chunk is a span of the page heap (state LARGE)
 * whose start is aligned to its size, a power of two, so the chunk of an
 * object p is p & ~cmask.  It starts with a header (mp_xchunk_t), then one
 * state byte per granule of the chunk - a granule being the largest power
 * of two (at most 4 KiB) dividing the object stride - then, for slabs, one
 * 32-bit link per object, then the objects, the first one granule-aligned.
 * Only the first and last page of a LARGE span are in the page map, and the
 * first page is the chunk start: a pointer is validated by looking its
 * masked address up in the page map (the span must start there and be
 * LARGE) before the header is read (magic, owner, span).
 *
 * Object states (one byte per granule; only object starts are ever
 * XS_FREE or XS_LIVE, so an interior or never-carved pointer reads XS_NONE):
 *   XS_NONE  not an object start, or not carved yet
 *   XS_FREE  carved and free (in a free list, a cache or a store)
 *   XS_LIVE  handed out
 * A free is a compare-and-swap XS_LIVE -> XS_FREE: of two concurrent frees
 * of one object exactly one succeeds.  Allocation stores XS_LIVE (a plain
 * store: the object is owned by the allocating thread at that point).
 *
 * Per-thread table.  _mp_xtls (initial-exec TLS, one pointer) points at a
 * table of entries indexed by allocator id.  An entry starts with a stamp;
 * it is valid for an allocator iff the stamps are equal (stamps come from
 * one global 64-bit counter and are never reused, so an entry left behind
 * by a destroyed allocator whose id was reused can never match).  A thread
 * with no table points at an empty static one (cap 0), so the fast paths
 * need one bounds test and one stamp test.  At thread exit a pthread key
 * destructor detaches every live entry from its allocator (under the
 * registry lock, so that it cannot race with a destroy) and frees it.
 *
 * Registry.  Every explicit allocator has an id (the smallest free one) in
 * the registry, with its tag, its lock and its detach function.  Pools and
 * arenas (per-thread state) and slabs and heaps (none) take ids from two
 * separate tables, so that the per-thread tables stay as small as the pools
 * and arenas alive.  The registry's lock is taken by create, destroy,
 * thread exit and fork.
 *
 * Lock order (each may take the ones after it):
 *   registry lock -> one allocator's lock -> mempool's core locks
 * The fork handler takes the registry lock, then every allocator's lock in
 * id order, pools and arenas first (before the core's own prepare handler
 * takes the core's).
 */
#ifndef MP_XALLOC_H
#define MP_XALLOC_H

#include <errno.h>
#include "internal.h"
#include "mempool/explicit.h"

/* Built with -DMP_EXPLICIT_POISON: every explicit allocator poisons. */
#ifdef MP_EXPLICIT_POISON
#define MP_XFLAGS_FORCED MP_FLAG_POISON
#else
#define MP_XFLAGS_FORCED 0u
#endif
#define MP_XFLAGS_ALL (MP_FLAG_CACHELINE | MP_FLAG_POISON)

#define MP_XOBJ_MAX      ((size_t)16 << 20)   /* biggest slab/pool object */
#define MP_XPOISON_BYTE  0xdb

/* ---- errors ---------------------------------------------------------------- */
typedef struct {
    _Atomic uint64_t double_free, foreign, interior, bad_request, limit, poisoned;
} mp_xcounters_t;

/* Count a refused call by its code (no-op for MP_OK). */
void _mp_xcount(mp_xcounters_t *c, int code);
void _mp_xcounters_read(mp_xcounters_t *c, mp_xerrors_t *out);
/* Count, record, and return NULL: the failure of a pointer-returning call. */
void *_mp_xfail(mp_xcounters_t *c, int code);
/* Count, record, and return code: the failure of an int-returning call. */
int _mp_xrefuse(mp_xcounters_t *c, int code);

/* ---- poisoning --------------------------------------------------------------- */
void _mp_xpoison(void *p, size_t n);
/* True if [p, p+n) still holds the poison; otherwise report the object at
 * `obj` on stderr, count it, re-poison nothing and return false. */
bool _mp_xpoison_check(mp_xcounters_t *c, const void *obj, const void *p, size_t n);
/* Report on stderr a write found in the freed object at obj, and count it. */
void _mp_xreport_uaf(mp_xcounters_t *c, const void *obj);

/* ---- chunks of the fixed-size allocators ------------------------------------ */
enum { XS_NONE = 0, XS_FREE = 1, XS_LIVE = 2 };

#define MP_XMAGIC_SLAB  0x62616c73706d7831ull  /* "1xmpslab" */
#define MP_XMAGIC_POOL  0x6c6f6f70706d7831ull  /* "1xmppool" */

typedef struct mp_xchunk_s mp_xchunk_t;
struct mp_xchunk_s {
    uint64_t magic;
    void *owner;             /* the slab or pool */
    mp_span_t *span;         /* the page-heap span this chunk is */
    mp_xchunk_t *next;       /* owner's list of chunks */
    uint32_t chunk_no;       /* slab: index in the directory */
    uint32_t carved;         /* objects carved so far (owner's lock) */
    uintptr_t sdelta;        /* state byte of p: (p >> sshift) + sdelta */
    uint64_t pad[2];
    _Atomic uint8_t state[]; /* one per granule of the chunk */
};
#define MP_XCHUNK_HDR 64
_Static_assert(sizeof(mp_xchunk_t) == MP_XCHUNK_HDR, "chunk header size");

/* The shape of the chunks of one slab or pool. */
typedef struct {
    size_t obj_size;         /* as asked */
    size_t stride;           /* bytes between objects */
    size_t chunk_bytes;      /* a power of two, the chunk's size and alignment */
    size_t base;             /* offset of the first object */
    size_t links_off;        /* offset of the link array (slab), else 0 */
    uint32_t nobj;           /* objects per chunk */
    uint32_t sshift;         /* log2 of the granule */
    uint32_t tz, inv;        /* stride = odd << tz; inv: odd's inverse mod 2^32 */
} mp_xlayout_t;

/* Compute the layout for obj_size/initial/flags; links: room for a 32-bit
 * link per object.  MP_OK or MP_EINVAL (size 0 or too big). */
int _mp_xlayout(size_t obj_size, size_t initial, unsigned flags, bool links, mp_xlayout_t *out);
/* Objects that `chunks` chunks of layout l can hold, and never more than
 * fit in MP_XSPACE_MAX bytes: what create checks `initial` against, so that
 * an impossible count fails at once instead of mapping memory until the
 * system refuses. */
#define MP_XSPACE_MAX ((size_t)1 << 46)
size_t _mp_xroom(const mp_xlayout_t *l, size_t chunks);
/* A new chunk with every state XS_NONE, or NULL. */
mp_xchunk_t *_mp_xchunk_new(const mp_xlayout_t *l, uint64_t magic, void *owner);
void _mp_xchunk_free(mp_xchunk_t *c);

MP_INLINE _Atomic uint8_t *mp_xstate(uintptr_t chunk, uintptr_t p, unsigned sshift) {
    return &((mp_xchunk_t *)chunk)->state[(p - chunk) >> sshift];
}
/* Object index of p (an object start) in its chunk. */
MP_INLINE uint32_t mp_xobj_index(const mp_xlayout_t *l, uintptr_t off_from_base) {
    return (uint32_t)(off_from_base >> l->tz) * l->inv;
}

/* The chunk at p & ~cmask if it really is a chunk of `owner` with that
 * magic; NULL otherwise.  Reads the header only once the class map marks a
 * chunk's first page there (MP_CLS_XCHUNK, set after the header and cleared
 * before the chunk goes), so a foreign pointer costs no fault and reads
 * nothing another thread may be writing: the page-heap span record this
 * looked at before is rewritten under the page heap lock, a data race that
 * TSAN reported for foreign pointers passed to slab and pool frees while
 * other threads allocated.  Without a class map (it could not be reserved)
 * the span record is the only guide. */
MP_INLINE mp_xchunk_t *mp_xchunk_find(uintptr_t p, uintptr_t cmask, uint64_t magic,
                                      const void *owner) {
    uintptr_t c = p & ~cmask;
    mp_xchunk_t *h = (mp_xchunk_t *)c;
    if (MP_LIKELY(_mp_cls_pages != 0)) {
        if (mp_pagemap_class_acquire(c) != MP_CLS_XCHUNK) return NULL;
    } else {
        mp_span_t *s = mp_pagemap_span(c);
        if (s == NULL || s->start != c || s->state != MP_SPAN_LARGE || h->span != s) return NULL;
    }
    return h->magic == magic && h->owner == owner ? h : NULL;
}

/* ---- registry and per-thread table ------------------------------------------ */
enum { XK_SLAB = 1, XK_POOL, XK_ARENA, XK_HEAP };

typedef struct mp_xent_s mp_xent_t;
struct mp_xent_s {
    uint64_t stamp;          /* must equal the allocator's current stamp */
    uint64_t tag;            /* the allocator's tag (fixed for its life) */
    uint32_t id;
    uint32_t kind;
};

typedef struct {
    uint32_t cap;            /* entries */
    uint32_t dead;           /* the thread has exited: no more entries */
    mp_xent_t *ent[];        /* &_mp_xent_none when empty */
} mp_xtls_t;

extern __thread mp_xtls_t *_mp_xtls __attribute__((tls_model(MP_TLS_MODEL)));
extern mp_xent_t _mp_xent_none;

/* Called with the registry lock held, at the exit of the thread owning e,
 * for an entry whose allocator is still alive.  Must not free e. */
typedef void (*mp_xdetach_fn)(void *obj, mp_xent_t *e);

/* Register obj: returns its id and stores its tag (a fresh stamp), or
 * returns UINT32_MAX when out of memory.  detach is NULL for allocators
 * with no per-thread state; their ids may not be given to _mp_xtls_slot. */
uint32_t _mp_xreg_add(void *obj, int kind, mp_lock_t *lock, mp_xdetach_fn detach,
                      uint64_t *tag);
/* Unregister (no thread exit will detach from obj after this returns), and
 * free the calling thread's own entry for it. */
void _mp_xreg_remove(uint32_t id, uint64_t tag);
/* A fresh stamp (never reused). */
uint64_t _mp_xstamp(void);
/* The calling thread's slot for id, growing its table; NULL when the
 * thread is exiting (no more per-thread state) or out of memory. */
mp_xent_t **_mp_xtls_slot(uint32_t id);

#endif /* MP_XALLOC_H */
