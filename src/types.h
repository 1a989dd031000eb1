/*
 * types.h - the core structures of mempool and the invariants that hold them
 * together.  Every layer includes this file; nothing here has code beyond
 * constants and small inline accessors.
 *
 * Vocabulary
 *   page    8 KiB (MP_PAGE_SIZE), the unit of the page heap, whatever the OS
 *           page size is (4, 16 or 64 KiB all work: the OS layer rounds).
 *   span    a run of whole pages described by one mp_span_t.  A span is
 *           FREE (in the page heap), SMALL (carved into objects of one size
 *           class) or LARGE (one object bigger than MP_SMALL_MAX).
 *   class   a small size class, 1..mp_nclasses-1.  Class 0 means "not a small
 *           object" everywhere: its thread-cache bin is always empty and its
 *           free check always fails, so it falls into the slow path.
 *
 * Invariants
 *   - Classes up to MP_FASTFREE_MAX (32 KiB) are "fast-free": a SMALL span
 *     of such a class starts at an address aligned to its class's span_align
 *     (the power of two >= its byte length), so for any pointer p inside it,
 *     p & (span_align-1) is p's offset in the span, and the free fast path
 *     validates a pointer without loading the span.  Bigger classes (a few
 *     objects per span) skip the alignment, which would cost page-heap
 *     fragmentation, and are freed through the slow path.
 *   - The page map's class byte of every page of a SMALL span of a
 *     fast-free class is its class; of the first page of a slab's or pool's
 *     chunk (a LARGE span), MP_CLS_XCHUNK, which no class has (internal.h);
 *     of every other page, 0.  Its span pointer is exact for every page of a
 *     SMALL span and for the first and last page of FREE and LARGE spans; any
 *     other entry may be stale and is never trusted without checking the
 *     span's start (see pagemap.c).
 *   - An object is in exactly one place: handed out, in one thread cache's
 *     bin, in one central transfer slot, or on its span's free list (or not
 *     yet carved: beyond the span's bump pointer).  span->used counts the
 *     objects not on its free list and not beyond bump.
 */
#ifndef MP_TYPES_H
#define MP_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* ---- sizes ------------------------------------------------------------- */
#define MP_PAGE_SHIFT      13
#define MP_PAGE_SIZE       ((size_t)1 << MP_PAGE_SHIFT)
#define MP_SMALL_MAX       ((size_t)256 * 1024)   /* largest small class */
#define MP_LOOKUP_MAX      4096                    /* sizes served by tc->cls[] */
#define MP_MAX_CLASSES     128                     /* room in the arrays */
#define MP_MAX_ALIGN_SMALL ((size_t)256 * 1024)
#define MP_MAX_ARENAS      16                      /* MEMPOOL_ARENAS at most */
#define MP_FASTFREE_MAX    ((size_t)32 * 1024)     /* see the invariants */

/* Address space covered by the page map: 48 bits of address, 35 of page. */
#define MP_ADDR_BITS       48
#define MP_LEAF_BITS       24
#define MP_ROOT_BITS       (MP_ADDR_BITS - MP_PAGE_SHIFT - MP_LEAF_BITS)
#define MP_ROOT_LEN        ((size_t)1 << MP_ROOT_BITS)
#define MP_LEAF_LEN        ((size_t)1 << MP_LEAF_BITS)

/* ---- span -------------------------------------------------------------- */
typedef enum { MP_SPAN_FREE = 0, MP_SPAN_SMALL = 1, MP_SPAN_LARGE = 2 } mp_span_state_t;

/* Pages [lo, hi) of a span that are known to read as zero (fresh from the
 * OS, or released); none when lo >= hi.  One run is kept, not a set: the
 * biggest known when free spans merge. */
typedef struct {
    uint32_t lo, hi;
} mp_zrange_t;

typedef struct mp_span_s mp_span_t;
struct mp_span_s {
    uintptr_t start;        /* first byte, a multiple of MP_PAGE_SIZE */
    size_t npages;
    mp_span_t *next, *prev; /* page heap free list, or central partial list */
    uint8_t state;          /* mp_span_state_t */
    uint8_t cls;            /* SMALL: its class */
    uint8_t in_list;        /* on a list (free list or central partial list) */
    uint8_t arena;          /* SMALL: the central arena that carved it */
    uint32_t used;          /* SMALL: objects out of the free list & carved */
    uint32_t nobj;          /* SMALL: objects the span holds */
    void *free;             /* SMALL: span-local free list */
    uintptr_t bump;         /* SMALL: next never-carved object */
    size_t req;             /* LARGE: bytes asked for (for free_sized checks) */
    size_t dirty;           /* FREE: how many of its pages may be in RSS */
    mp_zrange_t zero;       /* FREE: the pages known to read as zero */
    uint64_t free_ms;       /* FREE: when it was freed (coarse clock, ms) */
};

/* ---- size class -------------------------------------------------------- */
typedef struct mp_class_s {
    uint32_t size;          /* object size */
    uint32_t pages;         /* pages per span */
    uint32_t nobj;          /* objects per span */
    uint32_t batch;         /* objects moved between thread cache and central */
    uint32_t tc_limit;      /* most objects one thread cache keeps */
    uint32_t xfer_slots;    /* batches the central transfer cache keeps */
    size_t span_align;      /* spans start at a multiple of this */
    bool fast_free;         /* size <= MP_FASTFREE_MAX: page map has the class */
    bool aligned_only;      /* only aligned_alloc & co. use it: the size lookup
                             * skips it (sizeclass_rule.h says why) */
    uint64_t divc;          /* x is an object offset iff x*divc < tplus ... */
    uint64_t tplus;         /* ... (Lemire's divisibility test, bounded) */
} mp_class_t;

/* ---- thread cache -----------------------------------------------------
 * The hot arrays come first and are indexed by class with scale 8 (cls[]
 * by the request size itself), so the fast paths address them straight off
 * the cache pointer; cls[] makes a cache about 9 KiB, 4 of them the table,
 * for two instructions less per malloc (docs/DESIGN.md).  Threads that
 * have not allocated yet point at _mp_tcache_empty, whose bins are empty
 * and whose free checks all fail: the first malloc and free of a thread fall
 * into the slow path with no test of their own. */
typedef struct mp_tcache_s mp_tcache_t;
#define MP_LEND_RUN 255    /* borrows a class makes between its refills */
#define MP_LEND_FREED 128  /* slow-path events since an overflow, to borrow */
struct mp_tcache_s {
    void *head[MP_MAX_CLASSES];       /* free list per class */
    uintptr_t mask[MP_MAX_CLASSES];   /* span_align - 1 */
    uint64_t divc[MP_MAX_CLASSES];    /* copies of the class table's */
    uint64_t tplus[MP_MAX_CLASSES];
    int64_t room[MP_MAX_CLASSES];     /* max[c] - length of head[c] (64-bit:
                                       * one index scale for all hot arrays) */
    uint8_t cls[MP_LOOKUP_MAX + 1];   /* n -> class, for n <= MP_LOOKUP_MAX */
    /* ---- cold: touched only by the slow paths ---- */
    uint32_t max[MP_MAX_CLASSES];     /* current bound on the bin length */
    uint8_t lend_run[MP_MAX_CLASSES]; /* borrows since the class's last
                                       * refill, at most MP_LEND_RUN */
    uint32_t scavenge_tick;            /* misses, for the periodic trim */
    uint32_t freed_tick;               /* scavenge_tick at the last overflow */
    uint32_t arena;                   /* its central arena (MEMPOOL_ARENAS) */
    mp_tcache_t *next, *prev;         /* registry of live caches */
    bool is_static;                   /* _mp_tcache_empty or the dead cache */
};

#endif /* MP_TYPES_H */
