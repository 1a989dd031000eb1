/* misuse/double_free_borrowed: a block is freed, a smaller malloc comes in
 * between, and the block is freed again.  The smaller malloc finds its own
 * bin empty and borrows from the freed block's bin (tcache.c); had it taken
 * the block on top, the freed one itself, the second free would have found
 * another block at the head, gone unnoticed, and handed the block out
 * twice: to the smaller malloc and to the next one of its size.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: double free: ADDR */
#include <stdio.h>
#include <stdlib.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    void *volatile x = mp_malloc(1000);
    void *volatile p = mp_malloc(1000);
    mp_free(x);
    mp_free(p);                       /* the bin of 1024: p, x */
    void *volatile q = mp_malloc(950); /* its own bin (960) is empty */
    (void)q;
    announce(p);
    mp_free(p);
    return 0; /* reached only if the bug went unnoticed */
}
