/*
 * x_common.h - what the explicit-allocator benchmarks (bench/x_*.c) share:
 * a clock, and loading mempool with dlopen so that its mp_ calls go through
 * pointers (as calls into a shared library go through the PLT) while the
 * process's malloc stays its own (glibc, or what LD_PRELOAD puts there).
 *
 * Define X_NAME (the program's name, for messages) before including.
 *   x_now()            monotonic seconds
 *   x_open_mempool()   dlopen MEMPOOL_SO, default <dir of this program>/../libmempool.so
 *   X_LOAD(lib, fn, name)  fn = the symbol `name` of lib, or exit 2
 */
#ifndef MP_X_COMMON_H
#define MP_X_COMMON_H

#ifndef X_NAME
#error "define X_NAME before including x_common.h"
#endif

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline double x_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline void *x_sym(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (p == NULL) {
        fprintf(stderr, X_NAME ": %s not found in mempool: %s\n", name, dlerror());
        exit(2);
    }
    return p;
}

#define X_LOAD(lib, fn, name) ((fn) = (__typeof__(fn))x_sym((lib), (name)))

static inline void *x_open_mempool(void) {
    char buf[PATH_MAX];
    const char *so = getenv("MEMPOOL_SO");
    if (so == NULL) {
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 32);
        if (n <= 0) {
            fprintf(stderr, X_NAME ": cannot find myself; set MEMPOOL_SO\n");
            exit(2);
        }
        buf[n] = 0;
        char *slash = strrchr(buf, '/');
        strcpy(slash ? slash + 1 : buf, "../libmempool.so");
        so = buf;
    }
    void *lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, X_NAME ": %s\n", dlerror());
        exit(2);
    }
    return lib;
}

#endif
