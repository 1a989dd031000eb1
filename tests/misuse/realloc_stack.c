/* misuse/realloc_stack: mp_realloc of a stack address.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: realloc of a pointer not from mempool: ADDR */
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
    char buf[64];
    char *volatile bad = buf;
    announce(bad);
    void *q = mp_realloc(bad, 200);
    (void)q;
    return 0; /* reached only if the bug went unnoticed */
}
