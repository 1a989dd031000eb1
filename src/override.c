/*
 * override.c - mempool as the C library's allocator: the rest of the malloc
 * family under its standard names (malloc.c aliases the core five), glibc's
 * internal __libc_* names, and every C++ operator new/delete, defined here
 * from C by their mangled names.
 *
 * Built out entirely with -DMP_SANITIZE: a sanitizer brings its own malloc.
 *
 * C++ semantics without a C++ runtime dependency: a throwing operator new
 * that cannot allocate calls the installed new_handler and retries, and
 * throws std::bad_alloc through libstdc++'s std::__throw_bad_alloc, both
 * referenced weakly, or looked up in a libstdc++ loaded later - a C program
 * has no C++ runtime and no handler, and gets an abort instead of an
 * exception nobody could catch.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"
#include "mempool.h"

#ifndef MP_SANITIZE

/* These are ABI definitions whose prototypes live in headers we do not
 * include (C23's free_sized, the C++ mangled names). */
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

/* ---- C++ operator new / delete -------------------------------------------- */
typedef void (*mp_new_handler_t)(void);
extern mp_new_handler_t _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

/* libstdc++'s symbol `name`, found when the weak reference was not bound:
 * libstdc++ loaded after us (dlopen of a C++ library by a C program) or not
 * in the global scope (RTLD_LOCAL).  NULL without a shared libstdc++. */
static void *cxx_sym(const char *name) {
    void *h = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD);
    return h ? dlsym(h, name) : NULL;
}

/* The weak reference if it was bound, else the symbol looked up. */
#define CXX_FN(weak) ((__typeof__(&weak))((weak) ? (void *)(weak) : cxx_sym(#weak)))

MP_COLD static void *cxx_new_fail(size_t n, size_t align, bool nothrow) {
    mp_new_handler_t (*get)(void) = CXX_FN(_ZSt15get_new_handlerv);
    /* A handler may throw bad_alloc, which a nothrow new must turn into
     * NULL: a catch C cannot write.  libstdc++'s own nothrow operator is
     * that catch around ::operator new, which is ours again (throwing). */
    if (nothrow && get && get()) {
        void *f = cxx_sym(align ? "_ZnwmSt11align_val_tRKSt9nothrow_t" : "_ZnwmRKSt9nothrow_t");
        if (f) {
            static const char tag = 0;   /* a std::nothrow_t stand-in: empty */
            return align ? ((void *(*)(size_t, size_t, const void *))f)(n, align, &tag)
                         : ((void *(*)(size_t, const void *))f)(n, &tag);
        }
    }
    for (;;) {
        mp_new_handler_t h = get ? get() : NULL;
        if (h == NULL) break;
        h();
        void *p = align ? mp_aligned_alloc(align, n) : mp_malloc(n);
        if (p) return p;
    }
    if (nothrow) return NULL;
    void (*thr)(void) = CXX_FN(_ZSt17__throw_bad_allocv);
    if (thr) thr();
    _mp_fatal("operator new: out of memory, no C++ runtime to throw", NULL);
}

static inline void *cxx_new(size_t n) {
    void *p = mp_malloc(n);
    return MP_LIKELY(p != NULL) ? p : cxx_new_fail(n, 0, false);
}
static inline void *cxx_new_nothrow(size_t n) {
    void *p = mp_malloc(n);
    return MP_LIKELY(p != NULL) ? p : cxx_new_fail(n, 0, true);
}
static inline void *cxx_new_aligned(size_t n, size_t a) {
    void *p = mp_aligned_alloc(a, n);
    return MP_LIKELY(p != NULL) ? p : cxx_new_fail(n, a, false);
}
static inline void *cxx_new_aligned_nothrow(size_t n, size_t a) {
    void *p = mp_aligned_alloc(a, n);
    return MP_LIKELY(p != NULL) ? p : cxx_new_fail(n, a, true);
}

/* new(size_t), new[](size_t) */
MP_EXPORT void *_Znwm(size_t n) { return cxx_new(n); }
MP_EXPORT void *_Znam(size_t n) { return cxx_new(n); }
/* new(size_t, nothrow_t const&), new[] */
MP_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *t) { (void)t; return cxx_new_nothrow(n); }
MP_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *t) { (void)t; return cxx_new_nothrow(n); }
/* new(size_t, align_val_t), new[] */
MP_EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t a) { return cxx_new_aligned(n, a); }
MP_EXPORT void *_ZnamSt11align_val_t(size_t n, size_t a) { return cxx_new_aligned(n, a); }
/* new(size_t, align_val_t, nothrow_t const&), new[] */
MP_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) {
    (void)t; return cxx_new_aligned_nothrow(n, a);
}
MP_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) {
    (void)t; return cxx_new_aligned_nothrow(n, a);
}

/* delete(void*), delete[] and the nothrow and aligned forms */
MP_EXPORT void _ZdlPv(void *p) { mp_free(p); }
MP_EXPORT void _ZdaPv(void *p) { mp_free(p); }
MP_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *t) { (void)t; mp_free(p); }
MP_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *t) { (void)t; mp_free(p); }
MP_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) { (void)a; mp_free(p); }
MP_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) { (void)a; mp_free(p); }
MP_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) {
    (void)a; (void)t; mp_free(p);
}
MP_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) {
    (void)a; (void)t; mp_free(p);
}
/* sized delete: the size goes to the sized free */
MP_EXPORT void _ZdlPvm(void *p, size_t n) { mp_free_sized(p, n); }
MP_EXPORT void _ZdaPvm(void *p, size_t n) { mp_free_sized(p, n); }
/* aligned sized delete: plain free, as free_aligned_sized above */
MP_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; mp_free(p); }
MP_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; mp_free(p); }

#endif /* MP_SANITIZE */
