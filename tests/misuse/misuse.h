/*
 * misuse.h - what every misuse program shares: it announces the address it
 * is about to misuse on stderr, so that tests/run.sh can check that
 * mempool's report names that very address ("misuse: address 0x...").
 */
#ifndef MP_MISUSE_H
#define MP_MISUSE_H

#include <stdio.h>

static inline void announce(const void *p)
{
    fprintf(stderr, "misuse: address %p\n", p);
}

#endif
