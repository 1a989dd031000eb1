/* test_pagemap.c - the radix page map (pagemap.c). */
#include "harness.h"
#include "internal.h"

TEST(unmapped_is_class_zero) {
    int local;
    CHECK_EQ(mp_pagemap_class((uintptr_t)&local), 0);
    CHECK_EQ(mp_pagemap_class(0), 0);
    CHECK_EQ(mp_pagemap_class(UINTPTR_MAX), 0);            /* beyond 48 bits */
    CHECK_EQ(mp_pagemap_class((uintptr_t)1 << 48), 0);
    CHECK(mp_pagemap_span(UINTPTR_MAX) == NULL);
    CHECK(mp_pagemap_span((uintptr_t)&local) == NULL);
}

/* Every root entry is biased by its index (pagemap.c): an entry with the
 * wrong bias would read outside the zero leaf, or a neighbour's bytes, at
 * the first or last page of its range. */
TEST(every_root_entry_reads_zero_at_both_ends) {
    uintptr_t leaf_bytes = (uintptr_t)MP_LEAF_LEN * MP_PAGE_SIZE;
    for (uintptr_t i = 0; i < MP_ROOT_LEN; i++) {
        if (_mp_span_root[i] != NULL) continue;   /* a real leaf: heap memory */
        CHECK_EQ(mp_pagemap_class(i * leaf_bytes), 0);
        CHECK_EQ(mp_pagemap_class(i * leaf_bytes + leaf_bytes - 1), 0);
    }
}

TEST(set_and_get_across_leaves) {
    /* Addresses around a leaf boundary (32 GiB) high in the address space:
     * the map only needs leaves, not the memory. */
    uintptr_t leaf_bytes = (uintptr_t)MP_LEAF_LEN * MP_PAGE_SIZE;
    uintptr_t base = 0x500000000000ull;             /* a multiple of leaf_bytes */
    REQUIRE(base % leaf_bytes == 0);
    uintptr_t start = base - 4 * MP_PAGE_SIZE;
    mp_lock(&_mp_pageheap_lock);
    bool ok = _mp_pagemap_ensure(start, 8);
    mp_unlock(&_mp_pageheap_lock);
    REQUIRE(ok);
    mp_span_t fake[8];
    for (int i = 0; i < 8; i++) _mp_pagemap_set_span(start + i * MP_PAGE_SIZE, &fake[i]);
    _mp_pagemap_set_class(start, 8, 42);
    for (int i = 0; i < 8; i++) {
        uintptr_t a = start + i * MP_PAGE_SIZE;
        CHECK(mp_pagemap_span(a) == &fake[i]);
        CHECK(mp_pagemap_span(a + MP_PAGE_SIZE - 1) == &fake[i]);
        CHECK_EQ(mp_pagemap_class(a + 123), 42);
    }
    CHECK_EQ(mp_pagemap_class(start - 1), 0);
    CHECK_EQ(mp_pagemap_class(start + 8 * MP_PAGE_SIZE), 0);
    _mp_pagemap_set_class(start, 8, 0);
    for (int i = 0; i < 8; i++) {
        _mp_pagemap_set_span(start + i * MP_PAGE_SIZE, NULL);
        CHECK_EQ(mp_pagemap_class(start + i * MP_PAGE_SIZE), 0);
    }
}

TEST(beyond_48_bits_refused) {
    mp_lock(&_mp_pageheap_lock);
    bool ok = _mp_pagemap_ensure(((uintptr_t)1 << 48) - MP_PAGE_SIZE, 2);
    mp_unlock(&_mp_pageheap_lock);
    CHECK(!ok);
}

int main(void) {
    RUN(unmapped_is_class_zero);
    RUN(every_root_entry_reads_zero_at_both_ends);
    RUN(set_and_get_across_leaves);
    RUN(beyond_48_bits_refused);
    return harness_summary();
}
