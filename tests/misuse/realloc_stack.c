/* misuse/realloc_stack: mp_realloc of a stack address.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: realloc of a pointer not from mempool: ADDR */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    char buf[64];
    char *volatile bad = buf;
    announce(bad);
    void *q = mp_realloc(bad, 200);
    (void)q;
    return 0; /* reached only if the bug went unnoticed */
}
