/*
 * internal.h - what the layers of mempool share: macros, the lock, and the
 * internal (_mp_) functions of each layer, grouped by the file that owns
 * them.  Symbols here are hidden from the export table (-fvisibility=hidden);
 * only include/mempool.h and the malloc family are exported.
 *
 * Lock order (a thread holding one may only take those below it):
 *   init_lock (init.c)  ->  tcache registry lock  ->  central[a][c].lock
 *   ->  _mp_pageheap_lock  ->  meta lock
 * Central locks: one at a time, except the fork handlers (all of them) and
 * the statistics (one class in every arena), which take them in class then
 * arena order.  The fork handlers take every lock in this order and
 * release them in reverse.
 */
#ifndef MP_INTERNAL_H
#define MP_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include "types.h"

/* ---- macros ------------------------------------------------------------ */
#define MP_LIKELY(x)    __builtin_expect(!!(x), 1)
#define MP_UNLIKELY(x)  __builtin_expect(!!(x), 0)
#define MP_NOINLINE     __attribute__((noinline))
#define MP_INLINE       static inline __attribute__((always_inline))
#define MP_COLD         __attribute__((cold, noinline))
#define MP_NORETURN     __attribute__((noreturn))
#define MP_CACHELINE    64
#define MP_ALIGNED(n)   __attribute__((aligned(n)))
/* Ask for a pointer in the return register: gcc 12 otherwise loads the
 * popped object into another register and copies it at the end of malloc's
 * fast path (one instruction of 14).  Emits nothing itself. */
#if defined(__x86_64__)
#define MP_IN_RETURN_REG(p) __asm__("" : "+a"(p))
#else
#define MP_IN_RETURN_REG(p) ((void)0)
#endif

/* --x, then goto label if x went below zero: the free fast path's count of
 * the room left in a bin.  gcc 12 computes the counter's address into a
 * register first when the flags of the decrement are used (one instruction
 * of 25); the asm names the memory operand in place.  Portable fallback
 * elsewhere. */
#if defined(__x86_64__)
#define MP_DEC_GOTO_IF_NEG(x, label) \
    __asm__ goto("subq $1, %0\n\tjs %l[" #label "]" : "+m"(x) : : "cc" : label)
#else
#define MP_DEC_GOTO_IF_NEG(x, label) \
    do { if (MP_UNLIKELY(--(x) < 0)) goto label; } while (0)
#endif

#define mp_align_up(x, a)   (((x) + ((a) - 1)) & ~((uintptr_t)(a) - 1))
#define mp_align_down(x, a) ((x) & ~((uintptr_t)(a) - 1))
#define mp_is_pow2(x)       ((x) != 0 && ((x) & ((x) - 1)) == 0)

/* ---- lock: a futex mutex (0 free, 1 held, 2 held with waiters) ---------- */
typedef struct { _Atomic int v; } mp_lock_t;
#define MP_LOCK_INIT { 0 }

void _mp_lock_slow(mp_lock_t *l);
void _mp_lock_wake(mp_lock_t *l);

MP_INLINE void mp_lock(mp_lock_t *l) {
    int expect = 0;
    if (MP_LIKELY(atomic_compare_exchange_strong_explicit(&l->v, &expect, 1,
                  memory_order_acquire, memory_order_relaxed)))
        return;
    _mp_lock_slow(l);
}
MP_INLINE void mp_unlock(mp_lock_t *l) {
    if (MP_UNLIKELY(atomic_exchange_explicit(&l->v, 0, memory_order_release) == 2))
        _mp_lock_wake(l);
}
/* After fork() in the child: the one thread left owns every lock it took in
 * the prepare handler; resetting is the same as releasing. */
MP_INLINE void mp_lock_reset(mp_lock_t *l) { atomic_store_explicit(&l->v, 0, memory_order_relaxed); }

/* ---- os.c: the only caller of mmap, munmap, madvise --------------------- */
extern size_t _mp_os_page;                 /* the OS page size */
void _mp_os_init(void);
void *_mp_os_alloc(size_t size, size_t align);        /* heap memory, zeroed */
void *_mp_os_alloc_at(void *at, size_t size);        /* exactly there, or NULL */
void _mp_os_free(void *p, size_t size);
bool _mp_os_unmap(void *p, size_t size);              /* false: not done */
/* What address space can go back to the source: any whole OS pages (mmap),
 * only whole regions from alloc (a custom source with a free callback:
 * _mp_os_free), or nothing (a custom source without one). */
typedef enum { MP_GIVE_RANGES, MP_GIVE_REGIONS, MP_GIVE_NONE } mp_give_t;
mp_give_t _mp_os_give_mode(void);
bool _mp_os_decommit(void *p, size_t size);           /* rounds inward */
size_t _mp_os_huge_size(void);                       /* THP size, 0: none */
void _mp_os_advise_huge(void *p, size_t size);
bool _mp_os_advise_nohuge(void *p, size_t size);     /* no collapse there */
void *_mp_os_reserve(size_t size);                    /* metadata: NORESERVE */
void *_mp_os_reserve_readonly(size_t size);           /* reads as zero */
bool _mp_os_make_writable(void *p, size_t size);      /* rounds outward */
void *_mp_meta_alloc(size_t size);                    /* metadata, never freed */
void _mp_meta_lock(void);                             /* fork handlers */
void _mp_meta_unlock(bool child);
MP_NORETURN MP_COLD void _mp_fatal(const char *what, const void *addr);
void _mp_write(int fd, const char *s, size_t n);
/* Small snprintf-free formatting for messages written without malloc. */
size_t _mp_fmt_u64(char *buf, uint64_t v);
size_t _mp_fmt_hex(char *buf, uint64_t v);

/* ---- sizeclass.c --------------------------------------------------------- */
extern const mp_class_t _mp_classes[MP_MAX_CLASSES];
extern const int _mp_nclasses;
extern const uint8_t _mp_cls8[MP_LOOKUP_MAX / 8 + 1];         /* (n+7)>>3    */
extern const uint8_t _mp_cls16[MP_SMALL_MAX / 16 + 1];        /* (n+15)>>4   */

/* Class of a request of n <= MP_SMALL_MAX bytes. */
MP_INLINE unsigned mp_size_class(size_t n) {
    return n <= MP_LOOKUP_MAX ? _mp_cls8[(n + 7) >> 3] : _mp_cls16[(n + 15) >> 4];
}
/* How many objects of a class end on a cache line when carved from one
 * (a span starts on a page): the unit in which the central lists carve
 * fresh objects so that no line holds objects of two threads' caches
 * (central.c).  1 from 1 KiB up: a line shared at the end of objects of 16
 * lines or more is worth no extra object. */
MP_INLINE uint32_t mp_class_line_objs(size_t size) {
    if (size >= 1024) return 1;
    unsigned tz = (unsigned)__builtin_ctzl(size);
    return tz >= 6 ? 1 : (uint32_t)(MP_CACHELINE >> tz);
}
/* Smallest class >= n whose size is a multiple of align (align <= 256 KiB);
 * 0 if none. */
unsigned _mp_size_class_aligned(size_t n, size_t align);

/* ---- pagemap.c ------------------------------------------------------------- */
/* The class map: one byte per page of the 48-bit address space, read-only
 * address space until the page heap maps memory there (see pagemap.c).
 * _mp_cls_pages is 0 until it is reserved, and stays 0 if it cannot be
 * (then every page reads as class 0 and every free takes the checked
 * path). */
extern const uint8_t *_mp_cls_map __attribute__((visibility("hidden")));
extern uintptr_t _mp_cls_pages __attribute__((visibility("hidden")));
extern mp_span_t **_mp_span_root[MP_ROOT_LEN]; /* NULL: nothing mapped */
void _mp_pagemap_init(void);                              /* at start-up */
bool _mp_pagemap_ensure(uintptr_t start, size_t npages);  /* page heap lock */

/* The class byte of p's page, as a word (so no re-extension in the fast
 * path): a compare with the map's length and one load. */
MP_INLINE uintptr_t mp_pagemap_class(uintptr_t p) {
    uintptr_t i = p >> MP_PAGE_SHIFT;
    if (MP_UNLIKELY(i >= _mp_cls_pages)) return 0;
    return _mp_cls_map[i];
}
/* The same with an acquire load, for a check that then reads what the
 * writer of the byte set up before it (mp_xchunk_find). */
MP_INLINE unsigned mp_pagemap_class_acquire(uintptr_t p) {
    uintptr_t i = p >> MP_PAGE_SHIFT;
    if (MP_UNLIKELY(i >= _mp_cls_pages)) return 0;
    return __atomic_load_n(&_mp_cls_map[i], __ATOMIC_ACQUIRE);
}
/* The class byte of the first page of a slab's or pool's chunk (a LARGE
 * span, whose pages read 0 otherwise): no size class has this number (the
 * table stops well below; test_sizeclass checks), and its table entries are
 * zero, so every fast check fails on it and a free of such a pointer takes
 * the checked path as before. */
#define MP_CLS_XCHUNK (MP_MAX_CLASSES - 1)
/* The span recorded for p's page, or NULL.  May be stale unless p's page is
 * one whose entry the invariants in types.h guarantee. */
MP_INLINE mp_span_t *mp_pagemap_span(uintptr_t p) {
    uintptr_t i = p >> (MP_PAGE_SHIFT + MP_LEAF_BITS);
    if (MP_UNLIKELY(i >= MP_ROOT_LEN)) return NULL;
    mp_span_t **leaf = atomic_load_explicit((mp_span_t **_Atomic *)&_mp_span_root[i],
                                            memory_order_acquire);
    if (leaf == NULL) return NULL;
    return atomic_load_explicit((mp_span_t *_Atomic *)&leaf[(p >> MP_PAGE_SHIFT) & (MP_LEAF_LEN - 1)],
                                memory_order_relaxed);
}
void _mp_pagemap_set_span(uintptr_t page_addr, mp_span_t *s);
void _mp_pagemap_set_class(uintptr_t start, size_t npages, unsigned cls);

/* ---- pageheap.c ------------------------------------------------------------ */
extern mp_lock_t _mp_pageheap_lock;
/* A span of npages whose start is a multiple of align (a power of two,
 * >= MP_PAGE_SIZE), state LARGE, its first and last page mapped.  *zero
 * (if zero is not NULL) gets the run of its pages known to read as zero.
 * NULL when out of memory. */
mp_span_t *_mp_pageheap_alloc(size_t npages, size_t align, mp_zrange_t *zero);
/* Zero the n bytes at p, inside the span that starts at base, except the
 * pages z says read as zero already (calloc of a large block). */
MP_INLINE void mp_zero_fill(uintptr_t base, uintptr_t p, size_t n, mp_zrange_t z) {
    uintptr_t e = p + n;
    if (z.lo >= z.hi) {
        memset((void *)p, 0, n);
        return;
    }
    uintptr_t zl = base + (uintptr_t)z.lo * MP_PAGE_SIZE, zh = base + (uintptr_t)z.hi * MP_PAGE_SIZE;
    if (p < zl) memset((void *)p, 0, (e < zl ? e : zl) - p);
    if (e > zh) {
        uintptr_t from = p > zh ? p : zh;
        memset((void *)from, 0, e - from);
    }
}
void _mp_pageheap_free(mp_span_t *s);
bool _mp_pageheap_grow(mp_span_t *s, size_t npages);   /* in place, realloc */
size_t _mp_pageheap_release(size_t keep, bool fine); /* bytes released; fine: split huge pages */
mp_span_t *_mp_span_new(void);                  /* page heap lock held */
void _mp_pageheap_set_small(mp_span_t *s, unsigned cls); /* map every page */
typedef struct {
    size_t mapped, committed, free_dirty, released, large_in_use, small_spans_bytes, huge;
    uint64_t os_maps, large_allocs;
    uint64_t give_back_passes;     /* walks for address space to give back */
    uint64_t give_back_checks;     /* of them, regions looked at in a span */
    uint64_t release_passes;       /* walks for dirty pages to release */
} mp_pageheap_stats_t;
void _mp_pageheap_stats(mp_pageheap_stats_t *st);
void _mp_pageheap_print(int fd);
size_t _mp_pageheap_check(void);               /* broken invariants */
/* Does a free span of at least `bytes` start at p?  (Read under the page
 * heap lock: span records change under it.) */
bool _mp_pageheap_free_at(uintptr_t p, size_t bytes);
void _mp_pageheap_count_large(size_t bytes, int sign);

/* ---- central.c ------------------------------------------------------------ */
/* Take `want` objects of class cls as a NULL-terminated list, or up to
 * `upto` (>= want) when carving fresh objects to the end of a cache line;
 * returns how many (fewer than want only when out of memory, 0 when none). */
uint32_t _mp_central_take(unsigned arena, unsigned cls, uint32_t want, uint32_t upto,
                          void **head);
/* Give back a list of n objects of class cls. */
void _mp_central_give(unsigned arena, unsigned cls, void *head, uint32_t n);
/* Check mode: abort with `freed` if small object o (a valid slot of a span
 * of class cls) is on its span's free list, with `uncarved` if it was never
 * handed out since the span was carved. */
void _mp_central_check_live(void *o, unsigned cls, const char *freed, const char *uncarved);
void _mp_central_drain_slots(void);
size_t _mp_central_cached_bytes(void);
void _mp_central_lock_all(void);
void _mp_central_unlock_all(bool child);
void _mp_central_stats(uint64_t *refills, uint64_t *flushes, size_t *small_in_use);
void _mp_central_print(int fd);

/* ---- tcache.c ---------------------------------------------------------------- */
/* initial-exec for every TLS variable of the library (_mp_tc here, the
 * rest static in their files): one 40-byte block in static TLS, and no
 * __tls_get_addr call on any path (see tcache.c).  The macro exists to
 * measure the alternative: -DMP_TLS_MODEL='"global-dynamic"'. */
#ifndef MP_TLS_MODEL
#define MP_TLS_MODEL "initial-exec"
#endif
extern __thread mp_tcache_t *_mp_tc __attribute__((tls_model(MP_TLS_MODEL)));
extern mp_tcache_t _mp_tcache_empty;
void *_mp_tcache_alloc_slow(size_t n);
void *_mp_tcache_alloc_class_slow(unsigned c);
void _mp_tcache_overflow(void *ptr, unsigned c);
void _mp_tcache_free_small(void *p, unsigned c);
void _mp_tcache_thread_flush(void);
size_t _mp_tcache_count(void);
void _mp_tcache_lock_all(void);
void _mp_tcache_unlock_all(bool child);
void _mp_tcache_setup_thread_key(void);

/* ---- init.c: options, start-up, statistics ---------------------------- */
typedef enum {
    MP_OPT_VERBOSE, MP_OPT_SHOW_STATS, MP_OPT_CHECK, MP_OPT_TCACHE_MAX,
    MP_OPT_RETAIN, MP_OPT_DECAY_MS, MP_OPT_CHUNK, MP_OPT_ARENAS, MP_OPT_HUGEPAGES,
    MP_OPT_COUNT
} mp_option_t;
extern long _mp_options[MP_OPT_COUNT];
MP_INLINE long mp_option(mp_option_t o) { return _mp_options[o]; }
extern _Atomic int _mp_ready;     /* 0 before init, 1 during, 2 after */
void _mp_init_slow(void);
MP_INLINE void mp_ensure_init(void) {
    if (MP_UNLIKELY(atomic_load_explicit(&_mp_ready, memory_order_acquire) != 2))
        _mp_init_slow();
}

/* ---- malloc.c ------------------------------------------------------------- */
void *_mp_alloc_large(size_t n, size_t align, bool zero);
void _mp_free_large(mp_span_t *s);
void *_mp_malloc_generic(size_t n);
void _mp_free_generic(void *p);

#endif /* MP_INTERNAL_H */
