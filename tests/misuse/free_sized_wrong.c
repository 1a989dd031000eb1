/* misuse/free_sized_wrong: mp_free_sized(mp_malloc(100), 5000): a size that does
 * not match the block.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: mp_free_sized with a wrong size: ADDR */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    void *volatile p = mp_malloc(100);
    announce(p);
    mp_free_sized(p, 5000);
    return 0; /* reached only if the bug went unnoticed */
}
