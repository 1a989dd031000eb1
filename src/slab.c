/*
 * slab.c - the slab allocator (fixed-size objects, lock-free), and what the
 * explicit allocators share: error codes and counters, poisoning, and the
 * chunks of the fixed-size allocators (layout, creation, release; see
 * xalloc.h for the chunk format and the object states).
 *
 * A slab is a set of chunks from the page heap, each holding nobj objects
 * of one stride, and SLAB_STRIPES free lists: lock-free stacks of object
 * indices, each alone on its cache line.  A thread frees onto its home
 * stripe (threads take stripes round-robin) and allocates from it, then
 * from the others: with one list, every thread CASed the same line, and two
 * threads did 9 Mops/s of pairs between them against 64 for one thread.
 *
 *   index  chunk_no << S | object number in the chunk (32 bits; all ones is
 *          the empty list).  A two-level directory maps chunk_no to the
 *          chunk, so the list needs no pointer inside the objects: the link
 *          of object o is links[o] in its chunk's header, a 32-bit atomic.
 *   head   (of each stripe) {tag:32, index:32} in one 64-bit word, changed only by CAS, and
 *          every push and pop adds one to the tag.  A pop reads the link of
 *          the head object and swaps in {tag+1, link}; if the object was
 *          popped and pushed back meanwhile (ABA) the tag differs and the
 *          CAS fails.  A stale link read is harmless: links are atomics in
 *          metadata that is never freed while the slab lives.  The tag
 *          wraps after 2^32 operations, far more than can happen while one
 *          thread sits between its load and its CAS.
 *
 * Invariants
 *   - An object's state byte is XS_LIVE iff it is handed out; XS_FREE iff
 *     it is on a free list (or being pushed/popped); objects past a
 *     chunk's `carved` count are XS_NONE and not on the list.
 *   - Chunks are never freed before mp_slab_destroy, so any chunk and link
 *     reachable from a stale head stays readable.
 *   - Objects are carved lazily, a batch at a time, so untouched objects
 *     cost no memory; capacity counts what the chunks can hold (<= max).
 *
 * Locking: alloc and free take no lock (one CAS each on a head, plus the
 * state CAS of a free).  grow_lock serialises carving and the addition of
 * chunks (the slow path of alloc, taken only when every stripe is empty),
 * stats and destroy's walk.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include "xalloc.h"

/* ==== shared by the explicit allocators ===================================== */

static __thread int x_last_error __attribute__((tls_model(MP_TLS_MODEL)));

const char *mp_strerror(int err) {
    switch (err) {
    case MP_OK: return "success";
    case MP_EINVAL: return "invalid argument";
    case MP_ENOMEM: return "out of memory";
    case MP_EOVERFLOW: return "size overflow";
    case MP_EALIGN: return "alignment not a power of two";
    case MP_ELIMIT: return "allocator limit reached";
    case MP_EDOUBLEFREE: return "double free";
    case MP_EFOREIGN: return "pointer not from this allocator";
    case MP_EINTERIOR: return "interior or misaligned pointer";
    default: return "unknown error";
    }
}

int mp_last_error(void) { return x_last_error; }

void _mp_xcount(mp_xcounters_t *c, int code) {
    if (c == NULL) return;
    _Atomic uint64_t *f;
    switch (code) {
    case MP_OK: return;
    case MP_EDOUBLEFREE: f = &c->double_free; break;
    case MP_EFOREIGN: f = &c->foreign; break;
    case MP_EINTERIOR: f = &c->interior; break;
    case MP_ELIMIT: case MP_ENOMEM: f = &c->limit; break;
    default: f = &c->bad_request; break;
    }
    atomic_fetch_add_explicit(f, 1, memory_order_relaxed);
}

void _mp_xcounters_read(mp_xcounters_t *c, mp_xerrors_t *o) {
    o->double_free = atomic_load_explicit(&c->double_free, memory_order_relaxed);
    o->foreign = atomic_load_explicit(&c->foreign, memory_order_relaxed);
    o->interior = atomic_load_explicit(&c->interior, memory_order_relaxed);
    o->bad_request = atomic_load_explicit(&c->bad_request, memory_order_relaxed);
    o->limit = atomic_load_explicit(&c->limit, memory_order_relaxed);
    o->poisoned = atomic_load_explicit(&c->poisoned, memory_order_relaxed);
}

static int xerr_errno(int code) {
    switch (code) {
    case MP_EOVERFLOW: return EOVERFLOW;
    case MP_ENOMEM: case MP_ELIMIT: return ENOMEM;
    default: return EINVAL;
    }
}

MP_COLD void *_mp_xfail(mp_xcounters_t *c, int code) {
    _mp_xcount(c, code);
    x_last_error = code;
    errno = xerr_errno(code);
    return NULL;
}

MP_COLD int _mp_xrefuse(mp_xcounters_t *c, int code) {
    _mp_xcount(c, code);
    x_last_error = code;
    return code;
}

/* ---- poisoning ---------------------------------------------------------------- */
void _mp_xpoison(void *p, size_t n) { memset(p, MP_XPOISON_BYTE, n); }

bool _mp_xpoison_check(mp_xcounters_t *c, const void *obj, const void *p, size_t n) {
    const unsigned char *b = p;
    size_t i = 0;
    uint64_t pat = 0x0101010101010101ull * MP_XPOISON_BYTE;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        if (w != pat) goto bad;
    }
    for (; i < n; i++)
        if (b[i] != MP_XPOISON_BYTE) goto bad;
    return true;
bad:
    _mp_xreport_uaf(c, obj);
    return false;
}

void _mp_xreport_uaf(mp_xcounters_t *c, const void *obj) {
    static const char what[] = "mempool: use after free: write to a freed object: ";
    char buf[96];
    size_t k = sizeof what - 1;
    memcpy(buf, what, k);
    k += _mp_fmt_hex(buf + k, (uintptr_t)obj);
    buf[k++] = '\n';
    _mp_write(2, buf, k);
    if (c) atomic_fetch_add_explicit(&c->poisoned, 1, memory_order_relaxed);
}

/* ---- chunks of the fixed-size allocators --------------------------------------- */
static unsigned ctz_size(size_t x) { return (unsigned)__builtin_ctzll((unsigned long long)x); }

/* Objects per chunk of `chunk` bytes for the layout in l (fills base and
 * links_off). */
static uint32_t layout_fit(mp_xlayout_t *l, size_t chunk, bool links) {
    size_t gran = (size_t)1 << l->sshift;
    size_t meta = MP_XCHUNK_HDR + (chunk >> l->sshift);
    size_t base, nlinks = SIZE_MAX;
    if (links) {
        size_t lo = mp_align_up(meta, 4);
        if (lo >= chunk) return 0;
        nlinks = (chunk - lo) / (l->stride + 4);
        base = mp_align_up(lo + 4 * nlinks, gran);
        l->links_off = lo;
    } else {
        base = mp_align_up(meta, gran);
        l->links_off = 0;
    }
    if (base >= chunk) return 0;
    l->base = base;
    /* Never more objects than links: rounding base up to the granule can
     * leave room for one more object than the links were counted for, and
     * that object's link would be the first word of object 0. */
    size_t n = (chunk - base) / l->stride;
    if (n > nlinks) n = nlinks;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

int _mp_xlayout(size_t obj_size, size_t initial, unsigned flags, bool links, mp_xlayout_t *l) {
    if (obj_size == 0 || obj_size > MP_XOBJ_MAX) return MP_EINVAL;
    size_t align = (flags & MP_FLAG_CACHELINE) ? 64 : 16;
    memset(l, 0, sizeof *l);
    l->obj_size = obj_size;
    l->stride = mp_align_up(obj_size, align);
    l->tz = ctz_size(l->stride);
    l->sshift = l->tz < 12 ? l->tz : 12;
    uint32_t odd = (uint32_t)(l->stride >> l->tz), inv = odd;   /* odd < 2^25 */
    for (int i = 0; i < 5; i++) inv *= 2 - odd * inv;          /* Newton: odd*inv == 1 */
    l->inv = inv;
    /* At least 8 objects per chunk, at least 64 KiB; bigger (to 1 MiB) when
     * the initial count would otherwise need more than 4 chunks. */
    size_t chunk = (size_t)64 << 10;
    while (layout_fit(l, chunk, links) < 8) chunk *= 2;
    while (chunk < ((size_t)1 << 20) && initial / 4 > layout_fit(l, chunk, links)) chunk *= 2;
    l->nobj = layout_fit(l, chunk, links);
    l->chunk_bytes = chunk;
    return MP_OK;
}

size_t _mp_xroom(const mp_xlayout_t *l, size_t chunks) {
    size_t by_space = (MP_XSPACE_MAX / l->chunk_bytes) * l->nobj;
    size_t by_chunks = chunks > by_space / l->nobj ? by_space : chunks * l->nobj;
    return by_chunks < by_space ? by_chunks : by_space;
}

mp_xchunk_t *_mp_xchunk_new(const mp_xlayout_t *l, uint64_t magic, void *owner) {
    mp_zrange_t zr;
    mp_span_t *s = _mp_pageheap_alloc(l->chunk_bytes >> MP_PAGE_SHIFT, l->chunk_bytes, &zr);
    if (s == NULL) return NULL;
    mp_xchunk_t *c = (mp_xchunk_t *)s->start;
    mp_zero_fill(s->start, (uintptr_t)c, MP_XCHUNK_HDR + (l->chunk_bytes >> l->sshift), zr);
    c->owner = owner;
    c->span = s;
    c->next = NULL;
    c->chunk_no = 0;
    c->carved = 0;
    /* &state[(p - c) >> s] == (p >> s) + c + HDR - (c >> s): c is aligned. */
    c->sdelta = (uintptr_t)c + MP_XCHUNK_HDR - ((uintptr_t)c >> l->sshift);
    /* The magic, then the class-map mark, last: a chunk is recognised only
     * once it is set up (mp_xchunk_find; the mark is a release store, and
     * the owner publishes the chunk with a release operation before any
     * object). */
    c->magic = magic;
    _mp_pagemap_set_class(s->start, 1, MP_CLS_XCHUNK);
    return c;
}

void _mp_xchunk_free(mp_xchunk_t *c) {
    _mp_pagemap_set_class((uintptr_t)c, 1, 0);    /* a LARGE span's pages read 0 */
    c->magic = 0;
    _mp_pageheap_free(c->span);
}

/* ==== the slab ================================================================== */
#define XNIL          0xffffffffu
#define DIR2_BITS     12
#define DIR2_LEN      ((uint32_t)1 << DIR2_BITS)
#define DIR1_LEN      256u                 /* 2^20 chunks at most */
#define CARVE_BATCH   64u
#define SLAB_STRIPES  8u                   /* free lists; a power of two */

typedef struct {
    _Alignas(64) _Atomic uint64_t head;    /* {tag, index}, alone on its line */
} slab_stripe_t;

typedef _Atomic(mp_xchunk_t *) slab_dir2_t;

struct mp_slab_s {
    /* read-only after create */
    mp_xlayout_t l;
    uintptr_t cmask;            /* chunk_bytes - 1 */
    uintptr_t gmask;            /* granule - 1 */
    uint32_t S, omask;          /* object bits of an index */
    uint32_t max_chunks;
    unsigned flags;
    size_t max;                 /* most objects (SIZE_MAX: no cap) */
    uint32_t id;
    uint64_t tag;
    _Atomic(slab_dir2_t *) dir[DIR1_LEN];
    /* the free lists */
    slab_stripe_t stripe[SLAB_STRIPES];
    /* the slow path (grow_lock) */
    _Alignas(64) mp_lock_t grow_lock;
    uint32_t nchunks;
    uint32_t carve_no;          /* chunk being carved */
    size_t carved;              /* objects carved, all chunks */
    size_t capacity;            /* objects the chunks may hold (<= max) */
    mp_xcounters_t err;
};

/* Bits of an index that number the object in its chunk. */
static uint32_t slab_index_bits(const mp_xlayout_t *l) {
    return l->nobj > 1 ? 32 - (uint32_t)__builtin_clz(l->nobj - 1) : 1;
}

/* Most chunks: the directory's size, and chunk numbers that keep every
 * index below XNIL. */
static uint32_t slab_max_chunks(const mp_xlayout_t *l) {
    uint32_t S = slab_index_bits(l);
    uint32_t by_bits = S >= 31 ? 1 : ((uint32_t)1 << (32 - S)) - 1;
    return by_bits < DIR1_LEN * DIR2_LEN ? by_bits : DIR1_LEN * DIR2_LEN;
}

MP_INLINE mp_xchunk_t *slab_chunk(mp_slab_t *s, uint32_t k) {
    slab_dir2_t *d = atomic_load_explicit(&s->dir[k >> DIR2_BITS], memory_order_acquire);
    return atomic_load_explicit(&d[k & (DIR2_LEN - 1)], memory_order_acquire);
}

MP_INLINE _Atomic uint32_t *slab_links(mp_slab_t *s, mp_xchunk_t *c) {
    return (_Atomic uint32_t *)((char *)c + s->l.links_off);
}

MP_INLINE uintptr_t slab_obj(mp_slab_t *s, mp_xchunk_t *c, uint32_t o) {
    return (uintptr_t)c + s->l.base + (uintptr_t)o * s->l.stride;
}

/* Add a chunk (grow_lock held, or during create).  MP_OK, MP_ELIMIT, MP_ENOMEM. */
static int slab_add_chunk(mp_slab_t *s) {
    if (s->capacity >= s->max) return MP_ELIMIT;
    uint32_t k = s->nchunks;
    if (k >= s->max_chunks) return MP_ELIMIT;
    slab_dir2_t *d = atomic_load_explicit(&s->dir[k >> DIR2_BITS], memory_order_relaxed);
    if (d == NULL) {
        d = mp_calloc(DIR2_LEN, sizeof *d);
        if (d == NULL) return MP_ENOMEM;
        atomic_store_explicit(&s->dir[k >> DIR2_BITS], d, memory_order_release);
    }
    mp_xchunk_t *c = _mp_xchunk_new(&s->l, MP_XMAGIC_SLAB, s);
    if (c == NULL) return MP_ENOMEM;
    c->chunk_no = k;
    atomic_store_explicit(&d[k & (DIR2_LEN - 1)], c, memory_order_release);
    s->nchunks = k + 1;
    size_t room = s->max - s->capacity;
    s->capacity += room < s->l.nobj ? room : s->l.nobj;
    return MP_OK;
}

/* The calling thread's home stripe: 1 + its number, 0 until it has one. */
static __thread uint32_t slab_home_no __attribute__((tls_model(MP_TLS_MODEL)));
static _Atomic uint32_t slab_next_home;

static MP_NOINLINE uint32_t slab_home_assign(void) {
    slab_home_no = 1 + atomic_fetch_add_explicit(&slab_next_home, 1, memory_order_relaxed) %
                       SLAB_STRIPES;
    return slab_home_no - 1;
}

MP_INLINE _Atomic uint64_t *slab_home(mp_slab_t *s) {
    uint32_t h = slab_home_no;
    return &s->stripe[MP_LIKELY(h != 0) ? h - 1 : slab_home_assign()].head;
}

/* Push the chain first..last (links among them already set) in one CAS. */
static void slab_push_chain(_Atomic uint64_t *head, uint32_t first, _Atomic uint32_t *last_link) {
    uint64_t old = atomic_load_explicit(head, memory_order_relaxed);
    uint64_t nw;
    do {
        atomic_store_explicit(last_link, (uint32_t)old, memory_order_relaxed);
        nw = (((old >> 32) + 1) << 32) | first;
    } while (!atomic_compare_exchange_weak_explicit(head, &old, nw, memory_order_release,
                                                    memory_order_relaxed));
}

/* A stripe with objects on it, the home stripe first; NULL if all are empty. */
static _Atomic uint64_t *slab_nonempty(mp_slab_t *s, _Atomic uint64_t *home) {
    if ((uint32_t)atomic_load_explicit(home, memory_order_acquire) != XNIL) return home;
    for (uint32_t i = 0; i < SLAB_STRIPES; i++)
        if ((uint32_t)atomic_load_explicit(&s->stripe[i].head, memory_order_acquire) != XNIL)
            return &s->stripe[i].head;
    return NULL;
}

/* Every free list was empty: carve a batch (adding a chunk if needed), keep
 * the first object, push the rest onto the home stripe.  Returns the object,
 * or NULL with *code set (MP_OK: a list was refilled meanwhile, try again). */
static MP_NOINLINE void *slab_refill(mp_slab_t *s, _Atomic uint64_t *home, int *code) {
    *code = MP_OK;
    mp_lock(&s->grow_lock);
    if (slab_nonempty(s, home) != NULL) {
        mp_unlock(&s->grow_lock);
        return NULL;
    }
    mp_xchunk_t *c = s->nchunks ? slab_chunk(s, s->carve_no) : NULL;
    if (c == NULL || c->carved >= s->l.nobj) {
        if (c != NULL && s->carve_no + 1 < s->nchunks) {
            c = slab_chunk(s, ++s->carve_no);
        } else {
            int r = s->carved >= s->max ? MP_ELIMIT : slab_add_chunk(s);
            if (r != MP_OK) {
                mp_unlock(&s->grow_lock);
                *code = r;
                return NULL;
            }
            s->carve_no = s->nchunks - 1;
            c = slab_chunk(s, s->carve_no);
        }
    }
    uint32_t o0 = c->carved, n = s->l.nobj - o0;
    if (n > CARVE_BATCH) n = CARVE_BATCH;
    if (s->max - s->carved < n) n = (uint32_t)(s->max - s->carved);
    if (n == 0) {
        mp_unlock(&s->grow_lock);
        *code = MP_ELIMIT;
        return NULL;
    }
    _Atomic uint32_t *links = slab_links(s, c);
    uint32_t kbase = c->chunk_no << s->S;
    for (uint32_t o = o0; o < o0 + n; o++) {
        uintptr_t p = slab_obj(s, c, o);
        atomic_store_explicit(mp_xstate((uintptr_t)c, p, s->l.sshift),
                              o == o0 ? XS_LIVE : XS_FREE, memory_order_relaxed);
        if (o > o0 && (s->flags & MP_FLAG_POISON)) _mp_xpoison((void *)p, s->l.stride);
        if (o + 1 < o0 + n) atomic_store_explicit(&links[o], kbase | (o + 1), memory_order_relaxed);
    }
    c->carved = o0 + n;
    s->carved += n;
    if (n > 1) slab_push_chain(home, kbase | (o0 + 1), &links[o0 + n - 1]);
    mp_unlock(&s->grow_lock);
    return (void *)slab_obj(s, c, o0);
}

mp_slab_t *mp_slab_create(size_t obj_size, size_t initial, size_t max, unsigned flags) {
    mp_ensure_init();
    if (flags & ~MP_XFLAGS_ALL) return _mp_xfail(NULL, MP_EINVAL);
    if (max != 0 && initial > max) return _mp_xfail(NULL, MP_EINVAL);
    flags |= MP_XFLAGS_FORCED;
    mp_xlayout_t l;
    int r = _mp_xlayout(obj_size, initial, flags, true, &l);
    if (r != MP_OK) return _mp_xfail(NULL, r);
    if (initial > _mp_xroom(&l, slab_max_chunks(&l))) return _mp_xfail(NULL, MP_ENOMEM);
    mp_slab_t *s = mp_aligned_alloc(64, sizeof *s);
    if (s == NULL) return _mp_xfail(NULL, MP_ENOMEM);
    memset(s, 0, sizeof *s);
    s->l = l;
    s->cmask = l.chunk_bytes - 1;
    s->gmask = ((uintptr_t)1 << l.sshift) - 1;
    s->S = slab_index_bits(&l);
    s->omask = ((uint32_t)1 << s->S) - 1;
    s->max_chunks = slab_max_chunks(&l);
    s->flags = flags;
    s->max = max ? max : SIZE_MAX;
    for (uint32_t i = 0; i < SLAB_STRIPES; i++)
        atomic_store_explicit(&s->stripe[i].head, XNIL, memory_order_relaxed);
    s->grow_lock = (mp_lock_t)MP_LOCK_INIT;
    s->id = _mp_xreg_add(s, XK_SLAB, &s->grow_lock, NULL, &s->tag);
    if (s->id == UINT32_MAX) {
        mp_free(s);
        return _mp_xfail(NULL, MP_ENOMEM);
    }
    while (s->capacity < initial) {
        r = slab_add_chunk(s);
        if (r != MP_OK) {
            mp_slab_destroy(s);
            return _mp_xfail(NULL, r == MP_ELIMIT ? MP_ENOMEM : r);
        }
    }
    return s;
}

static MP_NOINLINE void *slab_poison_check(mp_slab_t *s, uintptr_t p) {
    _mp_xpoison_check(&s->err, (void *)p, (void *)p, s->l.stride);
    return (void *)p;
}

void *mp_slab_alloc(mp_slab_t *s) {
    if (MP_UNLIKELY(s == NULL)) return _mp_xfail(NULL, MP_EINVAL);
    _Atomic uint64_t *home = slab_home(s), *head = home;
    uint64_t old = atomic_load_explicit(head, memory_order_acquire);
    for (;;) {
        uint32_t idx = (uint32_t)old;
        if (MP_UNLIKELY(idx == XNIL)) {
            head = slab_nonempty(s, home);
            if (head == NULL) {
                int code;
                void *p = slab_refill(s, home, &code);
                if (p != NULL) return p;
                if (code != MP_OK) return _mp_xfail(&s->err, code);
                head = home;
            }
            old = atomic_load_explicit(head, memory_order_acquire);
            continue;
        }
        mp_xchunk_t *c = slab_chunk(s, idx >> s->S);
        uint32_t o = idx & s->omask;
        uint32_t next = atomic_load_explicit(&slab_links(s, c)[o], memory_order_relaxed);
        uint64_t nw = (((old >> 32) + 1) << 32) | next;
        if (atomic_compare_exchange_weak_explicit(head, &old, nw, memory_order_acquire,
                                                  memory_order_acquire)) {
            uintptr_t p = slab_obj(s, c, o);
            atomic_store_explicit(mp_xstate((uintptr_t)c, p, s->l.sshift), XS_LIVE,
                                  memory_order_relaxed);
            if (MP_UNLIKELY(s->flags & MP_FLAG_POISON)) return slab_poison_check(s, p);
            return (void *)p;
        }
    }
}

int mp_slab_free(mp_slab_t *s, void *ptr) {
    if (MP_UNLIKELY(s == NULL)) return _mp_xrefuse(NULL, MP_EINVAL);
    if (MP_UNLIKELY(ptr == NULL)) return _mp_xrefuse(&s->err, MP_EINVAL);
    uintptr_t p = (uintptr_t)ptr;
    mp_xchunk_t *c = mp_xchunk_find(p, s->cmask, MP_XMAGIC_SLAB, s);
    if (MP_UNLIKELY(c == NULL)) return _mp_xrefuse(&s->err, MP_EFOREIGN);
    if (MP_UNLIKELY(p & s->gmask)) return _mp_xrefuse(&s->err, MP_EINTERIOR);
    uint8_t e = XS_LIVE;
    if (MP_UNLIKELY(!atomic_compare_exchange_strong_explicit(
            mp_xstate((uintptr_t)c, p, s->l.sshift), &e, XS_FREE, memory_order_relaxed,
            memory_order_relaxed)))
        return _mp_xrefuse(&s->err, e == XS_FREE ? MP_EDOUBLEFREE : MP_EINTERIOR);
    if (MP_UNLIKELY(s->flags & MP_FLAG_POISON)) _mp_xpoison(ptr, s->l.stride);
    uint32_t o = mp_xobj_index(&s->l, p - (uintptr_t)c - s->l.base);
    uint32_t idx = (c->chunk_no << s->S) | o;
    slab_push_chain(slab_home(s), idx, &slab_links(s, c)[o]);
    return MP_OK;
}

void mp_slab_destroy(mp_slab_t *s) {
    if (s == NULL) return;
    _mp_xreg_remove(s->id, s->tag);
    for (uint32_t i = 0; i < DIR1_LEN; i++) {
        slab_dir2_t *d = atomic_load_explicit(&s->dir[i], memory_order_acquire);
        if (d == NULL) continue;
        for (uint32_t j = 0; j < DIR2_LEN; j++) {
            mp_xchunk_t *c = atomic_load_explicit(&d[j], memory_order_acquire);
            if (c) _mp_xchunk_free(c);
        }
        mp_free(d);
    }
    mp_free(s);
}

int mp_slab_stats(mp_slab_t *s, mp_slab_stats_t *st) {
    if (s == NULL || st == NULL) return _mp_xrefuse(s ? &s->err : NULL, MP_EINVAL);
    memset(st, 0, sizeof *st);
    size_t live = 0;
    mp_lock(&s->grow_lock);
    for (uint32_t k = 0; k < s->nchunks; k++) {
        mp_xchunk_t *c = slab_chunk(s, k);
        for (uint32_t o = 0; o < c->carved; o++)
            live += atomic_load_explicit(mp_xstate((uintptr_t)c, slab_obj(s, c, o), s->l.sshift),
                                         memory_order_relaxed) == XS_LIVE;
    }
    st->capacity = s->capacity;
    st->chunks = s->nchunks;
    mp_unlock(&s->grow_lock);
    st->used = live;
    st->free = st->capacity - live;
    st->obj_size = s->l.stride;
    st->bytes = st->chunks * s->l.chunk_bytes;
    _mp_xcounters_read(&s->err, &st->errors);
    return MP_OK;
}
