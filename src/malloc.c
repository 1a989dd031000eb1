/*
 * malloc.c - the entry points: mp_malloc, mp_free and the rest of the public
 * allocation API, their inline fast paths, the large-object path, and the
 * checks that turn a bad pointer into a clear report.
 *
 * The fast paths (mp_alloc_inline, mp_free_inline) touch only the calling
 * thread's cache and read-only tables: no lock, no atomic read-modify-write,
 * no call on a hit.
 *   malloc: size -> class by one table load, pop the class's list, count.
 *   free:   page map -> class (two loads), a mask and a multiply prove p is
 *           an object boundary of a live small span, push, count.
 * Everything else - empty list, full list, first use by a thread, large
 * objects, bad pointers - goes out of line.
 *
 * Large objects (> 256 KiB) are spans of their own from the page heap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "internal.h"
#include "mempool.h"

/* ---- fast paths ---------------------------------------------------------- */
/* Pop an object of class c from the thread's bin, or NULL if it is empty. */
MP_INLINE void *tcache_pop(mp_tcache_t *tc, unsigned c) {
    void *p = tc->head[c];
    if (MP_LIKELY(p != NULL)) {
        tc->head[c] = *(void **)p;
        tc->room[c]++;
    }
    return p;
}

MP_INLINE void *mp_alloc_inline(size_t n) {
    mp_tcache_t *tc = _mp_tc;
    unsigned c;
    if (MP_LIKELY(n <= MP_LOOKUP_MAX))
        c = tc->cls[n];
    else if (MP_LIKELY(n <= MP_SMALL_MAX))
        c = _mp_cls16[(n + 15) >> 4];
    else
        return _mp_malloc_generic(n);
    void *p = tcache_pop(tc, c);
    if (MP_UNLIKELY(p == NULL)) return _mp_tcache_alloc_slow(n);
    MP_IN_RETURN_REG(p);
    return p;
}

/* An object of class c itself: aligned_alloc's, whose class may be one the
 * size lookup would not give (an aligned-only one, sizeclass_rule.h). */
MP_INLINE void *mp_alloc_class_inline(unsigned c) {
    void *p = tcache_pop(_mp_tc, c);
    return MP_LIKELY(p != NULL) ? p : _mp_tcache_alloc_class_slow(c);
}

MP_INLINE void mp_free_inline(void *ptr) {
    uintptr_t p = (uintptr_t)ptr;
    uintptr_t c = mp_pagemap_class(p);
    mp_tcache_t *tc = _mp_tc;
    /* Class 0 (not a small object, NULL, foreign memory) has mask, divc and
     * tplus all 0, so it always fails here; so does every class in a thread
     * without a cache yet, and in check mode. */
    if (MP_UNLIKELY((p & tc->mask[c]) * tc->divc[c] >= tc->tplus[c])) {
        _mp_free_generic(ptr);
        return;
    }
    void *h = tc->head[c];
    if (MP_UNLIKELY(h == ptr)) _mp_fatal("double free", ptr);
    *(void **)ptr = h;
    tc->head[c] = ptr;
    MP_DEC_GOTO_IF_NEG(tc->room[c], full);
    return;
full:
    _mp_tcache_overflow(ptr, (unsigned)c);
}

/* ---- pointer validation (slow paths) ---------------------------------------- */

/* The span owning p and a verdict, for error reports: walk left through the
 * page map until an entry whose span really covers p.  Every span's first
 * page is mapped exactly, so if p is in mempool memory this finds its span;
 * stale entries are skipped by the range check.  Page heap lock held. */
static mp_span_t *span_covering(uintptr_t p) {
    uintptr_t page = mp_align_down(p, MP_PAGE_SIZE);
    for (size_t k = 0; k < ((size_t)1 << 20) && page >= k * MP_PAGE_SIZE; k++) {
        uintptr_t a = page - k * MP_PAGE_SIZE;
        mp_span_t *s = mp_pagemap_span(a);
        if (s == NULL) {
            /* No leaf or nothing recorded: keep walking only while the leaf
             * exists (mempool memory is always covered by one).  Addresses
             * beyond the map's 48 bits have none. */
            uintptr_t i = a >> (MP_PAGE_SHIFT + MP_LEAF_BITS);
            if (i >= MP_ROOT_LEN || _mp_span_root[i] == NULL) return NULL;
            continue;
        }
        if (s->state <= MP_SPAN_LARGE && s->start <= p &&
            p < s->start + s->npages * MP_PAGE_SIZE)
            return s;
    }
    return NULL;
}

/* The call a bad pointer was passed to, for the report's wording. */
typedef enum { OP_FREE, OP_REALLOC, OP_USABLE } mp_op_t;

/* p failed validation: say what it is and abort. */
MP_COLD MP_NORETURN static void bad_pointer(mp_op_t op, uintptr_t p) {
    mp_lock(&_mp_pageheap_lock);
    mp_span_t *s = span_covering(p);
    int kind = s == NULL ? 0 : s->state == MP_SPAN_FREE ? 1 : 2;
    mp_unlock(&_mp_pageheap_lock);
    if (kind == 1) _mp_fatal("double free", (void *)p);
    static const char *const what[][2] = {   /* [op][not ours, interior] */
        [OP_FREE] = { "free of a pointer not from mempool",
                      "free of an interior or misaligned pointer" },
        [OP_REALLOC] = { "realloc of a pointer not from mempool",
                         "realloc of an interior or misaligned pointer" },
        [OP_USABLE] = { "malloc_usable_size of a pointer not from mempool",
                        "malloc_usable_size of an interior or misaligned pointer" },
    };
    _mp_fatal(what[op][kind == 0 ? 0 : 1], (void *)p);
}

/* Validate p (not NULL) as a live object.  Returns its class, or 0 with
 * *large set to its span for a large object. */
static unsigned check_pointer(mp_op_t op, uintptr_t p, mp_span_t **large) {
    uintptr_t c = mp_pagemap_class(p);
    mp_span_t *s = mp_pagemap_span(p);
    if (s != NULL && s->state == MP_SPAN_SMALL) {
        const mp_class_t *k = &_mp_classes[s->cls];
        uintptr_t off = p - s->start;
        /* The class map holds fast-free classes only, and nothing at all
         * where it could not be reserved (pagemap.c). */
        unsigned want = k->fast_free && _mp_cls_pages != 0 ? s->cls : 0u;
        if (MP_UNLIKELY(c != want || p < s->start ||
                        off % k->size != 0 || off / k->size >= k->nobj))
            bad_pointer(op, p);
        return s->cls;
    }
    if (MP_UNLIKELY(c != 0 || s == NULL || s->state != MP_SPAN_LARGE || s->start != p))
        bad_pointer(op, p);
    *large = s;
    return 0;
}

/* The class of p if it is a valid object of a fast-free class, else 0
 * (then check_pointer decides).  The same test as the free fast path, with
 * the global class table instead of the thread cache's copy. */
MP_INLINE unsigned fast_class(uintptr_t p) {
    uintptr_t c = mp_pagemap_class(p);
    const mp_class_t *k = &_mp_classes[c];
    return c != 0 && (p & (k->span_align - 1)) * k->divc < k->tplus ? (unsigned)c : 0;
}

MP_NOINLINE void _mp_free_generic(void *ptr) {
    if (ptr == NULL) return;
    mp_span_t *large = NULL;
    unsigned c = check_pointer(OP_FREE, (uintptr_t)ptr, &large);
    if (c != 0) _mp_tcache_free_small(ptr, c);
    else _mp_free_large(large);
}

/* ---- large objects ------------------------------------------------------------ */
void *_mp_alloc_large(size_t n, size_t align, bool zero) {
    mp_ensure_init();
    if (MP_UNLIKELY(n > PTRDIFF_MAX || align > ((size_t)1 << 40))) {
        errno = ENOMEM;
        return NULL;
    }
    size_t npages = (n + MP_PAGE_SIZE - 1) >> MP_PAGE_SHIFT;
    if (npages == 0) npages = 1;
    mp_zrange_t zr;
    mp_span_t *s = _mp_pageheap_alloc(npages, align, &zr);
    if (s == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    s->req = n;
    _mp_pageheap_count_large(npages * MP_PAGE_SIZE, 1);
    if (zero) mp_zero_fill(s->start, s->start, n, zr);
    return (void *)s->start;
}

void _mp_free_large(mp_span_t *s) {
    _mp_pageheap_count_large(s->npages * MP_PAGE_SIZE, -1);
    _mp_pageheap_free(s);
}

MP_NOINLINE void *_mp_malloc_generic(size_t n) {
    if (n > MP_SMALL_MAX) return _mp_alloc_large(n, MP_PAGE_SIZE, false);
    return _mp_tcache_alloc_slow(n);
}

/* ---- the public API -------------------------------------------------------- */
void *mp_malloc(size_t n) { return mp_alloc_inline(n); }

void mp_free(void *p) { mp_free_inline(p); }

void *mp_calloc(size_t n, size_t size) {
    size_t total;
    if (MP_UNLIKELY(__builtin_mul_overflow(n, size, &total))) {
        errno = ENOMEM;
        return NULL;
    }
    if (total > MP_SMALL_MAX) return _mp_alloc_large(total, MP_PAGE_SIZE, true);
    void *p = mp_alloc_inline(total);
    if (MP_LIKELY(p != NULL)) memset(p, 0, total);
    return p;
}

static size_t usable_of(unsigned c, mp_span_t *large) {
    return c ? _mp_classes[c].size : large->npages * MP_PAGE_SIZE;
}

size_t mp_usable_size(const void *p) {
    if (p == NULL) return 0;
    unsigned c = fast_class((uintptr_t)p);
    if (MP_LIKELY(c != 0)) return _mp_classes[c].size;
    mp_span_t *large = NULL;
    c = check_pointer(OP_USABLE, (uintptr_t)p, &large);
    return usable_of(c, large);
}

void *mp_realloc(void *p, size_t n) {
    if (p == NULL) return mp_alloc_inline(n);
    if (n == 0) {
        mp_free_inline(p);
        return NULL;
    }
    mp_span_t *large = NULL;
    unsigned c = fast_class((uintptr_t)p);
    if (MP_UNLIKELY(c == 0)) c = check_pointer(OP_REALLOC, (uintptr_t)p, &large);
    size_t old = usable_of(c, large);
    /* Keep the block when the new size still fits and would not waste more
     * than half of it: the common grow-a-little / shrink-a-little cases. */
    if (n <= old && n >= old / 2) {
        if (large) large->req = n;
        /* Check mode: the block goes back to the caller as live, so it must
         * be (a move would find out in its free; this does not move). */
        else if (MP_UNLIKELY(mp_option(MP_OPT_CHECK)))
            _mp_central_check_live(p, c, "realloc of a freed pointer",
                                   "realloc of a pointer not from mempool");
        return p;
    }
    /* A large block grows in place when the pages after it are free. */
    if (large && n > old && n <= PTRDIFF_MAX) {
        size_t old_bytes = large->npages * MP_PAGE_SIZE;
        if (_mp_pageheap_grow(large, (n + MP_PAGE_SIZE - 1) >> MP_PAGE_SHIFT)) {
            _mp_pageheap_count_large(large->npages * MP_PAGE_SIZE - old_bytes, 0);
            large->req = n;
            return p;
        }
    }
    /* Growing: take a quarter more than asked, so that a buffer grown a
     * little at a time is copied O(log n) times, not once per class. */
    void *q = NULL;
    if (n > old && old + old / 4 > n) {
        q = mp_alloc_inline(old + old / 4);
        if (q != NULL && old + old / 4 > MP_SMALL_MAX)
            mp_pagemap_span((uintptr_t)q)->req = n;   /* what the caller asked */
    }
    if (q == NULL) q = mp_alloc_inline(n);
    if (q == NULL) return NULL;
    memcpy(q, p, n < old ? n : old);
    mp_free_inline(p);
    return q;
}

void mp_free_sized(void *p, size_t size) {
    if (p == NULL) return;
    uintptr_t a = (uintptr_t)p;
    uintptr_t fc = mp_pagemap_class(a);
    if (MP_LIKELY(fc != 0 && size <= _mp_classes[fc].size)) {
        mp_free_inline(p);           /* validates the pointer itself */
        return;
    }
    mp_span_t *large = NULL;
    unsigned c = check_pointer(OP_FREE, a, &large);   /* a bad pointer first */
    if (c != 0) {
        if (MP_UNLIKELY(size > _mp_classes[c].size))
            _mp_fatal("mp_free_sized with a wrong size", p);
        _mp_tcache_free_small(p, c);
        return;
    }
    if (MP_UNLIKELY(size < large->req || size > large->npages * MP_PAGE_SIZE))
        _mp_fatal("mp_free_sized with a wrong size", p);
    _mp_free_large(large);
}

static void *aligned_alloc_impl(size_t align, size_t n) {
    if (align <= 16) {
        if (align > 8 && n < 16) n = 16;     /* the 8-byte class is 8-aligned */
        return mp_alloc_inline(n);
    }
    if (n <= MP_SMALL_MAX && align <= MP_MAX_ALIGN_SMALL) {
        mp_ensure_init();
        unsigned c = _mp_size_class_aligned(n < align ? align : n, align);
        if (c != 0) return mp_alloc_class_inline(c);
    }
    return _mp_alloc_large(n, align < MP_PAGE_SIZE ? MP_PAGE_SIZE : align, false);
}

void *mp_aligned_alloc(size_t align, size_t n) {
    if (MP_UNLIKELY(!mp_is_pow2(align))) {
        errno = EINVAL;
        return NULL;
    }
    return aligned_alloc_impl(align, n);
}

int mp_posix_memalign(void **out, size_t align, size_t n) {
    if (MP_UNLIKELY(!mp_is_pow2(align) || align % sizeof(void *) != 0)) return EINVAL;
    int saved = errno;
    void *p = aligned_alloc_impl(align, n);
    errno = saved;
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

size_t mp_good_size(size_t n) {
    mp_ensure_init();
    if (n <= MP_SMALL_MAX) return _mp_classes[mp_size_class(n)].size;
    if (n > PTRDIFF_MAX) return n;
    return mp_align_up(n, MP_PAGE_SIZE);
}

void *mp_malloc_usable(size_t n, size_t *usable) {
    void *p = mp_alloc_inline(n);
    if (p && usable) *usable = mp_usable_size(p);   /* a borrowed block is bigger */
    return p;
}

size_t mp_trim(void) {
    mp_ensure_init();
    mp_pageheap_stats_t a, b;
    _mp_pageheap_stats(&a);
    _mp_tcache_thread_flush();
    _mp_central_drain_slots();
    _mp_pageheap_release(0, true);
    _mp_pageheap_stats(&b);
    return b.released - a.released;     /* also what the drain's frees released */
}

void mp_thread_flush(void) { _mp_tcache_thread_flush(); }

/* ---- the malloc family: the same code under the standard names --------- */
#ifndef MP_SANITIZE
#define MP_ALIAS(name) __attribute__((alias(#name), visibility("default"), used))
void *malloc(size_t n) MP_ALIAS(mp_malloc);
void free(void *p) MP_ALIAS(mp_free);
void *calloc(size_t n, size_t size) MP_ALIAS(mp_calloc);
void *realloc(void *p, size_t n) MP_ALIAS(mp_realloc);
void *aligned_alloc(size_t align, size_t n) MP_ALIAS(mp_aligned_alloc);
int posix_memalign(void **out, size_t align, size_t n) MP_ALIAS(mp_posix_memalign);
size_t malloc_usable_size(void *p) MP_ALIAS(mp_usable_size);
/* glibc's internal names: the dynamic loader and libc itself reach these. */
void *__libc_malloc(size_t n) MP_MALLOC_ATTR MP_ALLOC_SIZE(1) MP_ALIAS(mp_malloc);
void __libc_free(void *p) MP_ALIAS(mp_free);
void *__libc_calloc(size_t n, size_t s) MP_MALLOC_ATTR MP_ALLOC_SIZE(1, 2) MP_ALIAS(mp_calloc);
void *__libc_realloc(void *p, size_t n) MP_ALLOC_SIZE(2) MP_ALIAS(mp_realloc);
void cfree(void *p) MP_ALIAS(mp_free);

/* Linked statically, the rest of the family (override.c: memalign, valloc,
 * pvalloc, ...) must come with malloc: a program that calls only malloc and
 * free would otherwise get glibc's memalign for its shared libraries, and
 * abort when one of them frees the block.  This reference brings it. */
extern void *memalign(size_t align, size_t n);
__attribute__((used)) static void *(*const malloc_links_override)(size_t, size_t) = memalign;
#endif
