/*
 * override_cxx.c - every C++ operator new and delete, defined from C by
 * their mangled names: the drop-in layer's second file (override.c has the
 * C names).  Built out entirely with -DMP_SANITIZE, like override.c.
 *
 * C++ semantics without a C++ runtime dependency: a throwing operator new
 * that cannot allocate calls the installed new_handler and retries, then
 * throws std::bad_alloc through libstdc++'s std::__throw_bad_alloc.  A
 * nothrow new must turn a handler's bad_alloc into NULL: a catch C cannot
 * write, so it leaves that to libstdc++'s own nothrow operator, a try/catch
 * around ::operator new, which is ours again (GCC 9 and later).  This file
 * is compiled twice, because the two libraries reach libstdc++ differently:
 *
 *   - libmempool.so may be preloaded into C programs, which have no C++
 *     runtime: libstdc++ is referenced weakly, or looked up when it was
 *     loaded later (dlopen of a C++ library) or locally.  The nothrow forms
 *     are defined here, to be served even when a library binds them
 *     directly, and call libstdc++'s nothrow operator, found by name, as
 *     the catch.  Without one they return NULL without calling the handler,
 *     which could throw through a noexcept function (std::terminate).
 *
 *   - libmempool.a (-DMP_ARCHIVE): the linker takes this object only into a
 *     program that calls operator new or delete, a C++ program linking
 *     libstdc++.  Its references are strong, so that they pull
 *     std::get_new_handler and std::__throw_bad_alloc out of libstdc++.a
 *     (a weak reference pulls nothing: with -static-libstdc++, new aborted
 *     where it should throw).  The nothrow forms are left to libstdc++.a,
 *     whose catch is then linked in.
 *
 * A C program gets an abort with a message instead of an exception nobody
 * could catch.  Built with -fexceptions: a new_handler may throw through
 * cxx_new_fail.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include "internal.h"
#include "mempool.h"

#ifndef MP_SANITIZE

/* ABI definitions whose prototypes (C++ mangled names) no header gives. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"

#define MP_EXPORT __attribute__((visibility("default"), used))

typedef void (*mp_new_handler_t)(void);

#ifdef MP_ARCHIVE
extern mp_new_handler_t _ZSt15get_new_handlerv(void);
extern void _ZSt17__throw_bad_allocv(void) __attribute__((noreturn));
#define CXX_FN(fn) (&fn)
#else
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

/* A nothrow new whose allocation failed while a handler is installed:
 * libstdc++'s nothrow operator calls the handler and retries under its
 * catch. */
static void *cxx_nothrow_catch(size_t n, size_t align) {
    void *f = cxx_sym(align ? "_ZnwmSt11align_val_tRKSt9nothrow_t" : "_ZnwmRKSt9nothrow_t");
    if (f == NULL) return NULL;
    static const char tag = 0;   /* a std::nothrow_t stand-in: empty */
    return align ? ((void *(*)(size_t, size_t, const void *))f)(n, align, &tag)
                 : ((void *(*)(size_t, const void *))f)(n, &tag);
}
#endif

MP_COLD static void *cxx_new_fail(size_t n, size_t align, bool nothrow) {
    mp_new_handler_t (*get)(void) = CXX_FN(_ZSt15get_new_handlerv);
#ifndef MP_ARCHIVE
    if (nothrow) return get && get() ? cxx_nothrow_catch(n, align) : NULL;
#else
    (void)nothrow;
#endif
    for (;;) {
        mp_new_handler_t h = get ? get() : NULL;
        if (h == NULL) break;
        h();
        void *p = align ? mp_aligned_alloc(align, n) : mp_malloc(n);
        if (p) return p;
    }
    void (*thr)(void) = CXX_FN(_ZSt17__throw_bad_allocv);
    if (thr) thr();
    _mp_fatal("operator new: out of memory, no C++ runtime to throw", NULL);
}

static inline void *cxx_new(size_t n, bool nothrow) {
    void *p = mp_malloc(n);
    return MP_LIKELY(p != NULL) ? p : cxx_new_fail(n, 0, nothrow);
}
static inline void *cxx_new_aligned(size_t n, size_t a, bool nothrow) {
    void *p = mp_aligned_alloc(a, n);
    return MP_LIKELY(p != NULL) ? p : cxx_new_fail(n, a, nothrow);
}

/* new(size_t), new[](size_t) */
MP_EXPORT void *_Znwm(size_t n) { return cxx_new(n, false); }
MP_EXPORT void *_Znam(size_t n) { return cxx_new(n, false); }
/* new(size_t, align_val_t), new[] */
MP_EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t a) { return cxx_new_aligned(n, a, false); }
MP_EXPORT void *_ZnamSt11align_val_t(size_t n, size_t a) { return cxx_new_aligned(n, a, false); }

#ifndef MP_ARCHIVE
/* new(size_t, nothrow_t const&), new[] */
MP_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *t) { (void)t; return cxx_new(n, true); }
MP_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *t) { (void)t; return cxx_new(n, true); }
/* new(size_t, align_val_t, nothrow_t const&), new[] */
MP_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) {
    (void)t; return cxx_new_aligned(n, a, true);
}
MP_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) {
    (void)t; return cxx_new_aligned(n, a, true);
}
#endif

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
/* aligned sized delete: a plain free, as free_aligned_sized in override.c */
MP_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; mp_free(p); }
MP_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; mp_free(p); }

#endif /* MP_SANITIZE */
