/* test_sizeclass.c - the size-class table's invariants (sizeclass.c), and
 * that the committed table is what its rule makes. */
#include "harness.h"
#include "internal.h"
#include "mempool.h"
#include "sizeclass_rule.h"

static void init(void) { mp_ensure_init(); }

/* src/sizeclass_table.h is generated and committed: a rule changed without
 * `make sizeclass-table`, or a hand edit of the table, fails here. */
TEST(table_is_the_rules) {
    static mp_sizeclass_rule_t r;
    mp_sizeclass_rule(&r);
    REQUIRE(r.nclasses == _mp_nclasses);
    for (int c = 0; c < MP_MAX_CLASSES; c++) {
        const mp_class_t *a = &_mp_classes[c], *b = &r.classes[c];
        CHECK_MSG(a->size == b->size && a->pages == b->pages && a->nobj == b->nobj &&
                  a->batch == b->batch && a->tc_limit == b->tc_limit &&
                  a->xfer_slots == b->xfer_slots && a->span_align == b->span_align &&
                  a->fast_free == b->fast_free && a->aligned_only == b->aligned_only &&
                  a->divc == b->divc && a->tplus == b->tplus,
                  "class %d differs from the rule: run make sizeclass-table", c);
        if (TEST_FAILED()) return;
    }
    CHECK(memcmp(_mp_cls8, r.cls8, sizeof r.cls8) == 0);
    CHECK(memcmp(_mp_cls16, r.cls16, sizeof r.cls16) == 0);
}

TEST(table_shape) {
    init();
    CHECK_GE(_mp_nclasses, 2);
    CHECK_LE(_mp_nclasses, MP_MAX_CLASSES);
    CHECK_LT(_mp_nclasses, MP_CLS_XCHUNK);       /* the chunk mark is no class */
    CHECK_EQ(_mp_classes[MP_CLS_XCHUNK].tplus, 0);
    CHECK_LE(_mp_nclasses, 256);                 /* the page map stores a byte */
    CHECK_EQ(_mp_classes[1].size, 8);
    CHECK_EQ(_mp_classes[_mp_nclasses - 1].size, MP_SMALL_MAX);
    for (int c = 2; c < _mp_nclasses; c++) {
        CHECK_GT(_mp_classes[c].size, _mp_classes[c - 1].size);
        CHECK_MSG(_mp_classes[c].size % 16 == 0, "class %d size %u not 16-aligned", c,
                  _mp_classes[c].size);
    }
}

/* The lookup gives the smallest class that fits, never an aligned-only
 * one. */
TEST(lookup_is_smallest_fit) {
    init();
    for (size_t n = 0; n <= MP_SMALL_MAX; n++) {
        unsigned c = mp_size_class(n);
        REQUIRE(c >= 1 && c < (unsigned)_mp_nclasses);
        CHECK_GE(_mp_classes[c].size, n);
        CHECK(!_mp_classes[c].aligned_only);
        unsigned b = c - 1;
        while (b > 1 && _mp_classes[b].aligned_only) b--;
        if (c > 1) CHECK_LT(_mp_classes[b].size, n == 0 ? 1 : n);
        if (TEST_FAILED()) return;
    }
}

/* Waste: at most 12.5% of the request above 128 B; below, at most the
 * 16-byte step (16-byte alignment makes 12.5% impossible at 65..120 B). */
TEST(internal_waste) {
    init();
    for (size_t n = 1; n <= MP_SMALL_MAX; n++) {
        size_t got = _mp_classes[mp_size_class(n)].size;
        if (n > 128) CHECK_MSG((got - n) * 8 <= n, "n=%zu class=%zu", n, got);
        else CHECK_MSG(got - n < 16, "n=%zu class=%zu", n, got);
        if (TEST_FAILED()) return;
    }
}

TEST(spans) {
    init();
    for (int c = 1; c < _mp_nclasses; c++) {
        const mp_class_t *k = &_mp_classes[c];
        size_t bytes = (size_t)k->pages * MP_PAGE_SIZE;
        CHECK_GE(k->nobj, 1);
        CHECK_EQ(k->nobj, bytes / k->size);
        size_t tail = bytes - (size_t)k->nobj * k->size;
        CHECK_LE(tail * 8, bytes);                                  /* tail <= 1/8 */
        if (k->fast_free) {
            /* tail <= 1/64 of the span wherever 16 pages allow it; a power
             * of two pages wherever one of those allows it (the span then
             * fills its alignment, no hole beside it); and no fewer pages of
             * the same kind would have done */
            CHECK_LE(k->pages, 16);
            size_t fewest = 0, fewest_pow2 = 0;
            for (size_t p = 1; p <= 16; p++) {
                size_t b = p * MP_PAGE_SIZE;
                if (b < k->size || b % k->size * 64 > b) continue;
                if (!fewest) fewest = p;
                if (!fewest_pow2 && mp_is_pow2(p)) fewest_pow2 = p;
            }
            if (fewest) CHECK_MSG(tail * 64 <= bytes, "class %u: tail %zu", k->size, tail);
            size_t want = fewest_pow2 ? fewest_pow2 : fewest;
            if (want) CHECK_MSG(k->pages == want, "class %u: %u pages, not %zu", k->size,
                                k->pages, want);
        }
        CHECK(mp_is_pow2(k->span_align));
        CHECK_EQ(k->fast_free, k->size <= MP_FASTFREE_MAX);
        if (k->fast_free) {
            CHECK_GE(k->span_align, bytes);
            CHECK_LT(k->span_align, 2 * bytes);
        } else {
            CHECK_EQ(k->span_align, MP_PAGE_SIZE);
        }
        CHECK(k->batch >= 1 && k->batch <= 32);
        CHECK_GE(k->tc_limit, 2 * k->batch);
    }
}

/* Between 1 KiB and 16 KiB the classes are 16p/n for n = 15..9 (rounded
 * down to 16) in each doubling [p, 2p]: n objects tile a 16p-byte span of
 * a power of two pages, with a tail under 16n bytes. */
TEST(tiling_classes) {
    init();
    for (size_t p = 1024; p < MP_FASTFREE_MAX / 2; p *= 2)
        for (size_t n = 15; n >= 9; n--) {
            size_t size = 16 * p / n / 16 * 16;
            unsigned c = mp_size_class(size);
            REQUIRE(c != 0);
            const mp_class_t *k = &_mp_classes[c];
            CHECK_MSG(k->size == size, "no class of %zu bytes (%u)", size, k->size);
            size_t bytes = (size_t)k->pages * MP_PAGE_SIZE;
            CHECK_MSG(bytes <= 16 * p && mp_is_pow2(k->pages), "class %zu: %u pages", size,
                      k->pages);
            CHECK_LT(bytes - (size_t)k->nobj * k->size, 16 * (bytes / size));
        }
}

/* The free fast path's check: (off & mask) * divc < tplus exactly for the
 * object offsets of a span.  Exhaustive over every offset of every class. */
TEST(divisibility_check_exhaustive) {
    init();
    for (int c = 1; c < _mp_nclasses; c++) {
        const mp_class_t *k = &_mp_classes[c];
        if (!k->fast_free) continue;
        for (uint64_t off = 0; off < k->span_align; off++) {
            bool fast = off * k->divc < k->tplus;
            bool truth = off % k->size == 0 && off / k->size < k->nobj;
            if (fast != truth) {
                CHECK_MSG(fast == truth, "class %d size %u off %llu: fast %d truth %d", c,
                          k->size, (unsigned long long)off, fast, truth);
                return;
            }
        }
    }
}

/* An aligned request gets an aligned class, and pays at most 12.5% over
 * its size rounded up to the alignment (the aligned-only classes are there
 * for this: without them aligned_alloc(64, 1089) took 1920 bytes).  Every
 * size for the alignments up to a page, a sample above. */
TEST(aligned_class) {
    init();
    for (size_t align = 16; align <= MP_MAX_ALIGN_SMALL; align *= 2)
        for (size_t n = align; n <= MP_SMALL_MAX; n += align <= MP_PAGE_SIZE ? 16 : n / 3) {
            unsigned c = _mp_size_class_aligned(n, align);
            if (align <= MP_PAGE_SIZE) REQUIRE(c != 0);  /* always possible */
            if (c == 0) continue;                        /* large path instead */
            const mp_class_t *k = &_mp_classes[c];
            CHECK_EQ(k->size % align, 0);
            CHECK_EQ(k->span_align % align, 0);
            CHECK_GE(k->size, n);
            size_t want = mp_align_up(n, align);
            CHECK_MSG((k->size - want) * 8 <= want, "aligned_alloc(%zu, %zu) takes class %u",
                      align, n, k->size);
            if (TEST_FAILED()) return;
        }
}

/* mp_aligned_alloc takes an object of that class itself: allocating by the
 * class's size would go through the size lookup, which skips aligned-only
 * classes, and only the first object of a span would be aligned. */
TEST(aligned_alloc_takes_the_class) {
    static void *p[40];
    for (size_t align = 32; align <= 4096; align *= 2)
        for (size_t n = 1000; n <= 17000; n += 701) {
            unsigned c = _mp_size_class_aligned(n, align);
            REQUIRE(c != 0);
            for (int i = 0; i < 40; i++) {
                p[i] = mp_aligned_alloc(align, n);
                REQUIRE(p[i] != NULL);
                CHECK_EQ((uintptr_t)p[i] % align, 0);
                CHECK_EQ(mp_usable_size(p[i]), _mp_classes[c].size);
            }
            for (int i = 0; i < 40; i++) mp_free(p[i]);
            if (TEST_FAILED()) return;
        }
}

/* With nothing cached (no block of the next class to borrow, tcache.c),
 * a malloc gets exactly its good size. */
TEST(good_size) {
    for (size_t n = 0; n < 600000; n += 97) {
        size_t g = mp_good_size(n);
        CHECK_GE(g, n);
        mp_thread_flush();
        void *p = mp_malloc(n);
        REQUIRE(p != NULL);
        CHECK_EQ(mp_usable_size(p), g);
        mp_free(p);
    }
}

int main(void) {
    RUN(table_is_the_rules);
    RUN(table_shape);
    RUN(lookup_is_smallest_fit);
    RUN(internal_waste);
    RUN(spans);
    RUN(tiling_classes);
    RUN(divisibility_check_exhaustive);
    RUN(aligned_class);
    RUN(aligned_alloc_takes_the_class);
    RUN(good_size);
    return harness_summary();
}
