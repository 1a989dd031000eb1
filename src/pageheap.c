/*
 * pageheap.c - the page heap: spans of 8 KiB pages, split on demand and
 * coalesced with free neighbours on release, and the policy that hands free
 * pages back to the operating system.
 *
 * Free spans live on exact-size lists for 1..MP_PH_LISTS pages (a bitmap of
 * non-empty lists finds the next candidate size in a few instructions) and on
 * one list for bigger spans, searched best-fit.  On each list dirty spans
 * (pages that may be resident) are kept at the front and clean ones at the
 * back, so reuse prefers memory that is already in RSS.
 *
 * A request may ask for alignment (small-class spans are naturally aligned,
 * see types.h; aligned_alloc asks for more): the search accepts a span that
 * holds an aligned run of the wanted length and splits off the pieces before
 * and after it.
 *
 * Memory comes from the OS layer in chunks of at least MEMPOOL_CHUNK bytes.
 * Pages go back to the OS with a decommit (madvise) when the free dirty
 * pages exceed MEMPOOL_RETAIN and have stayed free for MEMPOOL_DECAY_MS, and
 * on mp_trim().  The address space stays, so neighbouring chunks can
 * coalesce, unless free clean spans pile up far past what the heap uses
 * (heap_unmap_clean: then the big ones are unmapped); new chunks are
 * mapped right below the lowest one when that range is free (heap_grow_down),
 * so they do.  Once the heap is big (MEMPOOL_HUGEPAGES), new chunks start
 * on a huge-page boundary and are advised transparent huge pages; in them,
 * releases and unmaps take whole huge pages, and the free pieces of a huge
 * page in use wait for a longer decay (release_span).
 *
 * Locking: one lock, _mp_pageheap_lock, around everything here.  Span
 * structures (mp_span_t) are created and recycled under it too.  It is
 * taken after any central lock, never before (see internal.h).
 */
#include <string.h>
#include <time.h>
#include "internal.h"

#define MP_PH_LISTS 128
#define MP_SPAN_DEAD 3

mp_lock_t _mp_pageheap_lock = MP_LOCK_INIT;

/* lists[n]: free spans of n pages; lists[PH_LARGE]: those of more than
 * MP_PH_LISTS pages.  tails[]: the last span of each (clean spans are
 * appended there). */
#define PH_LARGE (MP_PH_LISTS + 1)
static mp_span_t *lists[PH_LARGE + 1];
static mp_span_t *tails[PH_LARGE + 1];
static uint64_t nonempty[(PH_LARGE + 63) / 64];   /* lists 1..MP_PH_LISTS */
static mp_span_t *spare_spans;              /* recycled span structures */

static size_t st_mapped, st_free_dirty, st_free_clean, st_released, st_large_in_use;
static size_t st_small_spans;
#define PH_HUGE_RANGES 32
typedef struct { uintptr_t lo, hi; } mp_range_t;
static mp_range_t huge_ranges[PH_HUGE_RANGES];    /* see heap_huge */
static unsigned huge_nranges;
static uint64_t st_os_maps, st_large_allocs, st_give_back_passes, st_give_back_checks;
static uint64_t st_release_passes;
static uint64_t last_purge_ms;
static size_t peak_in_use;        /* pages; decays at each purge pass */

/* The clean free pages after the last pass that could not give enough
 * address space back, lowered with them as allocations take clean pages:
 * the next pass waits for more clean space than that (see "returning
 * address space"). */
static size_t give_back_failed_at;
/* Dirty free pages above which a forced release runs again after one that
 * could not get below its limit (see _mp_pageheap_free); 0 after each
 * timed pass. */
static size_t release_stuck_at;
static inline void heap_took_clean(void) {
    if (st_free_clean < give_back_failed_at) give_back_failed_at = st_free_clean;
}

static size_t pages_in_use(void) {
    return st_mapped / MP_PAGE_SIZE - st_free_dirty - st_free_clean;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- span structures --------------------------------------------------- */
mp_span_t *_mp_span_new(void) {
    mp_span_t *s = spare_spans;
    if (s) {
        spare_spans = s->next;
    } else {
        s = _mp_meta_alloc(sizeof(mp_span_t));
        if (s == NULL) return NULL;
    }
    memset(s, 0, sizeof *s);
    return s;
}

static void span_recycle(mp_span_t *s) {
    s->state = MP_SPAN_DEAD;    /* stale page-map entries must not match */
    s->next = spare_spans;
    spare_spans = s;
}

/* ---- free lists ------------------------------------------------------------ */
/* Pages of a free span count as dirty (maybe resident) or clean (released
 * or never touched).  The count drives the return of memory and the stats:
 * merging adds the counts, and a piece split off a free span counts its
 * pages outside its zero run (zr_outside).  It is an estimate, never below
 * the truth; `zero`, which calloc trusts, is sound but not complete: every
 * page in it reads as zero, while zero pages outside it may be missed (it
 * can under-report, never over-report).  It is one run of pages fresh from
 * the OS or released, which splitting cuts and merging joins where two runs
 * meet (else the bigger is kept, and the other's pages are forgotten), and
 * which stops short of 2^32 pages (see zr_make).  A per-span flag, ANDed on
 * merge, lost a whole fresh chunk's zero pages whenever one used page was
 * freed next to it: git commit's 512 KiB calloc was then memset, and its
 * peak RSS rose by 0.4 MB. */
static const mp_zrange_t zr_none;

/* The run of pages [lo, hi); every run is made here.  Its offsets are 32
 * bits and a span's page count is not: cut to 32 bits, the offsets of a
 * span of 2^32 pages (32 TiB) or more would wrap and name other pages, maybe
 * written ones (the right half of a join would land on the left span's
 * first pages).  The run is shortened to what fits instead: fewer pages
 * known zero, never a wrong one. */
static mp_zrange_t zr_make(size_t lo, size_t hi) {
    if (hi > UINT32_MAX) hi = UINT32_MAX;
    return lo < hi ? (mp_zrange_t){ (uint32_t)lo, (uint32_t)hi } : zr_none;
}

/* The part of z inside pages [off, off + len), relative to off. */
static mp_zrange_t zr_cut(mp_zrange_t z, size_t off, size_t len) {
    size_t lo = z.lo > off ? z.lo : off, hi = z.hi < off + len ? z.hi : off + len;
    return lo < hi ? zr_make(lo - off, hi - off) : zr_none;
}

/* The dirty count of a free piece cut from a span: its pages outside its
 * zero run, an upper bound (pages can be clean outside the run, never dirty
 * inside it).  Sharing the span's count out front-first instead could give
 * it all to the front and the cut span while written pages sat in the free
 * rest, counted clean, which the release skips: they stayed resident for
 * good (test_pageheap, written_pages_stay_counted_after_a_split).  Counting
 * too many dirty costs at most a madvise of pages that were not resident. */
static size_t zr_outside(mp_zrange_t z, size_t npages) {
    size_t in = z.lo < z.hi ? z.hi - z.lo : 0;
    return in < npages ? npages - in : 0;
}

/* One run for two runs of the same span: their union where they overlap or
 * touch, else the longer (a on a tie). */
static mp_zrange_t zr_union(mp_zrange_t a, mp_zrange_t b) {
    bool ha = a.lo < a.hi, hb = b.lo < b.hi;
    if (ha && hb && a.lo <= b.hi && b.lo <= a.hi)
        return (mp_zrange_t){ a.lo < b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi };
    if (hb && (!ha || b.hi - b.lo > a.hi - a.lo)) return b;
    return ha ? a : zr_none;
}

/* The run of a span of an pages with run a, followed by one with run b:
 * b moved past a (shortened, or dropped, where it lies beyond 2^32). */
static mp_zrange_t zr_join(mp_zrange_t a, size_t an, mp_zrange_t b) {
    return zr_union(a, b.lo < b.hi ? zr_make(an + b.lo, an + b.hi) : zr_none);
}

static size_t list_no(size_t npages) { return npages <= MP_PH_LISTS ? npages : PH_LARGE; }

static void list_insert(mp_span_t *s) {
    size_t i = list_no(s->npages);
    mp_span_t **l = &lists[i], **tl = &tails[i];
    s->prev = NULL;
    if (s->dirty || *l == NULL) {           /* dirty at the front */
        s->next = *l;
        if (*l) (*l)->prev = s; else *tl = s;
        *l = s;
    } else {                                /* clean at the back */
        mp_span_t *t = *tl;
        *tl = s;
        t->next = s;
        s->prev = t;
        s->next = NULL;
    }
    s->in_list = 1;
    if (s->npages <= MP_PH_LISTS) nonempty[s->npages / 64] |= 1ull << (s->npages % 64);
    st_free_dirty += s->dirty;
    st_free_clean += s->npages - s->dirty;
}

static void list_remove(mp_span_t *s) {
    size_t i = list_no(s->npages);
    mp_span_t **l = &lists[i];
    if (s->prev) s->prev->next = s->next; else *l = s->next;
    if (s->next) s->next->prev = s->prev; else tails[i] = s->prev;
    s->next = s->prev = NULL;
    s->in_list = 0;
    if (s->npages <= MP_PH_LISTS && *l == NULL)
        nonempty[s->npages / 64] &= ~(1ull << (s->npages % 64));
    st_free_dirty -= s->dirty;
    st_free_clean -= s->npages - s->dirty;
}

/* Record s in the page map as the owner of its first and last page. */
static void span_map_ends(mp_span_t *s) {
    _mp_pagemap_set_span(s->start, s);
    _mp_pagemap_set_span(s->start + (s->npages - 1) * MP_PAGE_SIZE, s);
}

static bool span_fits(const mp_span_t *s, size_t npages, size_t align) {
    uintptr_t a = mp_align_up(s->start, align);
    return a + npages * MP_PAGE_SIZE <= s->start + s->npages * MP_PAGE_SIZE;
}

/* Next non-empty exact list at or above n, or 0. */
static size_t next_nonempty(size_t n) {
    while (n <= MP_PH_LISTS) {
        uint64_t w = nonempty[n / 64] & (~0ull << (n % 64));
        if (w) return (n & ~(size_t)63) + (size_t)__builtin_ctzll(w);
        n = (n & ~(size_t)63) + 64;
    }
    return 0;
}

static mp_span_t *heap_find(size_t npages, size_t align) {
    /* A span of npages + slack pages holds an aligned run wherever it
     * starts; smaller ones might, so look at a few of each first. */
    size_t slack = align / MP_PAGE_SIZE - 1;
    size_t n = next_nonempty(npages);
    for (; n != 0 && n < npages + slack; n = next_nonempty(n + 1)) {
        int tries = 0;
        for (mp_span_t *s = lists[n]; s && tries < 4; s = s->next, tries++)
            if (span_fits(s, npages, align)) return s;
    }
    if (n != 0) return lists[n];
    mp_span_t *best = NULL;
    for (mp_span_t *s = lists[PH_LARGE]; s; s = s->next)
        if (s->npages >= npages && span_fits(s, npages, align) &&
            (best == NULL || s->npages < best->npages ||
             (s->npages == best->npages && s->start < best->start)))
            best = s;
    return best;
}

/* ---- coalescing -------------------------------------------------------------- */
/* Insert a free span, merging it with free neighbours first.  A neighbour
 * found in the page map is trusted only if it is FREE and really ends (or
 * starts) where s starts (ends): entries for other pages may be stale. */
static void heap_insert_merge(mp_span_t *s) {
    if (s->start >= MP_PAGE_SIZE) {
        mp_span_t *l = mp_pagemap_span(s->start - MP_PAGE_SIZE);
        if (l && l->state == MP_SPAN_FREE && l->in_list &&
            l->start + l->npages * MP_PAGE_SIZE == s->start) {
            list_remove(l);
            s->zero = zr_join(l->zero, l->npages, s->zero);
            s->start = l->start;
            s->npages += l->npages;
            s->dirty += l->dirty;
            span_recycle(l);
        }
    }
    uintptr_t end = s->start + s->npages * MP_PAGE_SIZE;
    mp_span_t *r = mp_pagemap_span(end);
    if (r && r->state == MP_SPAN_FREE && r->in_list && r->start == end) {
        list_remove(r);
        s->zero = zr_join(s->zero, s->npages, r->zero);
        s->npages += r->npages;
        s->dirty += r->dirty;
        span_recycle(r);
    }
    s->state = MP_SPAN_FREE;
    /* Only dirty spans age toward release; a fresh chunk's span needs no
     * clock (which spares a short-lived process the vDSO's first faults). */
    s->free_ms = s->dirty ? now_ms() : 0;
    span_map_ends(s);
    list_insert(s);
}

/* ---- growth -------------------------------------------------------------------- */
/* The lowest address the page heap has mapped; 0 before the first chunk. */
static uintptr_t heap_low;

/* Map memory right below heap_low, so that it coalesces with a free span
 * that starts there: then only the pages that span lacks need mapping.
 * mmap hands out addresses top-down, so this is where the heap grows anyway;
 * mapping each chunk on its own, with the alignment shim trimming both ends,
 * left holes between chunks, so that no two ever merged: bench_large (blocks
 * of 256 KiB to 32 MiB, four live) mapped 203 MiB where tcmalloc needs 100,
 * and took 3x its time in page faults.  NULL when the range below is taken
 * (or a custom memory source cannot place memory), and the caller falls
 * back to an aligned chunk anywhere.  With huge pages (huge != 0) the range
 * starts on a huge-page boundary, so that all of it can be huge. */
/* What the heap maps is a multiple of this: whole pages of ours and of the
 * OS's (one divides the other: 4, 16 or 64 KiB against 8 KiB).  Rounding to
 * the OS page alone let MEMPOOL_CHUNK=300k map 4 KiB off the 8 KiB grid. */
static inline size_t heap_map_unit(void) {
    return _mp_os_page > MP_PAGE_SIZE ? _mp_os_page : MP_PAGE_SIZE;
}

static void *heap_grow_down(size_t npages, size_t align, size_t chunk, size_t huge,
                            size_t *bytes) {
    if (heap_low == 0) return NULL;
    size_t have = 0;
    mp_span_t *f = mp_pagemap_span(heap_low);
    if (f && f->state == MP_SPAN_FREE && f->in_list && f->start == heap_low) have = f->npages;
    size_t need = npages + align / MP_PAGE_SIZE - 1;     /* an aligned run anywhere */
    size_t want = (need > have ? need - have : 1) * MP_PAGE_SIZE;
    if (want < chunk) want = chunk;
    want = mp_align_up(want, heap_map_unit());
    if (huge) want = heap_low - mp_align_down(heap_low - want, huge);
    if (want >= heap_low) return NULL;
    void *p = _mp_os_alloc_at((void *)(heap_low - want), want);
    if (p) *bytes = want;
    return p;
}

/* Transparent huge pages, once the heap is big (MEMPOOL_HUGEPAGES bytes
 * mapped): the huge page size new chunks are aligned to and advised with,
 * or 0.  A big heap's first touches are most of its page faults: tb's
 * 256 KiB case (300 MiB) took 78,000 of them; with huge pages it ran 2.8x
 * as fast at the same peak RSS (docs/DESIGN.md).  Below the threshold
 * nothing changes, so a small program's resident set is never rounded up
 * to 2 MiB blocks. */
static size_t heap_huge(void) {
    size_t from = (size_t)mp_option(MP_OPT_HUGEPAGES);
    return from && st_mapped >= from && huge_nranges < PH_HUGE_RANGES ? _mp_os_huge_size() : 0;
}

/* The address ranges advised huge, disjoint, in no order; chunks mapped
 * below the last one extend it, so there are usually one or two.  Inside
 * them a release takes whole huge pages only
 * (release_span); with the table full no more chunks are advised. */
static bool huge_overlaps(uintptr_t lo, uintptr_t hi) {
    for (unsigned i = 0; i < huge_nranges; i++)
        if (huge_ranges[i].lo < hi && lo < huge_ranges[i].hi) return true;
    return false;
}

/* The granule of a release or unmap of [lo, hi): a huge page where that
 * touches a range advised huge, else an OS page. */
static size_t heap_granule(uintptr_t lo, uintptr_t hi) {
    return huge_overlaps(lo, hi) ? _mp_os_huge_size() : _mp_os_page;
}

static void huge_add(uintptr_t lo, uintptr_t hi) {
    for (unsigned i = 0; i < huge_nranges; i++) {
        if (huge_ranges[i].lo == hi) { huge_ranges[i].lo = lo; return; }
        if (huge_ranges[i].hi == lo) { huge_ranges[i].hi = hi; return; }
    }
    huge_ranges[huge_nranges++] = (mp_range_t){ lo, hi };
}

/* Whether forgetting [lo, hi) would split a range in two. */
static bool huge_splits(uintptr_t lo, uintptr_t hi) {
    for (unsigned i = 0; i < huge_nranges; i++)
        if (huge_ranges[i].lo < lo && hi < huge_ranges[i].hi) return true;
    return false;
}

/* Forget [lo, hi) (unmapped).  Splitting a range takes a free slot, which
 * the caller has checked for (huge_splits, huge_nranges). */
static void huge_cut(uintptr_t lo, uintptr_t hi) {
    for (unsigned i = 0; i < huge_nranges; i++) {
        mp_range_t r = huge_ranges[i];
        if (r.hi <= lo || hi <= r.lo) continue;
        if (r.lo < lo && hi < r.hi) {
            huge_ranges[i].hi = lo;
            huge_ranges[huge_nranges++] = (mp_range_t){ hi, r.hi };
        } else if (r.lo < lo) {
            huge_ranges[i].hi = lo;
        } else if (hi < r.hi) {
            huge_ranges[i].lo = hi;
        } else {
            huge_ranges[i--] = huge_ranges[--huge_nranges];
        }
    }
}

static void region_record(uintptr_t start, size_t size);   /* see "returning address space" */

static mp_span_t *heap_grow(size_t npages, size_t align) {
    size_t chunk = (size_t)mp_option(MP_OPT_CHUNK);
    size_t huge = heap_huge();
    size_t bytes;
    void *p = heap_grow_down(npages, align, chunk, huge, &bytes);
    if (p == NULL) {
        bytes = npages * MP_PAGE_SIZE;
        if (bytes < chunk) bytes = chunk;
        bytes = mp_align_up(bytes, huge ? huge : heap_map_unit());
        size_t a = align > MP_MAX_ALIGN_SMALL ? align : MP_MAX_ALIGN_SMALL;
        if (a < huge) a = huge;
        p = _mp_os_alloc(bytes, a);
        if (p == NULL) return NULL;
    }
    size_t total = bytes / MP_PAGE_SIZE;
    mp_span_t *s = _mp_span_new();
    if (s == NULL || !_mp_pagemap_ensure((uintptr_t)p, total)) {
        if (s) span_recycle(s);
        _mp_os_free(p, bytes);
        return NULL;
    }
    if (huge) {
        _mp_os_advise_huge(p, bytes);
        huge_add((uintptr_t)p, (uintptr_t)p + bytes);
    }
    st_mapped += bytes;
    st_os_maps++;
    if (_mp_os_give_mode() == MP_GIVE_REGIONS) region_record((uintptr_t)p, bytes);
    if (heap_low == 0 || (uintptr_t)p < heap_low) heap_low = (uintptr_t)p;
    s->start = (uintptr_t)p;
    s->npages = total;
    s->dirty = 0;
    s->zero = zr_make(0, total);
    heap_insert_merge(s);
    return s->in_list && span_fits(s, npages, align) ? s : heap_find(npages, align);
}

/* ---- allocation ----------------------------------------------------------------- */
mp_span_t *_mp_pageheap_alloc(size_t npages, size_t align, mp_zrange_t *zero) {
    if (align < MP_PAGE_SIZE) align = MP_PAGE_SIZE;
    mp_lock(&_mp_pageheap_lock);
    mp_span_t *s = heap_find(npages, align);
    if (s == NULL) s = heap_grow(npages, align);
    if (s == NULL) {
        mp_unlock(&_mp_pageheap_lock);
        return NULL;
    }
    uintptr_t a = mp_align_up(s->start, align);
    size_t before = (a - s->start) / MP_PAGE_SIZE;
    size_t after = s->npages - before - npages;
    /* The structures for the pieces first, so that failing leaves s intact. */
    mp_span_t *p = before ? _mp_span_new() : NULL;
    mp_span_t *q = after ? _mp_span_new() : NULL;
    if ((before && p == NULL) || (after && q == NULL)) {
        if (p) span_recycle(p);
        if (q) span_recycle(q);
        mp_unlock(&_mp_pageheap_lock);
        return NULL;
    }
    list_remove(s);
    if (p) {
        p->start = s->start;
        p->npages = before;
        p->zero = zr_cut(s->zero, 0, before);
        p->dirty = zr_outside(p->zero, before);
        p->free_ms = s->free_ms;
        p->state = MP_SPAN_FREE;
        span_map_ends(p);
        list_insert(p);
    }
    if (q) {
        q->start = a + npages * MP_PAGE_SIZE;
        q->npages = after;
        q->zero = zr_cut(s->zero, before + npages, after);
        q->dirty = zr_outside(q->zero, after);
        q->free_ms = s->free_ms;
        q->state = MP_SPAN_FREE;
        span_map_ends(q);
        list_insert(q);
    }
    s->start = a;
    s->npages = npages;
    s->state = MP_SPAN_LARGE;
    if (zero) *zero = zr_cut(s->zero, before, npages);
    s->dirty = 0;
    s->zero = zr_none;
    s->next = s->prev = NULL;
    span_map_ends(s);
    heap_took_clean();          /* with the pieces back on their lists */
    size_t used = pages_in_use();
    if (used > peak_in_use) peak_in_use = used;
    mp_unlock(&_mp_pageheap_lock);
    return s;
}

/* Grow the LARGE span s in place to npages by taking the front of the free
 * span right after it, if there is one big enough (realloc). */
bool _mp_pageheap_grow(mp_span_t *s, size_t npages) {
    size_t extra = npages - s->npages;
    bool ok = false;
    mp_lock(&_mp_pageheap_lock);
    uintptr_t end = s->start + s->npages * MP_PAGE_SIZE;
    mp_span_t *r = mp_pagemap_span(end);
    if (r && r->state == MP_SPAN_FREE && r->in_list && r->start == end && r->npages >= extra) {
        list_remove(r);
        if (r->npages == extra) {
            span_recycle(r);
        } else {
            r->zero = zr_cut(r->zero, extra, r->npages - extra);
            r->start += extra * MP_PAGE_SIZE;
            r->npages -= extra;
            r->dirty = zr_outside(r->zero, r->npages);
            span_map_ends(r);
            list_insert(r);
        }
        s->npages = npages;
        span_map_ends(s);
        heap_took_clean();
        size_t used = pages_in_use();
        if (used > peak_in_use) peak_in_use = used;
        ok = true;
    }
    mp_unlock(&_mp_pageheap_lock);
    return ok;
}

/* Make s a SMALL span of class cls: map every page to it and set their
 * class byte, which is what lets the free fast path accept its objects. */
void _mp_pageheap_set_small(mp_span_t *s, unsigned cls) {
    for (size_t k = 0; k < s->npages; k++)
        _mp_pagemap_set_span(s->start + k * MP_PAGE_SIZE, s);
    if (_mp_classes[cls].fast_free) _mp_pagemap_set_class(s->start, s->npages, cls);
    /* Under the lock: a neighbour being freed reads our state to decide
     * whether to merge (it sees LARGE or SMALL, never FREE, either way). */
    mp_lock(&_mp_pageheap_lock);
    s->state = MP_SPAN_SMALL;
    s->cls = (uint8_t)cls;
    mp_unlock(&_mp_pageheap_lock);
    __atomic_add_fetch(&st_small_spans, s->npages * MP_PAGE_SIZE, __ATOMIC_RELAXED);
}

static size_t heap_release_locked(size_t keep, uint64_t older_than_ms, bool fine);
static void heap_unmap_clean(void);

void _mp_pageheap_free(mp_span_t *s) {
    if (s->state == MP_SPAN_SMALL) {
        /* Close the fast path to these pages before they can be reused. */
        _mp_pagemap_set_class(s->start, s->npages, 0);
        __atomic_sub_fetch(&st_small_spans, s->npages * MP_PAGE_SIZE, __ATOMIC_RELAXED);
    }
    mp_lock(&_mp_pageheap_lock);
    s->dirty = s->npages;
    s->zero = zr_none;
    s->free = NULL;
    s->used = 0;
    heap_insert_merge(s);
    /* Return pages to the OS when more free pages are dirty than the
     * retain limit: MEMPOOL_RETAIN bytes, or 1/8 of the recent peak of pages
     * in use if that is more, so that a big heap's churn - or its teardown -
     * is not turned into page faults and madvise calls.  Released are the
     * spans that stayed free for MEMPOOL_DECAY_MS (a page freed and soon
     * reused would cost a fault and zeroing for nothing), or any when there
     * are more than the larger of 4 x MEMPOOL_RETAIN and twice the peak
     * (then down to half that: resident memory stays below about three
     * times the peak of what is in use, without a release on every free).  A pass
     * runs at most once per half decay period, and lowers the peak by a
     * quarter toward the current use. */
    size_t opt = (size_t)mp_option(MP_OPT_RETAIN) / MP_PAGE_SIZE;
    size_t retain = opt > peak_in_use / 8 ? opt : peak_in_use / 8;
    /* Empty spans the central lists keep count against the same limit. */
    size_t cached = _mp_central_cached_bytes() / MP_PAGE_SIZE;
    retain = retain > cached ? retain - cached : 0;
    size_t hard = 4 * opt > 2 * peak_in_use ? 4 * opt : 2 * peak_in_use;
    if (st_free_dirty > retain) {
        uint64_t now = s->free_ms, decay = (uint64_t)mp_option(MP_OPT_DECAY_MS);
        if (now - last_purge_ms >= decay / 2) {
            last_purge_ms = now;
            release_stuck_at = 0;
            heap_release_locked(retain * MP_PAGE_SIZE, now >= decay ? now - decay : 0, false);
            /* Pieces of huge pages in use go too once free for 4 decay
             * periods: a quiet big heap's sparse leftovers then cost no
             * more than without huge pages. */
            if (huge_nranges && st_free_dirty > retain)
                heap_release_locked(retain * MP_PAGE_SIZE, now >= 4 * decay ? now - 4 * decay : 0, true);
            size_t used = pages_in_use();
            peak_in_use -= peak_in_use / 4;
            if (peak_in_use < used) peak_in_use = used;
        }
        /* Not `else`: a forced release on every free would otherwise keep
         * the timed pass, and the peak's decay, from ever running. */
        if (st_free_dirty > hard && st_free_dirty > release_stuck_at) {
            heap_release_locked(hard / 2 * MP_PAGE_SIZE, UINT64_MAX, false);
            /* Pieces of huge pages in use cannot go (release_span): until
             * an eighth more is dirty, or the next timed pass, frees do
             * not walk them again. */
            release_stuck_at = st_free_dirty > hard / 2 ? st_free_dirty + st_free_dirty / 8 : 0;
        }
    }
    heap_unmap_clean();
    mp_unlock(&_mp_pageheap_lock);
}

/* ---- returning memory to the OS ----------------------------------------------- */
/* Decommit the free span s, or the part of it that can go: whole OS pages
 * only (with OS pages larger than ours, a span's partial OS pages stay,
 * and stay dirty), and where it lies in a range advised huge, whole huge
 * pages only unless `fine`.  Releasing part of a huge page splits it, and
 * khugepaged (by default it collapses any advised 2 MiB block with one
 * page resident) would fill the released pages back in, resident while
 * counted clean: 8 MiB of pieces released by mp_trim were all back 5 s
 * later.  So a fine release first takes the advice off the part of a huge
 * page it releases, or leaves that part if the kernel refuses.  Returns
 * the bytes released. */
static size_t release_span(mp_span_t *s, bool fine) {
    uintptr_t end = s->start + s->npages * MP_PAGE_SIZE;
    size_t g = heap_granule(s->start, end), h = g;
    if (fine) g = _mp_os_page;
    uintptr_t zl = mp_align_up(s->start, g), zh = end & ~(uintptr_t)(g - 1);
    if (h != g && zl < zh) {
        uintptr_t a = mp_align_up(zl, h), b = zh & ~(uintptr_t)(h - 1);
        if (a > zh) a = zh;
        if (b < a) b = a;
        /* [zl, a) and [b, zh): the parts in huge pages partly kept */
        if (zl < a && !_mp_os_advise_nohuge((void *)zl, a - zl)) zl = a;
        if (b < zh && !_mp_os_advise_nohuge((void *)b, zh - b)) zh = b;
    }
    mp_zrange_t z = zl < zh ? zr_make((zl - s->start) / MP_PAGE_SIZE, (zh - s->start) / MP_PAGE_SIZE)
                            : zr_none;
    /* Nothing to gain: the whole pages inside are known zero already. */
    if (z.lo >= z.hi || (s->zero.lo <= z.lo && z.hi <= s->zero.hi)) return 0;
    if (!_mp_os_decommit((void *)zl, zh - zl)) return 0;
    list_remove(s);
    /* Zero: the whole OS pages inside it, which the decommit covered (OS
     * pages may be bigger than ours), joined with the run it had where the
     * two meet: a free span's pages are not written, so that run still
     * reads zero (with big OS pages it may reach into the partial ones at
     * the ends, which the decommit left). */
    s->zero = zr_union(s->zero, z);
    /* The partial pages at the ends were not decommitted: still dirty. */
    size_t left = zr_outside(s->zero, s->npages);
    if (left > s->dirty) left = s->dirty;
    size_t bytes = (s->dirty - left) * MP_PAGE_SIZE;
    s->dirty = left;
    list_insert(s);
    return bytes;
}

/* ---- returning address space -------------------------------------------------- */
/* A wholly clean free span holds address space and nothing else, and is
 * normally reused.  But a heap that cannot grow in one piece (a mapping of
 * the program's right below it, or a custom memory source) and serves ever
 * bigger blocks maps anew for each, and its clean spans pile up: 200 steps
 * of a block growing by 1 MiB, each beside an 8 MiB mapping of the
 * program's, mapped 20 GB for 259 MB in use.  That costs no RSS, but it
 * counts against vm.overcommit_memory=2 and RLIMIT_AS, and runs a source
 * with a budget dry.  (So does an alignment's slack: the growth toward an
 * aligned run of a 1 GiB-aligned block maps up to 1 GiB below the heap.)
 * So after a free or a trim, once the clean free pages pass the larger of
 * 16 chunks (MEMPOOL_CHUNK: 64 MiB) and twice the recent peak in use,
 * clean address space goes back until it is down to half that:
 *   - with the mmap source, wholly clean spans of over MP_PH_LISTS pages
 *     (1 MiB), from the back of their list (where clean spans are).  Not
 *     smaller ones: each unmap can split a kernel mapping in two, and their
 *     number is limited (vm.max_map_count);
 *   - with a custom source, which takes back only whole regions (mempool.h),
 *     each recorded region that lies in a wholly clean span of over
 *     MP_PH_LISTS pages; the rest of the span stays free;
 *   - nothing with a custom source that has no free callback.
 * In a range advised huge, only whole huge pages go (heap_granule).
 * A pass that gave nothing back is not repeated until there is more clean
 * space, so that frees do not keep walking the same spans. */
typedef struct mp_region_s {
    uintptr_t start;
    size_t size;
    struct mp_region_s *next;
} mp_region_t;

static mp_region_t *regions, *spare_regions;   /* MP_GIVE_REGIONS only */
static size_t region_min = SIZE_MAX;           /* the smallest recorded (or was) */

/* Note a region a custom source handed out (heap_grow). */
static void region_record(uintptr_t start, size_t size) {
    mp_region_t *r = spare_regions;
    if (r) spare_regions = r->next;
    else if ((r = _mp_meta_alloc(sizeof *r)) == NULL) return;    /* kept for good */
    r->start = start;
    r->size = size;
    r->next = regions;
    regions = r;
    if (size < region_min) region_min = size;
}

/* Give pages [lo, hi) of the wholly clean free span s back to the source
 * (whole_region: a region of a custom source), leaving the pieces of s
 * either side free.  False, with nothing changed, if that was not done. */
static bool span_give_back(mp_span_t *s, uintptr_t lo, uintptr_t hi, bool whole_region) {
    uintptr_t end = s->start + s->npages * MP_PAGE_SIZE;
    size_t left = (lo - s->start) / MP_PAGE_SIZE, right = (end - hi) / MP_PAGE_SIZE;
    mp_span_t *q = left && right ? _mp_span_new() : NULL;
    if (left && right && q == NULL) return false;
    if (whole_region) {
        _mp_os_free((void *)lo, hi - lo);
    } else if (!_mp_os_unmap((void *)lo, hi - lo)) {
        if (q) span_recycle(q);
        return false;
    }
    list_remove(s);
    /* The entries a lookup trusts are those of spans' ends: the two of the
     * range given back go; those in between were stale already (types.h). */
    _mp_pagemap_set_span(lo, NULL);
    _mp_pagemap_set_span(hi - MP_PAGE_SIZE, NULL);
    if (lo == heap_low) heap_low = hi;          /* grow back into the gap */
    st_mapped -= hi - lo;
    /* [lo, hi) lies in the zero run of a span with dirty pages: the pieces
     * count theirs as a split does (zr_outside), an upper bound. */
    mp_zrange_t z = s->zero;
    bool dirty = s->dirty != 0;
    if (right) {
        mp_span_t *r = left ? q : s;    /* s itself: its start is read first */
        r->zero = zr_cut(z, (hi - s->start) / MP_PAGE_SIZE, right);
        r->start = hi;
        r->npages = right;
        r->dirty = dirty ? zr_outside(r->zero, right) : 0;
        r->state = MP_SPAN_FREE;
        r->free_ms = s->free_ms;
        span_map_ends(r);
        list_insert(r);
    }
    if (left) {
        s->npages = left;
        s->zero = zr_cut(z, 0, left);
        s->dirty = dirty ? zr_outside(s->zero, left) : 0;
        span_map_ends(s);
        list_insert(s);
    } else if (!right) {
        span_recycle(s);
    }
    return true;
}

static void heap_unmap_clean(void) {
    if (st_free_clean <= give_back_failed_at) return;
    size_t limit = 2 * peak_in_use, chunks = 16 * (size_t)mp_option(MP_OPT_CHUNK) / MP_PAGE_SIZE;
    if (limit < chunks) limit = chunks;                  /* pages */
    if (st_free_clean <= limit) return;
    size_t target = limit / 2;
    mp_give_t mode = _mp_os_give_mode();
    st_give_back_passes++;
    if (mode == MP_GIVE_RANGES) {
        for (mp_span_t *s = tails[PH_LARGE], *pv; s; s = pv) {
            pv = s->prev;
            /* A clean span whole; else its zero run, which releases leave
             * between dirty ends when they take whole huge pages only.
             * Whole OS pages (64 KiB ones), and whole huge pages in a range
             * advised huge, so that what stays can still be huge. */
            uintptr_t lo = s->start, hi = s->start + s->npages * MP_PAGE_SIZE;
            if (s->dirty) {
                if (s->zero.hi - s->zero.lo <= MP_PH_LISTS) continue;
                lo = s->start + (uintptr_t)s->zero.lo * MP_PAGE_SIZE;
                hi = s->start + (uintptr_t)s->zero.hi * MP_PAGE_SIZE;
            }
            size_t g = heap_granule(lo, hi);
            bool huge = g != _mp_os_page;
            lo = mp_align_up(lo, g);
            hi &= ~(uintptr_t)(g - 1);
            if (hi <= lo || hi - lo <= MP_PH_LISTS * MP_PAGE_SIZE ||
                (huge && huge_nranges == PH_HUGE_RANGES && huge_splits(lo, hi)))
                continue;
            if (!span_give_back(s, lo, hi, false)) break;               /* the kernel said no */
            if (huge) huge_cut(lo, hi);
            if (st_free_clean <= target) return;
        }
    } else if (mode == MP_GIVE_REGIONS) {
        /* The regions inside each clean span big enough to hold one; after
         * each one given back, again from the tail, where the span's pieces
         * went.  A span smaller than every region is passed over in O(1),
         * so a pass over pinned regions costs one walk of the clean spans. */
    again:
        for (mp_span_t *s = tails[PH_LARGE]; s && s->dirty == 0; s = s->prev) {
            uintptr_t end = s->start + s->npages * MP_PAGE_SIZE;
            if (end - s->start < region_min) continue;
            for (mp_region_t **rp = &regions, *r; (r = *rp) != NULL; rp = &r->next) {
                st_give_back_checks++;
                if (r->start < s->start || r->start + r->size > end) continue;
                if (!span_give_back(s, r->start, r->start + r->size, true)) break;
                *rp = r->next;
                r->next = spare_regions;
                spare_regions = r;
                if (st_free_clean <= target) return;
                goto again;
            }
        }
    }
    give_back_failed_at = st_free_clean;
}

/* Decommit dirty free spans freed at or before `older_than_ms`, those of
 * more than MP_PH_LISTS pages first (in list order), then by size from
 * MP_PH_LISTS pages down, until at most `keep` bytes of free dirty pages
 * remain. */
static size_t heap_release_locked(size_t keep, uint64_t older_than_ms, bool fine) {
    size_t done = 0;
    st_release_passes++;
    mp_span_t *s = lists[PH_LARGE];
    while (s && st_free_dirty * MP_PAGE_SIZE > keep) {
        mp_span_t *nx = s->next;
        if (s->dirty && s->free_ms <= older_than_ms) done += release_span(s, fine);
        s = nx;
    }
    for (size_t n = MP_PH_LISTS; n >= 1 && st_free_dirty * MP_PAGE_SIZE > keep; n--) {
        /* Dirty spans are at the front; a released one moves to the back. */
        for (s = lists[n]; s && s->dirty && st_free_dirty * MP_PAGE_SIZE > keep;) {
            mp_span_t *nx = s->next;
            if (s->free_ms <= older_than_ms) done += release_span(s, fine);
            s = nx;
        }
    }
    st_released += done;
    return done;
}

/* Down to `keep` bytes of dirty free pages; with `fine` (mp_trim), pieces of
 * huge pages too, as the caller asked for all it can get now. */
size_t _mp_pageheap_release(size_t keep, bool fine) {
    mp_lock(&_mp_pageheap_lock);
    size_t r = heap_release_locked(keep, UINT64_MAX, fine);
    heap_unmap_clean();
    mp_unlock(&_mp_pageheap_lock);
    return r;
}

/* ---- statistics --------------------------------------------------------------- */
void _mp_pageheap_count_large(size_t bytes, int sign) {
    if (sign == 0) {                     /* grown in place */
        __atomic_add_fetch(&st_large_in_use, bytes, __ATOMIC_RELAXED);
    } else if (sign > 0) {
        __atomic_add_fetch(&st_large_in_use, bytes, __ATOMIC_RELAXED);
        __atomic_add_fetch(&st_large_allocs, 1, __ATOMIC_RELAXED);
    } else {
        __atomic_sub_fetch(&st_large_in_use, bytes, __ATOMIC_RELAXED);
    }
}

void _mp_pageheap_stats(mp_pageheap_stats_t *st) {
    mp_lock(&_mp_pageheap_lock);
    st->mapped = st_mapped;
    st->free_dirty = st_free_dirty * MP_PAGE_SIZE;
    st->committed = st_mapped - st_free_clean * MP_PAGE_SIZE;
    st->released = st_released;
    st->os_maps = st_os_maps;
    st->huge = 0;
    for (unsigned i = 0; i < huge_nranges; i++) st->huge += huge_ranges[i].hi - huge_ranges[i].lo;
    st->give_back_passes = st_give_back_passes;
    st->give_back_checks = st_give_back_checks;
    st->release_passes = st_release_passes;
    mp_unlock(&_mp_pageheap_lock);
    st->large_in_use = __atomic_load_n(&st_large_in_use, __ATOMIC_RELAXED);
    st->large_allocs = __atomic_load_n(&st_large_allocs, __ATOMIC_RELAXED);
    st->small_spans_bytes = __atomic_load_n(&st_small_spans, __ATOMIC_RELAXED);
}

bool _mp_pageheap_free_at(uintptr_t p, size_t bytes) {
    mp_lock(&_mp_pageheap_lock);
    mp_span_t *s = mp_pagemap_span(p);
    bool yes = s != NULL && s->start == p && s->state == MP_SPAN_FREE &&
               s->npages * MP_PAGE_SIZE >= bytes;
    mp_unlock(&_mp_pageheap_lock);
    return yes;
}

/* Check the page heap's invariants; returns how many are broken (tests).
 *  - each free span is mapped at its ends, is FREE, and is on the list of
 *    its size;
 *  - no free span has a free neighbour (coalescing is complete);
 *  - each list's back links and tail pointer are right;
 *  - the dirty/clean page counts add up;
 *  - a span's known-zero run lies inside it;
 *  - the ranges advised huge are disjoint and not empty. */
size_t _mp_pageheap_check(void) {
    size_t bad = 0, dirty = 0, clean = 0;
    mp_lock(&_mp_pageheap_lock);
    for (size_t n = 1; n <= PH_LARGE; n++) {
        mp_span_t *last = NULL;
        for (mp_span_t *s = lists[n]; s; last = s, s = s->next) {
            if (s->prev != last) bad++;
            if (s->state != MP_SPAN_FREE || !s->in_list) bad++;
            if (list_no(s->npages) != n) bad++;
            if (mp_pagemap_span(s->start) != s) bad++;
            if (mp_pagemap_span(s->start + (s->npages - 1) * MP_PAGE_SIZE) != s) bad++;
            mp_span_t *l = s->start >= MP_PAGE_SIZE ? mp_pagemap_span(s->start - MP_PAGE_SIZE) : NULL;
            if (l && l->state == MP_SPAN_FREE && l->in_list &&
                l->start + l->npages * MP_PAGE_SIZE == s->start)
                bad++;
            uintptr_t end = s->start + s->npages * MP_PAGE_SIZE;
            mp_span_t *r = mp_pagemap_span(end);
            if (r && r->state == MP_SPAN_FREE && r->in_list && r->start == end) bad++;
            if (s->dirty > s->npages) bad++;
            if (s->zero.lo < s->zero.hi && s->zero.hi > s->npages) bad++;
            dirty += s->dirty;
            clean += s->npages - s->dirty;
        }
        if (tails[n] != last) bad++;        /* list_insert appends clean spans there */
    }
    if (dirty != st_free_dirty || clean != st_free_clean) bad++;
    for (unsigned i = 0; i < huge_nranges; i++) {
        mp_range_t r = huge_ranges[i];
        if (r.lo >= r.hi) bad++;
        for (unsigned j = i + 1; j < huge_nranges; j++)
            if (huge_ranges[j].lo < r.hi && r.lo < huge_ranges[j].hi) bad++;
    }
    mp_unlock(&_mp_pageheap_lock);
    return bad;
}

static void put(int fd, const char *s) { _mp_write(fd, s, strlen(s)); }
static void put_num(int fd, uint64_t v) {
    char b[24];
    _mp_write(fd, b, _mp_fmt_u64(b, v));
}

/* The free spans, as a histogram by size: what a fragmented heap looks like. */
void _mp_pageheap_print(int fd) {
    mp_lock(&_mp_pageheap_lock);
    put(fd, "page heap: free spans by pages (count dirty/clean)\n");
    for (size_t n = 1; n <= PH_LARGE; n++) {
        mp_span_t *l = lists[n];
        size_t d = 0, c = 0, pages = 0;
        for (mp_span_t *s = l; s; s = s->next) {
            if (s->dirty) d++; else c++;
            pages += s->npages;
        }
        if (d + c == 0) continue;
        put(fd, "  ");
        if (n <= MP_PH_LISTS) put_num(fd, n); else put(fd, ">128");
        put(fd, " pages: ");
        put_num(fd, d);
        put(fd, "/");
        put_num(fd, c);
        put(fd, " (");
        put_num(fd, pages * MP_PAGE_SIZE / 1024);
        put(fd, " KiB)\n");
    }
    mp_unlock(&_mp_pageheap_lock);
}
