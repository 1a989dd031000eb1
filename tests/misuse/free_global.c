/* misuse/free_global: mp_free of a static (global) object.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: free of a pointer not from mempool: ADDR */
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
    static char global_buf[128];
    char *volatile bad = global_buf;
    announce(bad);
    mp_free(bad);
    return 0; /* reached only if the bug went unnoticed */
}
