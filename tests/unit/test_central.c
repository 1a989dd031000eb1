/* test_central.c - central free lists: take, give, span life cycle (central.c). */
#include <string.h>
#include "harness.h"
#include "internal.h"
#include "mempool.h"

static size_t list_len(void *h) {
    size_t n = 0;
    for (; h; h = *(void **)h) n++;
    return n;
}

TEST(take_gives_distinct_objects_of_the_class) {
    mp_ensure_init();
    for (unsigned c = 1; c < (unsigned)_mp_nclasses; c += 7) {
        const mp_class_t *k = &_mp_classes[c];
        void *head;
        uint32_t want = k->batch;
        uint32_t got = _mp_central_take(0, c, want, &head);
        CHECK_EQ(got, want);
        CHECK_EQ(list_len(head), got);
        for (void *o = head; o; o = *(void **)o) {
            CHECK_EQ(mp_pagemap_class((uintptr_t)o), k->fast_free ? c : 0);
            mp_span_t *s = mp_pagemap_span((uintptr_t)o);
            REQUIRE(s != NULL);
            CHECK_EQ(s->state, MP_SPAN_SMALL);
            CHECK_EQ(((uintptr_t)o - s->start) % k->size, 0);
            for (void *q = *(void **)o; q; q = *(void **)q) CHECK(q != o);
        }
        _mp_central_give(0, c, head, got);
    }
}

/* Objects given back one at a time return to their spans; an emptied span
 * (beyond the one spare kept per class) goes back to the page heap. */
TEST(spans_return_to_page_heap) {
    unsigned c = mp_size_class(4096);
    const mp_class_t *k = &_mp_classes[c];
    enum { N = 2000 };
    static void *objs[N];
    size_t got = 0;
    while (got < N) {
        void *h;
        uint32_t n = _mp_central_take(0, c, 1, &h);
        REQUIRE(n == 1);
        objs[got++] = h;
    }
    mp_pageheap_stats_t before;
    _mp_pageheap_stats(&before);
    CHECK_GE(before.small_spans_bytes, (size_t)N / k->nobj * k->pages * MP_PAGE_SIZE);
    for (size_t i = 0; i < N; i++) {
        *(void **)objs[i] = NULL;
        _mp_central_give(0, c, objs[i], 1);
    }
    mp_pageheap_stats_t after;
    _mp_pageheap_stats(&after);
    CHECK_LE(after.small_spans_bytes + (size_t)(N / k->nobj - 2) * k->pages * MP_PAGE_SIZE,
             before.small_spans_bytes);
    CHECK_EQ(_mp_pageheap_check(), 0);
}

/* A full batch is kept whole in a transfer slot and handed out whole. */
TEST(transfer_slots) {
    unsigned c = mp_size_class(64);
    const mp_class_t *k = &_mp_classes[c];
    void *h;
    uint32_t n = _mp_central_take(0, c, k->batch, &h);
    REQUIRE(n == k->batch);
    _mp_central_give(0, c, h, n);
    void *h2;
    uint32_t n2 = _mp_central_take(0, c, k->batch, &h2);
    CHECK_EQ(n2, n);
    CHECK(h2 == h);            /* the same list came back */
    _mp_central_give(0, c, h2, n2);
}

int main(void) {
    RUN(take_gives_distinct_objects_of_the_class);
    RUN(spans_return_to_page_heap);
    RUN(transfer_slots);
    return harness_summary();
}
