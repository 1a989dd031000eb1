/* misuse/double_free_large: mp_free of a 1 MiB object twice in a row.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: double free: ADDR */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    void *volatile p = mp_malloc(1 << 20);
    announce(p);
    mp_free(p);
    mp_free(p);
    return 0; /* reached only if the bug went unnoticed */
}
