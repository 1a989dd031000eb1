/* misuse/free_wild_high: mp_free of an address above the page map's 48
 * bits (a corrupted pointer).  Expected: abort with this line on stderr
 * (ADDR: the address):
 *   mempool: free of a pointer not from mempool: ADDR */
#include <stdint.h>
#include <stdio.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    void *keep = mp_malloc(16);          /* the heap exists */
    void *volatile bad = (void *)(UINTPTR_MAX - 15);
    announce(bad);
    mp_free(bad);
    mp_free(keep);
    return 0; /* reached only if the bug went unnoticed */
}
