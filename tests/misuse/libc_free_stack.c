/* misuse/libc_free_stack: free() (the malloc family, not mp_free) of a stack
 * address.
 * Skipped in the sanitizer builds, where the malloc family is the
 * sanitizer's.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: free of a pointer not from mempool: ADDR */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    char buf[64];
    char *volatile bad = buf;
    announce(bad);
    free(bad);
    return 0; /* reached only if the bug went unnoticed */
}
