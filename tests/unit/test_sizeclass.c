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
                  a->fast_free == b->fast_free && a->divc == b->divc && a->tplus == b->tplus,
                  "class %d differs from the rule: run make sizeclass-table", c);
        if (TEST_FAILED()) return;
    }
    CHECK(memcmp(_mp_cls8, r.cls8, sizeof r.cls8) == 0);
    CHECK(memcmp(_mp_cls128, r.cls128, sizeof r.cls128) == 0);
}

TEST(table_shape) {
    init();
    CHECK_GE(_mp_nclasses, 2);
    CHECK_LE(_mp_nclasses, MP_MAX_CLASSES);
    CHECK_LE(_mp_nclasses, 256);                 /* the page map stores a byte */
    CHECK_EQ(_mp_classes[1].size, 8);
    CHECK_EQ(_mp_classes[_mp_nclasses - 1].size, MP_SMALL_MAX);
    for (int c = 2; c < _mp_nclasses; c++) {
        CHECK_GT(_mp_classes[c].size, _mp_classes[c - 1].size);
        CHECK_MSG(_mp_classes[c].size % 16 == 0, "class %d size %u not 16-aligned", c,
                  _mp_classes[c].size);
    }
}

TEST(lookup_is_smallest_fit) {
    init();
    for (size_t n = 0; n <= MP_SMALL_MAX; n++) {
        unsigned c = mp_size_class(n);
        REQUIRE(c >= 1 && c < (unsigned)_mp_nclasses);
        CHECK_GE(_mp_classes[c].size, n);
        if (c > 1) CHECK_LT(_mp_classes[c - 1].size, n == 0 ? 1 : n);
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
            /* tail <= 1/64 of the span wherever 16 pages allow it, and no
             * fewer pages would have done */
            CHECK_LE(k->pages, 16);
            bool reachable = false;
            for (size_t p = 1; p <= 16; p++) {
                size_t b = p * MP_PAGE_SIZE;
                if (b >= k->size && b % k->size * 64 <= b) {
                    reachable = true;
                    CHECK_MSG(p >= k->pages, "class %u: %zu pages would do", k->size, p);
                    break;
                }
            }
            if (reachable) CHECK_MSG(tail * 64 <= bytes, "class %u: tail %zu", k->size, tail);
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

TEST(aligned_class) {
    init();
    for (size_t align = 16; align <= MP_MAX_ALIGN_SMALL; align *= 2)
        for (size_t n = 1; n <= MP_SMALL_MAX; n = n * 3 + 1) {
            unsigned c = _mp_size_class_aligned(n, align);
            if (align <= MP_PAGE_SIZE) REQUIRE(c != 0);  /* always possible */
            if (c == 0) continue;                        /* large path instead */
            CHECK_EQ(_mp_classes[c].size % align, 0);
            CHECK_EQ(_mp_classes[c].span_align % align, 0);
            CHECK_GE(_mp_classes[c].size, n);
        }
}

TEST(good_size) {
    for (size_t n = 0; n < 600000; n += 97) {
        size_t g = mp_good_size(n);
        CHECK_GE(g, n);
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
    RUN(divisibility_check_exhaustive);
    RUN(aligned_class);
    RUN(good_size);
    return harness_summary();
}
