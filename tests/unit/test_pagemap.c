/* test_pagemap.c - the page map (pagemap.c): the flat class map and the
 * radix span map, and the allocator without the class map. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "internal.h"
#include "mempool.h"

TEST(unmapped_is_class_zero) {
    int local;
    CHECK_EQ(mp_pagemap_class((uintptr_t)&local), 0);
    CHECK_EQ(mp_pagemap_class(0), 0);
    CHECK_EQ(mp_pagemap_class(UINTPTR_MAX), 0);            /* beyond 48 bits */
    CHECK_EQ(mp_pagemap_class((uintptr_t)1 << 48), 0);
    CHECK(mp_pagemap_span(UINTPTR_MAX) == NULL);
    CHECK(mp_pagemap_span((uintptr_t)&local) == NULL);
}

/* The class map reads zero wherever the page heap has mapped nothing: at
 * both ends of every 128 GiB range without a span leaf. */
TEST(class_map_reads_zero_outside_the_heap) {
    void *p = mp_malloc(64);                        /* the map exists now */
    mp_free(p);
    REQUIRE(_mp_cls_pages == (uintptr_t)1 << (MP_ADDR_BITS - MP_PAGE_SHIFT));
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

/* ---- without the class map ---------------------------------------------- */
/* Run in a child whose address space is capped below the class map's 32
 * GiB (MP_TEST_NO_CLASS_MAP set): the map cannot be reserved, every page
 * reads class 0, and every free takes the checked path, which must still
 * serve and validate. */
static int expect_abort(void (*bad)(void *), void *arg) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);      /* the report is expected */
        if (fd >= 0) dup2(fd, 2);
        bad(arg);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}
static void free_interior(void *p) { mp_free((char *)p + 16); }
static void free_twice(void *p) { mp_free(p); mp_free(p); }

static int no_class_map_child(void) {
    enum { N = 2000 };
    static unsigned char *p[N];
    static size_t n[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            n[i] = (size_t)1 + ((size_t)i * 7919 + (size_t)round * 104729) % (i % 10 ? 5000 : 300000);
            p[i] = mp_malloc(n[i]);
            if (p[i] == NULL) return 1;
            memset(p[i], (int)(i & 0xff), n[i]);
        }
        for (int i = 0; i < N; i += 2) mp_free(p[i]);
        for (int i = 1; i < N; i += 2) {
            CHECK(p[i][0] == (i & 0xff) && p[i][n[i] - 1] == (i & 0xff));
            mp_free(p[i]);
        }
    }
    CHECK_EQ(_mp_cls_pages, 0);                     /* it really ran without */
    void *q = mp_malloc(64);
    CHECK(expect_abort(free_interior, q));
    CHECK(expect_abort(free_twice, q));
    mp_free(q);
    return TEST_FAILED() ? 1 : 0;
}

__attribute__((unused)) static void limit_address_space(void) {
    struct rlimit rl = { (rlim_t)4 << 30, (rlim_t)4 << 30 };   /* 4 GiB */
    setrlimit(RLIMIT_AS, &rl);
}

TEST(works_without_the_class_map) {
#if defined(MP_SANITIZE)
    harness_skip("works_without_the_class_map", "a sanitizer needs more address space");
    return;
#else
    static const char *const env[] = { "MP_TEST_NO_CLASS_MAP=1", NULL };
    CHECK(harness_rerun(env, limit_address_space));
#endif
}

int main(void) {
    if (getenv("MP_TEST_NO_CLASS_MAP")) return no_class_map_child();
    RUN(unmapped_is_class_zero);
    RUN(class_map_reads_zero_outside_the_heap);
    RUN(set_and_get_across_leaves);
    RUN(beyond_48_bits_refused);
    RUN(works_without_the_class_map);
    return harness_summary();
}
