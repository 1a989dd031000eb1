/* misuse/libc_double_free: free() of a malloc'd object twice in a row.
 * Skipped in the sanitizer builds, where the malloc family is the
 * sanitizer's.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: double free: ADDR */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "mempool.h"

/* The address the bug is committed on is announced first, so that run.sh
 * can check that mempool reports that very address. */
static void announce(const void *p)
{
    fprintf(stderr, "misuse: address %p\n", p);
}

int main(void)
{
    void *volatile p = malloc(48);
    announce(p);
    free(p);
    free(p);
    return 0; /* reached only if the bug went unnoticed */
}
