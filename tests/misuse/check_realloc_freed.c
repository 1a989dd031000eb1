/* misuse/check_realloc_freed: with MEMPOOL_CHECK=1, realloc of a small
 * object already freed, to a size its block still holds, so that realloc
 * would keep the block and hand the freed memory back as live.
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: realloc of a freed pointer: ADDR */
#include "mempool.h"
#include "misuse.h"

int main(int argc, char **argv)
{
    (void)argc;
    in_check_mode(argv);
    void *volatile p = mp_malloc(100);
    void *volatile keep = mp_malloc(100);   /* the span stays in use */
    (void)keep;
    mp_free(p);
    announce(p);
    p = mp_realloc(p, 90);
    return 0; /* reached only if the bug went unnoticed */
}
