/* misuse/double_free_consumer: a thread frees blocks another thread
 * allocated (a consumer, whose bin is bounded at one batch: one object for
 * 5000-byte blocks, so each free overflows it) and frees one of them twice
 * in a row.  The overflow that the first free causes must not flush that
 * very block, or the second free finds another at the head of the bin and
 * the block ends up cached twice (handed out twice later).
 * Expected: abort with this line on stderr (ADDR: the address):
 *   mempool: double free: ADDR */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "mempool.h"
#include "misuse.h"

static void *v[4];

static void *consumer(void *arg)
{
    (void)arg;
    mp_free(v[0]);
    mp_free(v[1]);
    announce(v[1]);
    mp_free(v[1]);
    return NULL;
}

int main(void)
{
    for (int i = 0; i < 4; i++) v[i] = mp_malloc(5000);
    pthread_t t;
    pthread_create(&t, NULL, consumer, NULL);
    pthread_join(t, NULL);
    return 0; /* reached only if the bug went unnoticed */
}
