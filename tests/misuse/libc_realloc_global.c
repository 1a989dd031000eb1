/* misuse/libc_realloc_global: realloc() of a static object.
 * Skipped in the sanitizer builds, where the malloc family is the
 * sanitizer's.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: realloc of a pointer not from mempool: ADDR */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    static char global_buf[256];
    char *volatile bad = global_buf;
    announce(bad);
    void *q = realloc(bad, 1000);
    (void)q;
    return 0; /* reached only if the bug went unnoticed */
}
