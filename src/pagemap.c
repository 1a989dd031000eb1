/*
 * pagemap.c - the page map: page number -> span, and page number -> size
 * class, in O(1), lock-free to read, over the whole 48-bit address space.
 *
 * The class map is what the free fast path reads: one byte per 8 KiB page,
 * a flat array of 2^35 bytes (32 GiB of address space) indexed by the page
 * number itself, so a lookup is a compare with its length and one load.  It
 * is reserved read-only: untouched, it reads as zero (class 0, "not a small
 * object") and costs no memory and no commit charge in any overcommit mode;
 * the parts that describe heap memory are made writable when the page heap
 * maps that memory, one OS page of map per 32 MiB (4 KiB pages) of heap.
 * The two-level map it replaced (a 2048-entry root of leaf pointers) cost
 * three instructions more per free: a bound check on the root index, the
 * root's address and a second dependent load.
 *
 * Where 32 GiB of address space cannot be had (a small RLIMIT_AS), the map
 * stays unreserved: _mp_cls_pages is 0, every page reads as class 0, and
 * every free takes the checked path (malloc.c), slower but the same in
 * what it accepts and reports.
 *
 * The span map is for the slow paths: two levels, a static root of 2^11
 * entries indexed by the top bits of the page number and leaves of 2^24
 * span pointers (128 GiB of address space each), reserved with
 * MAP_NORESERVE, so only the pages of them that describe real heap memory
 * are touched; a missing leaf is a NULL root entry.
 *
 * Writes: leaves are created, and the class map opened, only under the
 * page heap lock; entries are changed only by the thread that owns the
 * pages concerned - the page heap for free and fresh spans, the central
 * list for a span it is carving.  Readers race only with writes to pages
 * they do not own, which happens only for invalid pointers; entries are
 * single bytes or aligned words, written atomically.  _mp_cls_map is set
 * before _mp_cls_pages (release) and neither changes after; a thread frees
 * a mempool pointer only after the allocation that made it, which came
 * after both.
 */
#include <string.h>
#include "internal.h"

const uint8_t *_mp_cls_map;
uintptr_t _mp_cls_pages;
mp_span_t **_mp_span_root[MP_ROOT_LEN];

#define MP_CLS_MAP_LEN ((size_t)1 << (MP_ADDR_BITS - MP_PAGE_SHIFT))

/* Reserve the class map, once.  At start-up, before the page heap maps its
 * first chunk: mmap hands out addresses top-down, so the map then sits
 * above the heap, which grows down contiguously (pageheap.c); reserved
 * after the first chunk it took the range below it, and every later chunk
 * landed 32 GiB away from the first, unable to merge with it. */
static void cls_map_reserve(void) {
    static bool tried;
    if (tried) return;
    tried = true;
    const uint8_t *m = _mp_os_reserve_readonly(MP_CLS_MAP_LEN);
    if (m == NULL) return;      /* no map: every free is checked in full */
    _mp_cls_map = m;
    atomic_store_explicit((_Atomic uintptr_t *)&_mp_cls_pages, MP_CLS_MAP_LEN,
                          memory_order_release);
}

void _mp_pagemap_init(void) {
    mp_lock(&_mp_pageheap_lock);
    cls_map_reserve();
    mp_unlock(&_mp_pageheap_lock);
}

/* Make sure the page map can describe pages [start, start + npages): span
 * leaves exist and the class map's bytes for them are writable.  Called
 * with the page heap lock held (it is the only creator). */
bool _mp_pagemap_ensure(uintptr_t start, size_t npages) {
    uintptr_t first = start >> (MP_PAGE_SHIFT + MP_LEAF_BITS);
    uintptr_t last = (start + npages * MP_PAGE_SIZE - 1) >> (MP_PAGE_SHIFT + MP_LEAF_BITS);
    if (last >= MP_ROOT_LEN) return false;
    cls_map_reserve();
    if (_mp_cls_map != NULL &&
        !_mp_os_make_writable((void *)(_mp_cls_map + (start >> MP_PAGE_SHIFT)), npages))
        return false;
    for (uintptr_t i = first; i <= last; i++) {
        if (_mp_span_root[i] != NULL) continue;
        mp_span_t **spans = _mp_os_reserve(MP_LEAF_LEN * sizeof(mp_span_t *));
        if (spans == NULL) return false;
        atomic_store_explicit((mp_span_t **_Atomic *)&_mp_span_root[i], spans,
                              memory_order_release);
    }
    return true;
}

void _mp_pagemap_set_span(uintptr_t page_addr, mp_span_t *s) {
    uintptr_t i = page_addr >> (MP_PAGE_SHIFT + MP_LEAF_BITS);
    mp_span_t **leaf = _mp_span_root[i];
    atomic_store_explicit((mp_span_t *_Atomic *)&leaf[(page_addr >> MP_PAGE_SHIFT) & (MP_LEAF_LEN - 1)],
                          s, memory_order_release);
}

void _mp_pagemap_set_class(uintptr_t start, size_t npages, unsigned cls) {
    if (_mp_cls_map == NULL) return;            /* no map: all read 0 */
    uint8_t *m = (uint8_t *)_mp_cls_map + (start >> MP_PAGE_SHIFT);
    for (size_t k = 0; k < npages; k++)
        atomic_store_explicit((_Atomic uint8_t *)&m[k], (uint8_t)cls, memory_order_release);
}
