/* misuse/free_global: mp_free of a static (global) object.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: free of a pointer not from mempool: ADDR */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "mempool.h"
#include "misuse.h"

int main(void)
{
    static char global_buf[128];
    char *volatile bad = global_buf;
    announce(bad);
    mp_free(bad);
    return 0; /* reached only if the bug went unnoticed */
}
