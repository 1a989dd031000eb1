/*
 * x_heap.c - releasing a million objects: mp_heap_destroy against freeing
 * them one by one.
 *
 *   x_heap <mode> <objects> <min size> <max size>
 *     destroy   allocate in a heap, then mp_heap_destroy (timed)
 *     heapfree  allocate in a heap, then mp_heap_free of each (timed)
 *     mpfree    mp_malloc, then mp_free of each (timed)
 *     free      the process's malloc, then free of each (timed)
 *
 * Sizes are uniform in [min, max] (a fixed xorshift sequence); objects are
 * freed in allocation order (the order that suits a free list best), and
 * each has its first word written.  mempool is dlopen'ed as in x_fixed.c.
 *   x_heap mode=destroy objects=... release_ms=... alloc_ms=... ns=...
 * ns: nanoseconds of release per object.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <mempool/explicit.h>
#define X_NAME "x_heap"
#include "x_common.h"

static __typeof__(&mp_heap_create) heap_create_fn;
static __typeof__(&mp_heap_malloc) heap_malloc_fn;
static __typeof__(&mp_heap_free) heap_free_fn;
static __typeof__(&mp_heap_destroy) heap_destroy_fn;
static __typeof__(&mp_malloc) mp_malloc_fn;
static __typeof__(&mp_free) mp_free_fn;

static void load_mempool(void) {
    void *lib = x_open_mempool();
    X_LOAD(lib, heap_create_fn, "mp_heap_create");
    X_LOAD(lib, heap_malloc_fn, "mp_heap_malloc");
    X_LOAD(lib, heap_free_fn, "mp_heap_free");
    X_LOAD(lib, heap_destroy_fn, "mp_heap_destroy");
    X_LOAD(lib, mp_malloc_fn, "mp_malloc");
    X_LOAD(lib, mp_free_fn, "mp_free");
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: x_heap destroy|heapfree|mpfree|free <objects> <min> <max>\n");
        return 2;
    }
    const char *mode = argv[1];
    long n = atol(argv[2]);
    size_t lo = (size_t)atol(argv[3]), hi = (size_t)atol(argv[4]);
    int m = !strcmp(mode, "destroy") ? 0 : !strcmp(mode, "heapfree") ? 1
          : !strcmp(mode, "mpfree") ? 2 : !strcmp(mode, "free") ? 3 : -1;
    if (m < 0 || n < 1 || lo < 8 || hi < lo) {
        fprintf(stderr, "x_heap: bad arguments\n");
        return 2;
    }
    load_mempool();
    void **ptr = malloc((size_t)n * sizeof *ptr);
    size_t *sz = malloc((size_t)n * sizeof *sz);
    if (ptr == NULL || sz == NULL) return 1;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (long i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sz[i] = lo + (size_t)(x % (hi - lo + 1));
    }
    mp_heap_t *h = m <= 1 ? heap_create_fn(0) : NULL;
    if (m <= 1 && h == NULL) return 1;
    double t0 = x_now();
    for (long i = 0; i < n; i++) {
        void *p = m <= 1 ? heap_malloc_fn(h, sz[i]) : m == 2 ? mp_malloc_fn(sz[i]) : malloc(sz[i]);
        if (p == NULL) {
            fprintf(stderr, "x_heap: allocation failed\n");
            return 1;
        }
        *(volatile uint64_t *)p = (uint64_t)i;
        ptr[i] = p;
    }
    double t1 = x_now();
    long bad = 0;
    switch (m) {
    case 0: heap_destroy_fn(h); break;
    case 1: for (long i = 0; i < n; i++) bad += heap_free_fn(h, ptr[i]) != 0; break;
    case 2: for (long i = 0; i < n; i++) mp_free_fn(ptr[i]); break;
    default: for (long i = 0; i < n; i++) free(ptr[i]); break;
    }
    double t2 = x_now();
    if (m == 1) heap_destroy_fn(h);
    if (bad) {
        fprintf(stderr, "x_heap: %ld frees refused\n", bad);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("x_heap mode=%s objects=%ld size=%zu-%zu release_ms=%.3f alloc_ms=%.3f ns=%.3f maxrss_kb=%ld\n",
           mode, n, lo, hi, (t2 - t1) * 1e3, (t1 - t0) * 1e3, (t2 - t1) / (double)n * 1e9,
           ru.ru_maxrss);
    free(ptr);
    free(sz);
    return 0;
}
