/* misuse/usable_size_stack: mp_usable_size of a stack address.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: malloc_usable_size of a pointer not from mempool: ADDR */
#include <stdio.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    char buf[64];
    char *volatile bad = buf;
    announce(bad);
    size_t n = mp_usable_size(bad);
    printf("%zu\n", n);
    return 0; /* reached only if the bug went unnoticed */
}
