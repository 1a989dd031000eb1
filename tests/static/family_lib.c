/* family_lib.c - a shared library that allocates with the malloc family's
 * less common names, for tests/static/family.c.  Its references bind to the
 * program's definitions: mempool's, when the program links libmempool.a. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>

void *family_lib_alloc(int which, size_t n);

void *family_lib_alloc(int which, size_t n) {
    void *p = NULL;
    switch (which) {
    case 0: return memalign(64, n);
    case 1: return valloc(n);
    case 2: return pvalloc(n);
    case 3: return aligned_alloc(256, n);
    case 4: return posix_memalign(&p, 128, n) == 0 ? p : NULL;
    case 5: return reallocarray(NULL, 3, n);
    default: return NULL;
    }
}
