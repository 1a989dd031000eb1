/*
 * fuzz_alloc.c - a fuzz target for everything that hands out memory: the
 * mp_* API and the four explicit allocators (heap, arena, slab, pool).
 *
 * An input is read as a program.  Each operation is an opcode byte and its
 * operands (a slot, a size, an alignment), with sizes drawn in shapes that
 * reach every layer: tiny, each size-class range, exact class boundaries
 * and one either side, large blocks, and sizes that must fail (above
 * PTRDIFF_MAX, calloc overflow).  Up to NSLOT blocks are live at a time.
 *
 * What is checked, on every operation:
 *   - a block is aligned as promised, its usable size is at least what was
 *     asked (and, from mp_malloc, mp_good_size or the next class's, when it
 *     borrowed a cached block of that class), and it overlaps no
 *     other live block of any allocator;
 *   - every usable byte is written with a pattern of the block's own when it
 *     is handed out, and the pattern is intact when it is resized or freed
 *     (large blocks: the first and last 256 bytes and one byte per 4 KiB):
 *     an allocator that hands out the same memory twice, or writes into a
 *     live block, is caught there;
 *   - calloc's memory reads as zero, realloc keeps the smaller size's bytes;
 *   - requests that must fail do, with the documented errno or MP_E* code:
 *     impossible sizes, bad alignments, a double free or an interior or
 *     foreign pointer given to an explicit allocator (which must refuse it
 *     and stay intact);
 *   - the statistics stay coherent (free_dirty <= committed <= mapped, and
 *     large_in_use counts at least the large blocks the input holds).
 * At the end of an input every block is checked and freed, the explicit
 * allocators are destroyed, the page heap's invariants are checked
 * (_mp_pageheap_check, from the static library), and the bytes in large
 * blocks are back to what they were before the input.
 *
 * Any failure prints "fuzz_alloc: <what>" and aborts, which libFuzzer turns
 * into a saved crash input.  Built two ways (Makefile):
 *   - `make fuzz`: clang's libFuzzer, coverage-guided, with ASAN and UBSAN
 *     (the library built with -DMP_SANITIZE: the fuzzer's malloc stays
 *     ASAN's, mempool serves the mp_* calls under test);
 *   - `make test`: with tests/fuzz/driver.c, a plain main that replays the
 *     committed corpus and then runs a fixed number of inputs from a seeded
 *     generator, so that every test run covers the same ground.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mempool.h"
#include "mempool/explicit.h"

size_t _mp_pageheap_check(void);    /* internal: broken page-heap invariants */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSLOT 64
#define LARGE_MAX ((size_t)4 << 20)   /* biggest block an input may ask for */
#define DENSE_MAX ((size_t)16 << 10)  /* blocks up to this are written whole */

typedef enum { K_FREE, K_MP, K_HEAP, K_ARENA, K_SLAB, K_POOL } kind_t;

typedef struct {
    unsigned char *p;
    size_t req;         /* bytes asked for */
    size_t usable;      /* bytes written with the pattern */
    uint8_t tag;
    uint8_t kind;
} slot_t;

typedef struct {
    const uint8_t *d;
    size_t n, i;
    slot_t slot[NSLOT];
    uint8_t next_tag;
    mp_heap_t *heap;
    mp_arena_t *arena;
    mp_slab_t *slab;
    mp_pool_t *pool;
    size_t slab_size, pool_size;
} fz_t;

__attribute__((noreturn, format(printf, 1, 2)))
static void fz_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_alloc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#define FZ_CHECK(cond, ...) do { if (!(cond)) fz_fail(__VA_ARGS__); } while (0)

/* ---- input ---------------------------------------------------------------- */
static uint8_t in_u8(fz_t *f) { return f->i < f->n ? f->d[f->i++] : 0; }
static size_t in_u16(fz_t *f) { return in_u8(f) | (size_t)in_u8(f) << 8; }
static size_t in_u24(fz_t *f) { return in_u16(f) | (size_t)in_u8(f) << 16; }

/* A size in one of eight shapes.  `impossible` is set for the sizes that
 * no allocator can serve (they must fail cleanly). */
static size_t in_size(fz_t *f, bool *impossible) {
    uint8_t shape = in_u8(f);
    *impossible = false;
    switch (shape & 7) {
    case 0: return in_u8(f);                               /* 0..255 */
    case 1: return in_u16(f) % 4097;                       /* the lookup table */
    case 2: return in_u16(f) % 32769;                      /* fast-free classes */
    case 3: return in_u24(f) % (256 * 1024 + 1);           /* every small class */
    case 4: {                                              /* a class boundary */
        size_t g = mp_good_size(1 + in_u24(f) % (256 * 1024));
        return g + (size_t)(in_u8(f) % 3) - 1;             /* g-1, g, g+1 */
    }
    case 5: return 256 * 1024 + in_u24(f) % (LARGE_MAX - 256 * 1024 + 1);
    case 6:                                                /* must fail */
        *impossible = true;
        switch (in_u8(f) & 3) {
        case 0: return SIZE_MAX - in_u8(f);
        case 1: return (size_t)PTRDIFF_MAX + 1 + in_u16(f);
        case 2: return (size_t)1 << 62;
        default: return SIZE_MAX / 2 + 1;
        }
    default: return 1 + (in_u8(f) & 15);                   /* 1..16 */
    }
}

static slot_t *in_slot(fz_t *f) { return &f->slot[in_u8(f) % NSLOT]; }

/* ---- the pattern ----------------------------------------------------------- */
static inline uint8_t pat(uint8_t tag, size_t off) {
    return (uint8_t)(tag ^ (off * 0x9d) ^ (off >> 8));
}

/* Apply fn to the offsets of a block that the pattern covers. */
#define FOR_OFFSETS(len, off, body) do {                                          \
    size_t len_ = (len);                                                          \
    if (len_ <= DENSE_MAX) {                                                      \
        for (size_t off = 0; off < len_; off++) { body; }                         \
    } else {                                                                      \
        for (size_t off = 0; off < 256; off++) { body; }                          \
        for (size_t off = 4096; off < len_ - 256; off += 4096) { body; }          \
        for (size_t off = len_ - 256; off < len_; off++) { body; }                \
    }                                                                             \
} while (0)

static void fill(slot_t *s) {
    unsigned char *p = s->p;
    uint8_t tag = s->tag;
    FOR_OFFSETS(s->usable, off, p[off] = pat(tag, off));
}

/* Check the pattern below offset `len` (all of it: len = usable), at the
 * offsets fill() wrote. */
static void check_prefix(const slot_t *s, size_t len, const char *when) {
    const unsigned char *p = s->p;
    uint8_t tag = s->tag;
    FOR_OFFSETS(s->usable, off, FZ_CHECK(off >= len || p[off] == pat(tag, off),
        "block %p (%zu bytes, kind %d) changed at offset %zu %s",
        (void *)p, s->usable, s->kind, off, when));
}

static void check_zero(const unsigned char *p, size_t len) {
    FOR_OFFSETS(len, off, FZ_CHECK(p[off] == 0,
        "calloc'd block %p of %zu bytes is not zero at offset %zu", (void *)p, len, off));
}

/* A new block must overlap no live one. */
static void check_disjoint(fz_t *f, const unsigned char *p, size_t len, const slot_t *self) {
    for (int i = 0; i < NSLOT; i++) {
        const slot_t *o = &f->slot[i];
        if (o == self || o->kind == K_FREE) continue;
        FZ_CHECK(p + len <= o->p || o->p + o->usable <= p,
                 "new block %p+%zu overlaps live block %p+%zu (kind %d)",
                 (void *)p, len, (void *)o->p, o->usable, o->kind);
    }
}

/* Record a new block in s (which must be free) and write its pattern. */
static void take(fz_t *f, slot_t *s, void *p, size_t req, size_t usable, kind_t kind) {
    FZ_CHECK(usable >= req, "block %p: usable size %zu below the %zu asked", p, usable, req);
    check_disjoint(f, p, usable, s);
    s->p = p;
    s->req = req;
    s->usable = usable;
    s->kind = (uint8_t)kind;
    s->tag = ++f->next_tag;
    fill(s);
}

static void check_align(const void *p, size_t n, size_t align) {
    size_t want = align ? align : n <= 8 ? 8 : 16;
    FZ_CHECK(((uintptr_t)p & (want - 1)) == 0, "block %p of %zu bytes not aligned to %zu",
             p, n, want);
}

/* ---- the malloc family ------------------------------------------------------ */
static void expect_null(void *p, int err, int want, const char *what, size_t n) {
    FZ_CHECK(p == NULL, "%s(%zu) succeeded where it must fail", what, n);
    FZ_CHECK(err == want, "%s(%zu): errno %d, expected %d", what, n, err, want);
}

static void mp_take(fz_t *f, slot_t *s, void *p, size_t n, size_t align) {
    check_align(p, n, align);
    take(f, s, p, n, mp_usable_size(p), K_MP);
}

/* Release the block in s with the API of its kind, after checking it. */
static void slot_release(fz_t *f, slot_t *s, bool sized) {
    if (s->kind == K_FREE) return;
    check_prefix(s, s->usable, "before its free");
    int rc = MP_OK;
    switch (s->kind) {
    case K_MP:
        if (sized) mp_free_sized(s->p, s->req + (s->usable - s->req) / 2);
        else mp_free(s->p);
        break;
    case K_HEAP: rc = mp_heap_free(f->heap, s->p); break;
    case K_SLAB: rc = mp_slab_free(f->slab, s->p); break;
    case K_POOL: rc = mp_pool_free(f->pool, s->p); break;
    case K_ARENA: break;        /* freed all at once by a reset */
    }
    FZ_CHECK(rc == MP_OK, "free of live block %p (kind %d) refused: %s",
             (void *)s->p, s->kind, mp_strerror(rc));
    s->kind = K_FREE;
}

static void op_malloc(fz_t *f, int variant) {
    slot_t *s = in_slot(f);
    bool bad;
    size_t n = in_size(f, &bad);
    slot_release(f, s, false);
    errno = 0;
    size_t usable = 0;
    void *p = variant ? mp_malloc_usable(n, &usable) : mp_malloc(n);
    if (bad) {
        expect_null(p, errno, ENOMEM, variant ? "mp_malloc_usable" : "mp_malloc", n);
        return;
    }
    FZ_CHECK(p != NULL, "mp_malloc(%zu) failed (errno %d)", n, errno);
    size_t g = mp_good_size(n), u = mp_usable_size(p);
    FZ_CHECK(u == g || u == mp_good_size(g + 1),    /* its class, or the next borrowed */
             "mp_malloc(%zu): usable %zu, good_size %zu", n, u, g);
    if (variant) FZ_CHECK(usable == mp_usable_size(p), "mp_malloc_usable(%zu) said %zu, is %zu",
                          n, usable, mp_usable_size(p));
    mp_take(f, s, p, n, 0);
}

static void op_calloc(fz_t *f) {
    slot_t *s = in_slot(f);
    bool bad;
    size_t n = in_size(f, &bad), m = 1 + in_u8(f) % 8;
    if (!bad && n > DENSE_MAX) m = 1;      /* a large block once, not eight times */
    if (in_u8(f) & 1) {         /* swap, so either argument may overflow */
        size_t t = n; n = m; m = t;
    }
    slot_release(f, s, false);
    errno = 0;
    void *p = mp_calloc(n, m);
    size_t total;
    if (bad || __builtin_mul_overflow(n, m, &total) || total > PTRDIFF_MAX) {
        expect_null(p, errno, ENOMEM, "mp_calloc", n);
        return;
    }
    FZ_CHECK(p != NULL, "mp_calloc(%zu, %zu) failed", n, m);
    check_zero(p, total);
    mp_take(f, s, p, total, 0);
}

static void op_realloc(fz_t *f) {
    slot_t *s = in_slot(f);
    bool bad;
    size_t n = in_size(f, &bad);
    if (s->kind != K_MP) slot_release(f, s, false);
    void *old = s->kind == K_MP ? s->p : NULL;
    if (old) check_prefix(s, s->usable, "before its realloc");
    errno = 0;
    void *p = mp_realloc(old, n);
    if (bad) {
        expect_null(p, errno, ENOMEM, "mp_realloc", n);
        if (old) check_prefix(s, s->usable, "after a failed realloc");
        return;
    }
    if (n == 0 && old) {        /* frees and returns NULL */
        FZ_CHECK(p == NULL, "mp_realloc(p, 0) returned %p", p);
        s->kind = K_FREE;
        return;
    }
    FZ_CHECK(p != NULL, "mp_realloc(%p, %zu) failed", old, n);
    if (old) {
        slot_t kept = *s;
        kept.p = p;
        check_prefix(&kept, s->req < n ? s->req : n, "after its realloc");
        s->kind = K_FREE;
    }
    mp_take(f, s, p, n, 0);
}

static void op_aligned(fz_t *f, bool posix) {
    slot_t *s = in_slot(f);
    bool bad;
    size_t n = in_size(f, &bad);
    uint8_t a = in_u8(f);
    size_t align = (size_t)1 << (a % 22);       /* up to 2 MiB */
    bool bad_align = (a & 0x40) && align >= 4;  /* 3 * 2^k: not a power of two */
    if (bad_align) align = align / 4 * 3;
    slot_release(f, s, false);
    void *p = NULL;
    if (posix) {
        bool bad_posix = bad_align || align < sizeof(void *);
        int rc = mp_posix_memalign(&p, align, n);
        if (bad_posix) {
            FZ_CHECK(rc == EINVAL, "posix_memalign(align %zu) returned %d, not EINVAL", align, rc);
            return;
        }
        if (bad) {
            FZ_CHECK(rc == ENOMEM, "posix_memalign(%zu) returned %d, not ENOMEM", n, rc);
            return;
        }
        FZ_CHECK(rc == 0 && p != NULL, "posix_memalign(%zu, %zu) failed: %d", align, n, rc);
    } else {
        errno = 0;
        p = mp_aligned_alloc(align, n);
        if (bad_align) {
            expect_null(p, errno, EINVAL, "mp_aligned_alloc (bad alignment)", align);
            return;
        }
        if (bad) {
            expect_null(p, errno, ENOMEM, "mp_aligned_alloc", n);
            return;
        }
        FZ_CHECK(p != NULL, "mp_aligned_alloc(%zu, %zu) failed", align, n);
    }
    mp_take(f, s, p, n, align > 16 ? align : 0);
    FZ_CHECK(((uintptr_t)p & (align - 1)) == 0, "aligned block %p not aligned to %zu", p, align);
}

/* ---- the explicit allocators ------------------------------------------------- */
/* A size for an explicit allocator: the same shapes, but nothing impossible
 * and at most 1 MiB (a heap keeps big blocks on pages of their own). */
static size_t in_xsize(fz_t *f) {
    bool bad;
    size_t n = in_size(f, &bad);
    return bad ? 1 : n % ((size_t)1 << 20);
}

/* A pointer that is not an object start of the slot's allocator, and the
 * code that allocator must refuse it with. */
static void check_refused(int rc, int want, const char *what, const void *p) {
    FZ_CHECK(rc == want, "%s of %p: got %d (%s), expected %s", what, p, rc,
             mp_strerror(rc), mp_strerror(want));
}

static void op_heap(fz_t *f) {
    if (f->heap == NULL) {
        f->heap = mp_heap_create(in_u8(f) & 1 ? MP_FLAG_POISON : 0);
        FZ_CHECK(f->heap != NULL, "mp_heap_create failed");
    }
    slot_t *s = in_slot(f);
    uint8_t what = in_u8(f) % 6;
    if (what == 4 && s->kind != K_FREE) {            /* a bad free, refused */
        if (s->kind == K_HEAP && s->usable >= 2) {
            check_refused(mp_heap_free(f->heap, s->p + 1), MP_EINTERIOR, "mp_heap_free(interior)", s->p + 1);
        } else if (s->kind != K_HEAP) {
            check_refused(mp_heap_free(f->heap, s->p), MP_EFOREIGN, "mp_heap_free(foreign)", s->p);
        }
        check_prefix(s, s->usable, "after a refused heap free");
        return;
    }
    if (what == 5 && s->kind == K_HEAP) {            /* free, then a double free */
        unsigned char *p = s->p;
        bool large = s->usable > 32 * 1024;
        slot_release(f, s, false);
        int rc = mp_heap_free(f->heap, p);
        /* A large object's pages may have merged with free neighbours, and
         * then it is refused as foreign (mempool/explicit.h). */
        if (!(large && rc == MP_EFOREIGN))
            check_refused(rc, MP_EDOUBLEFREE, "mp_heap_free(again)", p);
        return;
    }
    size_t n = in_xsize(f);
    if (what == 2 && s->kind == K_HEAP) {            /* realloc */
        check_prefix(s, s->usable, "before its heap realloc");
        void *p = mp_heap_realloc(f->heap, s->p, n);
        if (n == 0) {
            FZ_CHECK(p == NULL, "mp_heap_realloc(p, 0) returned %p", p);
            s->kind = K_FREE;
            return;
        }
        FZ_CHECK(p != NULL, "mp_heap_realloc(%zu) failed", n);
        slot_t kept = *s;
        kept.p = p;
        check_prefix(&kept, s->req < n ? s->req : n, "after its heap realloc");
        s->kind = K_FREE;
        take(f, s, p, n, mp_heap_usable_size(f->heap, p), K_HEAP);
        check_align(p, 16, 16);
        return;
    }
    slot_release(f, s, false);
    void *p;
    if (what == 1) {
        size_t m = 1 + in_u8(f) % 4;
        p = mp_heap_calloc(f->heap, n, m);
        n *= m;
        FZ_CHECK(p != NULL, "mp_heap_calloc(%zu) failed", n);
        check_zero(p, n);
    } else {
        p = mp_heap_malloc(f->heap, n);
        FZ_CHECK(p != NULL, "mp_heap_malloc(%zu) failed", n);
    }
    check_align(p, 16, 16);
    take(f, s, p, n, mp_heap_usable_size(f->heap, p), K_HEAP);
}

static void op_arena(fz_t *f) {
    if (f->arena == NULL) {
        f->arena = mp_arena_create(in_u16(f), 0);
        FZ_CHECK(f->arena != NULL, "mp_arena_create failed");
    }
    uint8_t what = in_u8(f) % 8;
    if (what == 0) {                                 /* reset: all arena blocks go */
        for (int i = 0; i < NSLOT; i++) {
            if (f->slot[i].kind != K_ARENA) continue;
            check_prefix(&f->slot[i], f->slot[i].usable, "before an arena reset");
            f->slot[i].kind = K_FREE;
        }
        FZ_CHECK(mp_arena_reset(f->arena) == MP_OK, "mp_arena_reset failed");
        return;
    }
    slot_t *s = in_slot(f);
    size_t n = 1 + in_xsize(f);
    slot_release(f, s, false);
    size_t align = what == 1 ? (size_t)1 << (in_u8(f) % 16) : 16;
    void *p = what == 1 ? mp_arena_alloc_aligned(f->arena, n, align) : mp_arena_alloc(f->arena, n);
    FZ_CHECK(p != NULL, "mp_arena_alloc(%zu, align %zu) failed", n, align);
    check_align(p, n, align);
    take(f, s, p, n, n, K_ARENA);
}

/* Slab and pool: one object size per input, chosen by the first use. */
static void op_fixed(fz_t *f, bool pool) {
    if (pool ? f->pool == NULL : f->slab == NULL) {
        size_t size = 1 + in_u16(f) % 4096;
        unsigned flags = in_u8(f) & (MP_FLAG_CACHELINE | MP_FLAG_POISON);
        if (pool) {
            f->pool = mp_pool_create(size, 1 + in_u8(f) % 64, 0, 0, flags);
            f->pool_size = size;
        } else {
            f->slab = mp_slab_create(size, 0, 0, flags);
            f->slab_size = size;
        }
        FZ_CHECK(pool ? f->pool != NULL : f->slab != NULL, "create of a fixed-size allocator failed");
    }
    kind_t kind = pool ? K_POOL : K_SLAB;
    slot_t *s = in_slot(f);
    uint8_t what = in_u8(f) % 4;
    if (what == 0 && s->kind == kind) {              /* free, then a double free */
        unsigned char *p = s->p;
        slot_release(f, s, false);
        int rc = pool ? mp_pool_free(f->pool, p) : mp_slab_free(f->slab, p);
        check_refused(rc, MP_EDOUBLEFREE, pool ? "mp_pool_free(again)" : "mp_slab_free(again)", p);
        return;
    }
    if (what == 1 && s->kind != K_FREE) {            /* interior or foreign: refused */
        unsigned char *p = s->kind == kind ? s->p + 1 : s->p;
        int want = s->kind == kind ? MP_EINTERIOR : MP_EFOREIGN;
        if (s->kind == kind && s->usable < 2) return;
        int rc = pool ? mp_pool_free(f->pool, p) : mp_slab_free(f->slab, p);
        check_refused(rc, want, pool ? "mp_pool_free(bad)" : "mp_slab_free(bad)", p);
        check_prefix(s, s->usable, "after a refused free");
        return;
    }
    slot_release(f, s, false);
    void *p = pool ? mp_pool_alloc(f->pool) : mp_slab_alloc(f->slab);
    size_t size = pool ? f->pool_size : f->slab_size;
    FZ_CHECK(p != NULL, "fixed-size alloc of %zu bytes failed", size);
    check_align(p, 16, 16);
    take(f, s, p, size, size, kind);
}

static void op_misc(fz_t *f) {
    mp_stats_t st;
    /* mp_trim returns every free page, which the next blocks fault in
     * again (10 ms an input here), so it is the rarest. */
    switch (in_u8(f) % 32) {
    case 0: mp_trim(); break;
    case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: mp_thread_flush(); break;
    case 9: case 10: case 11: case 12: case 13: case 14: case 15: case 16:
        if (f->pool) FZ_CHECK(mp_pool_flush(f->pool) == MP_OK, "mp_pool_flush failed");
        break;
    default:
        mp_stats_get(&st);
        FZ_CHECK(st.committed <= st.mapped, "stats: committed %zu > mapped %zu",
                 st.committed, st.mapped);
        FZ_CHECK(st.free_dirty <= st.committed, "stats: free_dirty %zu > committed %zu",
                 st.free_dirty, st.committed);
        size_t large = 0;     /* what this input holds in large mp_* blocks */
        for (int i = 0; i < NSLOT; i++)
            if (f->slot[i].kind == K_MP && f->slot[i].usable > 256 * 1024) large += f->slot[i].usable;
        FZ_CHECK(st.large_in_use >= large, "stats: large_in_use %zu, but %zu held in large blocks",
                 st.large_in_use, large);
        break;
    }
}

/* ---- one input ----------------------------------------------------------------- */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static fz_t f;
    memset(&f, 0, sizeof f);
    f.d = data;
    f.n = size;
    mp_stats_t before, after;
    mp_stats_get(&before);

    while (f.i < f.n) {
        switch (in_u8(&f) % 16) {
        case 0: case 1: op_malloc(&f, 0); break;
        case 2: op_malloc(&f, 1); break;
        case 3: op_calloc(&f); break;
        case 4: case 5: op_realloc(&f); break;
        case 6: case 7: slot_release(&f, in_slot(&f), false); break;
        case 8: slot_release(&f, in_slot(&f), true); break;
        case 9: op_aligned(&f, false); break;
        case 10: op_aligned(&f, true); break;
        case 11: op_heap(&f); break;
        case 12: op_arena(&f); break;
        case 13: op_fixed(&f, false); break;
        case 14: op_fixed(&f, true); break;
        default: op_misc(&f); break;
        }
    }

    for (int i = 0; i < NSLOT; i++) slot_release(&f, &f.slot[i], false);
    mp_heap_destroy(f.heap);
    mp_arena_destroy(f.arena);
    mp_slab_destroy(f.slab);
    mp_pool_destroy(f.pool);
    FZ_CHECK(_mp_pageheap_check() == 0, "the page heap's invariants are broken");
    mp_stats_get(&after);
    FZ_CHECK(after.large_in_use == before.large_in_use,
             "large blocks: %zu bytes in use after the input, %zu before",
             after.large_in_use, before.large_in_use);
    return 0;
}
