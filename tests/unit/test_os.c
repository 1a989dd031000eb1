/* test_os.c - the OS layer: aligned regions, decommit, page size (os.c). */
#include <string.h>
#include <unistd.h>
#include "harness.h"
#include "internal.h"
#include "mempool.h"

TEST(page_size) {
    mp_ensure_init();
    CHECK_EQ(_mp_os_page, (size_t)sysconf(_SC_PAGESIZE));
    CHECK(mp_is_pow2(_mp_os_page));
}

TEST(aligned_regions) {
    for (size_t align = _mp_os_page; align <= ((size_t)128 << 20); align *= 4) {
        size_t size = 3 * MP_PAGE_SIZE;
        char *p = _mp_os_alloc(size, align);
        REQUIRE(p != NULL);
        CHECK_EQ((uintptr_t)p % align, 0);
        CHECK_EQ(p[0], 0);
        CHECK_EQ(p[size - 1], 0);
        memset(p, 7, size);
        _mp_os_free(p, size);
    }
}

TEST(decommit_zeroes) {
    size_t size = 64 * MP_PAGE_SIZE;
    char *p = _mp_os_alloc(size, MP_PAGE_SIZE);
    REQUIRE(p != NULL);
    memset(p, 9, size);
    CHECK(_mp_os_decommit(p, size));
    CHECK_EQ(p[0], 0);
    CHECK_EQ(p[size / 2], 0);
    /* A range smaller than an OS page, not aligned to one, is refused. */
    CHECK(!_mp_os_decommit(p + 1, 16));
    _mp_os_free(p, size);
}

TEST(fatal_message_format) {
    char b[40];
    size_t n = _mp_fmt_hex(b, 0x7ffd1234abcdull);
    b[n] = 0;
    CHECK(strcmp(b, "0x7ffd1234abcd") == 0);
    n = _mp_fmt_u64(b, 18446744073709551615ull);
    b[n] = 0;
    CHECK(strcmp(b, "18446744073709551615") == 0);
}

int main(void) {
    RUN(page_size);
    RUN(aligned_regions);
    RUN(decommit_zeroes);
    RUN(fatal_message_format);
    return harness_summary();
}
