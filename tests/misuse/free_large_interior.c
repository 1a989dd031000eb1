/* misuse/free_large_interior: mp_free of p+4096 where p is a 1 MiB object.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: free of an interior or misaligned pointer: ADDR */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    unsigned char *p = mp_malloc(1 << 20);
    unsigned char *volatile bad = p + 4096;
    announce(bad);
    mp_free(bad);
    return 0; /* reached only if the bug went unnoticed */
}
