/*
 * sizeclass.c - the size classes: which sizes exist, how many pages a span
 * of each holds, how many objects move in a batch, and the lookup tables that
 * turn a request size into a class with one load.
 *
 * The table is constant data, src/sizeclass_table.h, generated from a short
 * rule that gives the reason for each choice (tools/sizeclass_rule.h; see
 * there).  Computing it at build time rather than at start-up saves every
 * process about 42,000 instructions and three page faults (docs/DESIGN.md).
 * Nothing here is written, so nothing is locked.
 */
#include "internal.h"

#include "sizeclass_table.h"

unsigned _mp_size_class_aligned(size_t n, size_t align) {
    if (n > MP_SMALL_MAX) return 0;
    /* Every object of a class is aligned to `align` when its size and its
     * spans' start are multiples of it.  The lookup skips the aligned-only
     * classes, so step back over those that fit below its answer. */
    unsigned c = mp_size_class(n);
    while (c > 1 && _mp_classes[c - 1].size >= n) c--;
    for (; c < (unsigned)_mp_nclasses; c++)
        if ((_mp_classes[c].size & (align - 1)) == 0 &&
            (_mp_classes[c].span_align & (align - 1)) == 0)
            return c;
    return 0;
}
