/*
 * override.c - mempool as the C library's allocator: the rest of the malloc
 * family under its standard names (malloc.c aliases the core five) and
 * glibc's internal __libc_* names.  The C++ operators are in override_cxx.c.
 *
 * Built out entirely with -DMP_SANITIZE: a sanitizer brings its own malloc.
 *
 * Linked statically, this object must come with malloc.o, or a shared
 * library's memalign() would be glibc's and its free() ours: malloc.c
 * refers to memalign for that reason.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"
#include "mempool.h"

#ifndef MP_SANITIZE

/* These are ABI definitions whose prototypes live in headers we do not
 * include (C23's free_sized). */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"

#define MP_EXPORT __attribute__((visibility("default"), used))

/* ---- the rest of the malloc family ----------------------------------------- */
MP_EXPORT void *memalign(size_t align, size_t n) {
    /* glibc rounds a non-power-of-two alignment up instead of failing. */
    if (align <= 1) return mp_malloc(n);
    if (!mp_is_pow2(align)) {
        /* Above 2^63 there is no power of two to round to: glibc's EINVAL.
         * Below, the rounded alignment fails later with ENOMEM, as there. */
        if (align > SIZE_MAX / 2 + 1) { errno = EINVAL; return NULL; }
        size_t a = 1;
        while (a < align) a <<= 1;
        align = a;
    }
    return mp_aligned_alloc(align, n);
}

MP_EXPORT void *valloc(size_t n) { return mp_aligned_alloc((size_t)sysconf(_SC_PAGESIZE), n); }

MP_EXPORT void *pvalloc(size_t n) {
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    size_t r = (n + ps - 1) & ~(ps - 1);
    if (r < n) { errno = ENOMEM; return NULL; }
    return mp_aligned_alloc(ps, r ? r : ps);
}

MP_EXPORT void *reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) { errno = ENOMEM; return NULL; }
    return mp_realloc(p, total);
}

/* C23 */
MP_EXPORT void free_sized(void *p, size_t size) { mp_free_sized(p, size); }
/* An aligned block may sit in a bigger class than its size names: the size
 * cannot be checked against the class, so this is a plain free. */
MP_EXPORT void free_aligned_sized(void *p, size_t align, size_t size) {
    (void)align;
    (void)size;
    mp_free(p);
}

MP_EXPORT int malloc_trim(size_t pad) {
    (void)pad;
    return mp_trim() > 0;
}

MP_EXPORT struct mallinfo2 mallinfo2(void) {
    mp_stats_t st;
    mp_stats_get(&st);
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = st.mapped;
    mi.hblkhd = st.large_in_use;
    mi.uordblks = st.in_use;
    mi.fordblks = st.committed > st.in_use ? st.committed - st.in_use : 0;
    mi.keepcost = st.free_dirty;
    return mi;
}

MP_EXPORT struct mallinfo mallinfo(void) {
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = (int)m2.arena;
    mi.hblkhd = (int)m2.hblkhd;
    mi.uordblks = (int)m2.uordblks;
    mi.fordblks = (int)m2.fordblks;
    mi.keepcost = (int)m2.keepcost;
    return mi;
}

MP_EXPORT int mallopt(int param, int value) { (void)param; (void)value; return 1; }
MP_EXPORT int malloc_info(int options, FILE *fp) { (void)options; (void)fp; errno = ENOSYS; return -1; }
MP_EXPORT void malloc_stats(void) { mp_stats_print(2); }

/* glibc's internal names for the functions defined here (the core ones
 * are aliased in malloc.c, where their targets live). */
MP_EXPORT void *__libc_memalign(size_t a, size_t n) { return memalign(a, n); }
MP_EXPORT void *__libc_valloc(size_t n) { return valloc(n); }
MP_EXPORT void *__libc_pvalloc(size_t n) { return pvalloc(n); }

#endif /* MP_SANITIZE */
