/* family.c - linked statically with libmempool.a, this program calls only
 * malloc and free itself; a shared library (family_lib.c) allocates with
 * memalign, valloc, pvalloc, aligned_alloc, posix_memalign and reallocarray,
 * and the program frees what it gets.  Each of those must be mempool's: one
 * left to glibc (the archive member that defines it not linked in) hands
 * out a block mempool's free() rejects ("free of a pointer not from
 * mempool", abort).  Exit 0 when every block is mempool's and freed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "mempool.h"

void *family_lib_alloc(int which, size_t n);

int main(void) {
    static const char *const names[] = {
        "memalign", "valloc", "pvalloc", "aligned_alloc", "posix_memalign", "reallocarray",
    };
    int fails = 0;
    void *own = malloc(100);
    free(own);
    for (int which = 0; which < 6; which++) {
        for (size_t n = 1; n <= (1u << 20); n *= 7) {
            void *p = family_lib_alloc(which, n);
            if (p == NULL) {
                printf("FAIL %s(%zu) returned NULL\n", names[which], n);
                fails++;
                continue;
            }
            /* mempool's own view of the block: at least n bytes usable */
            if (mp_usable_size(p) < n) {
                printf("FAIL %s(%zu): mp_usable_size %zu\n", names[which], n, mp_usable_size(p));
                fails++;
            }
            free(p);
        }
        printf("ok: %s blocks freed by the program\n", names[which]);
    }
    return fails != 0;
}
