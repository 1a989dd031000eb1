/* misuse/free_interior1: mp_free of p+1 where p is a small object.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: free of an interior or misaligned pointer: ADDR */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    unsigned char *p = mp_malloc(100);
    unsigned char *volatile bad = p + 1;
    announce(bad);
    mp_free(bad);
    return 0; /* reached only if the bug went unnoticed */
}
