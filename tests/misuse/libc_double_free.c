/* misuse/libc_double_free: free() of a malloc'd object twice in a row.
 * Skipped in the sanitizer builds, where the malloc family is the
 * sanitizer's.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: double free: ADDR */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    void *volatile p = malloc(48);
    announce(p);
    free(p);
    free(p);
    return 0; /* reached only if the bug went unnoticed */
}
