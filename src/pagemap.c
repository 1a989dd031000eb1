/*
 * pagemap.c - the radix page map: page number -> span, and page number ->
 * size class, in O(1), lock-free to read, over the whole 48-bit address
 * space.
 *
 * Two levels.  The root (2^11 entries, static) is indexed by the top 11 bits
 * of a 35-bit page number; each leaf covers 2^24 pages (128 GiB of address
 * space).  The root is small on purpose: its entries are relocated at load
 * time, which makes every page of it resident (16 KiB; 2^13 entries cost
 * 64 KiB of RSS in every process).  Leaves are reserved with MAP_NORESERVE and only the pages of them
 * that describe real heap memory are ever touched, so the map costs about
 * 1/1024 of the heap it describes (8 bytes of span pointer and 1 byte of
 * class per 8 KiB page).
 *
 * The class map is what the free fast path reads: two dependent loads and no
 * test for a missing leaf, because every root entry starts out pointing at a
 * shared all-zero leaf (class 0 = "not a small object").  The span map is for
 * the slow paths; a missing leaf there is a NULL root entry.
 *
 * Writes: a leaf is created, and entries are changed, only by the thread
 * that owns the pages concerned - the page heap (under its lock) for free
 * and fresh spans, the central list for a span it is carving.  Readers race
 * only with writes to pages they do not own, which happens only for invalid
 * pointers; entries are single bytes or aligned words, written atomically.
 */
#include <string.h>
#include "internal.h"

static uint8_t cls_zero_leaf[MP_LEAF_LEN];   /* never written; stays in bss */

uint8_t *_mp_cls_root[MP_ROOT_LEN] = { [0 ... MP_ROOT_LEN - 1] = cls_zero_leaf };
mp_span_t **_mp_span_root[MP_ROOT_LEN];

/* Make sure leaves exist for pages [start, start + npages).  Called with
 * the page heap lock held (it is the only creator). */
bool _mp_pagemap_ensure(uintptr_t start, size_t npages) {
    uintptr_t first = start >> (MP_PAGE_SHIFT + MP_LEAF_BITS);
    uintptr_t last = (start + npages * MP_PAGE_SIZE - 1) >> (MP_PAGE_SHIFT + MP_LEAF_BITS);
    if (last >= MP_ROOT_LEN) return false;
    for (uintptr_t i = first; i <= last; i++) {
        if (_mp_span_root[i] != NULL) continue;
        uint8_t *cls = _mp_os_reserve(MP_LEAF_LEN);
        mp_span_t **spans = _mp_os_reserve(MP_LEAF_LEN * sizeof(mp_span_t *));
        if (cls == NULL || spans == NULL) return false;   /* leaked: rare, bounded */
        atomic_store_explicit((uint8_t *_Atomic *)&_mp_cls_root[i], cls, memory_order_release);
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
    for (size_t k = 0; k < npages; k++) {
        uintptr_t a = start + k * MP_PAGE_SIZE;
        uint8_t *leaf = _mp_cls_root[a >> (MP_PAGE_SHIFT + MP_LEAF_BITS)];
        atomic_store_explicit((_Atomic uint8_t *)&leaf[(a >> MP_PAGE_SHIFT) & (MP_LEAF_LEN - 1)],
                              (uint8_t)cls, memory_order_release);
    }
}
