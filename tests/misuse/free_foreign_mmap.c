/* misuse/free_foreign_mmap: mp_free of a page-aligned pointer into a separate mmap
 * region, which looks like the start of a block.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: free of a pointer not from mempool: ADDR */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    unsigned char *region = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED)
        return 2;
    mp_free(mp_malloc(100)); /* mempool is initialised */
    unsigned char *volatile bad = region + (1 << 20);
    announce(bad);
    mp_free(bad);
    return 0; /* reached only if the bug went unnoticed */
}
