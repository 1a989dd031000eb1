/*
 * x_arena.c - a parse-like workload: many small objects (nodes, tokens,
 * strings) allocated one after another, linked into a list, then all freed
 * at once; repeated for a number of rounds.
 *
 *   x_arena <kind> <objects per round> <rounds>
 *     kind   arena   mp_arena_alloc, then mp_arena_reset
 *            heap    mp_heap_malloc into a fresh heap, then mp_heap_destroy
 *            mp      mp_malloc, then mp_free of each object (walking the list)
 *            malloc  the process's malloc/free (glibc, or LD_PRELOAD's)
 *
 * Sizes (fixed sequence, xorshift): 60% 16-32 B nodes, 30% 16-63 B strings,
 * 9% 64-255 B, 1% 256-1023 B.  Each object gets its first 16 bytes written
 * (a link and its length).  mempool is dlopen'ed as in x_fixed.c.
 *   x_arena kind=arena objects=... rounds=... ns=... mops=... time_s=...
 * ns: nanoseconds per object, allocation and release together.
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
#define X_NAME "x_arena"
#include "x_common.h"

static __typeof__(&mp_arena_create) arena_create_fn;
static __typeof__(&mp_arena_alloc) arena_alloc_fn;
static __typeof__(&mp_arena_reset) arena_reset_fn;
static __typeof__(&mp_heap_create) heap_create_fn;
static __typeof__(&mp_heap_malloc) heap_malloc_fn;
static __typeof__(&mp_heap_destroy) heap_destroy_fn;
static __typeof__(&mp_malloc) mp_malloc_fn;
static __typeof__(&mp_free) mp_free_fn;

static void load_mempool(void) {
    void *lib = x_open_mempool();
    X_LOAD(lib, arena_create_fn, "mp_arena_create");
    X_LOAD(lib, arena_alloc_fn, "mp_arena_alloc");
    X_LOAD(lib, arena_reset_fn, "mp_arena_reset");
    X_LOAD(lib, heap_create_fn, "mp_heap_create");
    X_LOAD(lib, heap_malloc_fn, "mp_heap_malloc");
    X_LOAD(lib, heap_destroy_fn, "mp_heap_destroy");
    X_LOAD(lib, mp_malloc_fn, "mp_malloc");
    X_LOAD(lib, mp_free_fn, "mp_free");
}

struct node {
    struct node *next;
    size_t len;
};

#define BUILD(ALLOC)                                                        \
    do {                                                                    \
        head = NULL;                                                        \
        for (long i = 0; i < n; i++) {                                      \
            struct node *x_ = ALLOC;                                        \
            if (x_ == NULL) return 1;                                       \
            x_->next = head;                                                \
            x_->len = sizes[i];                                             \
            head = x_;                                                      \
        }                                                                   \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: x_arena arena|heap|mp|malloc <objects per round> <rounds>\n");
        return 2;
    }
    const char *kind = argv[1];
    long n = atol(argv[2]), rounds = atol(argv[3]);
    int k = !strcmp(kind, "arena") ? 0 : !strcmp(kind, "heap") ? 1 : !strcmp(kind, "mp") ? 2
          : !strcmp(kind, "malloc") ? 3 : -1;
    if (k < 0 || n < 1 || rounds < 1) {
        fprintf(stderr, "x_arena: bad arguments\n");
        return 2;
    }
    load_mempool();
    uint32_t *sizes = malloc((size_t)n * sizeof *sizes);
    if (sizes == NULL) return 1;
    uint64_t x = 88172645463325252ull;
    for (long i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned r = (unsigned)(x % 100), v = (unsigned)(x >> 32);
        sizes[i] = r < 60 ? 16 + (v % 3) * 8 : r < 90 ? 16 + v % 48 : r < 99 ? 64 + v % 192
                 : 256 + v % 768;
    }
    mp_arena_t *arena = k == 0 ? arena_create_fn(0, 0) : NULL;
    if (k == 0 && arena == NULL) {
        perror("x_arena: mp_arena_create");
        return 1;
    }
    struct node *head;
    double best = 1e300, total = 0;
    for (long r = -1; r < rounds; r++) {           /* round -1 warms up */
        double t0 = x_now();
        switch (k) {
        case 0:
            BUILD(arena_alloc_fn(arena, sizes[i]));
            arena_reset_fn(arena);
            break;
        case 1: {
            mp_heap_t *h = heap_create_fn(0);
            if (h == NULL) return 1;
            BUILD(heap_malloc_fn(h, sizes[i]));
            heap_destroy_fn(h);
            break;
        }
        case 2:
            BUILD(mp_malloc_fn(sizes[i]));
            while (head) {
                struct node *nx = head->next;
                mp_free_fn(head);
                head = nx;
            }
            break;
        default:
            BUILD(malloc(sizes[i]));
            while (head) {
                struct node *nx = head->next;
                free(head);
                head = nx;
            }
            break;
        }
        double t = x_now() - t0;
        if (r >= 0) {
            total += t;
            if (t < best) best = t;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("x_arena kind=%s objects=%ld rounds=%ld ns=%.3f best_ns=%.3f mops=%.2f time_s=%.4f maxrss_kb=%ld\n",
           kind, n, rounds, total / (double)(n * rounds) * 1e9, best / (double)n * 1e9,
           (double)(n * rounds) / total / 1e6, total, ru.ru_maxrss);
    free(sizes);
    return 0;
}
