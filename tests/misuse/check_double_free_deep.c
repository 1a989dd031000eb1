/* misuse/check_double_free_deep: with MEMPOOL_CHECK=1, a double free of a
 * small object that is no longer the last one freed (free(p); free(q);
 * free(p)), which the default fast path does not see.  Check mode sends
 * every free to the object's span and looks for it on the free list.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: double free: ADDR */
#include "mempool.h"
#include "misuse.h"

int main(int argc, char **argv)
{
    (void)argc;
    in_check_mode(argv);
    void *volatile p = mp_malloc(32);
    void *volatile q = mp_malloc(32);
    mp_free(p);
    mp_free(q);
    announce(p);
    mp_free(p);
    return 0; /* reached only if the bug went unnoticed */
}
