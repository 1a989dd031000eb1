/*
 * misuse.h - what every misuse program shares: it announces the address it
 * is about to misuse on stderr, so that tests/run.sh can check that
 * mempool's report names that very address ("misuse: address 0x...").
 */
#ifndef MP_MISUSE_H
#define MP_MISUSE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void announce(const void *p)
{
    fprintf(stderr, "misuse: address %p\n", p);
}

/* Run the program again with MEMPOOL_CHECK=1, which mempool reads once, at
 * start-up (before main): for the bug classes only check mode catches. */
static inline void in_check_mode(char **argv)
{
    const char *v = getenv("MEMPOOL_CHECK");
    if (v != NULL && strcmp(v, "1") == 0) return;
    setenv("MEMPOOL_CHECK", "1", 1);
    execv("/proc/self/exe", argv);
    perror("misuse: execv");
    exit(2);
}

#endif
