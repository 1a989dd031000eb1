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
 * shared all-zero leaf (class 0 = "not a small object").  Its root entries
 * are biased (leaf - (i << 24)), so the load adds the page number as it is,
 * without masking off the root's bits: one instruction less per free.  The
 * span map is for the slow paths; a missing leaf there is a NULL root entry.
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

/* Entry i of the class root holds leaf - (i << MP_LEAF_BITS) (see
 * internal.h).  Every entry starts at the zero leaf, biased for its index:
 * the free fast path may run before anything is initialised (free(NULL),
 * a foreign pointer), so the initial values are static data.  ZERO(i) is
 * one entry; the doubling macros spell out all 2^MP_ROOT_BITS of them. */
#define ZERO(i) ((uintptr_t)cls_zero_leaf - ((uintptr_t)(i) << MP_LEAF_BITS)),
#define ZERO2(i) ZERO(i) ZERO((i) + 1)
#define ZERO4(i) ZERO2(i) ZERO2((i) + 2)
#define ZERO8(i) ZERO4(i) ZERO4((i) + 4)
#define ZERO16(i) ZERO8(i) ZERO8((i) + 8)
#define ZERO32(i) ZERO16(i) ZERO16((i) + 16)
#define ZERO64(i) ZERO32(i) ZERO32((i) + 32)
#define ZERO128(i) ZERO64(i) ZERO64((i) + 64)
#define ZERO256(i) ZERO128(i) ZERO128((i) + 128)
#define ZERO512(i) ZERO256(i) ZERO256((i) + 256)
#define ZERO1024(i) ZERO512(i) ZERO512((i) + 512)
#define ZERO2048(i) ZERO1024(i) ZERO1024((i) + 1024)
_Static_assert(MP_ROOT_LEN == 2048, "ZERO2048 spells out the class root");
uintptr_t _mp_cls_root[MP_ROOT_LEN] = { ZERO2048(0) };
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
        atomic_store_explicit((_Atomic uintptr_t *)&_mp_cls_root[i],
                              (uintptr_t)cls - (i << MP_LEAF_BITS), memory_order_release);
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
        uintptr_t biased = _mp_cls_root[a >> (MP_PAGE_SHIFT + MP_LEAF_BITS)];
        atomic_store_explicit((_Atomic uint8_t *)(biased + (a >> MP_PAGE_SHIFT)),
                              (uint8_t)cls, memory_order_release);
    }
}
