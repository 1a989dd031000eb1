/*
 * sizeclass_rule.h - the rule that makes mempool's size-class table.
 *
 * The library does not run this: tools/gen_sizeclass.c prints its result as
 * src/sizeclass_table.h (`make sizeclass-table`), which is compiled in as
 * constant data, so a process pays neither the computation (about 42,000
 * instructions) nor the page faults of writing the tables at start-up, and
 * every process shares one copy from the page cache.  The unit test
 * tests/unit/test_sizeclass.c runs the rule again and fails if the
 * committed table differs, so the two cannot drift.
 *
 * The rule, and the reason for each choice:
 *   - 8: the smallest object that holds a free-list link; 8-byte aligned.
 *   - 16 to 128 in steps of 16: the finest step that keeps every class
 *     16-byte aligned (max_align_t).  Waste here is below 16 bytes, which is
 *     more than 12.5% for requests of 65..120 bytes: 16-byte alignment and a
 *     12.5% bound cannot both hold there, and alignment wins (C requires it).
 *   - above 128: eight classes per doubling (128+16, 128+32, ... 256, 256+32,
 *     ...), so a request never wastes more than 1/8 of its class (the step
 *     is 1/8 of the lower power of two: waste < step <= 12.5% of the
 *     request).  All are multiples of 16; up to 256 KiB.
 *   - except from 1 KiB to 16 KiB, where spans run to several pages and the
 *     eighths tiled them badly (5120 left a 3-page alignment hole beside
 *     its 5-page span, 4608 a 512-byte tail in 4 pages): there, in each
 *     doubling [p, 2p], the classes are 16p/n for n = 15..9, rounded down
 *     to 16, which tile a span of 16p bytes (2 to 16 pages, a power of two)
 *     with a tail under 16n bytes; then 15p/8, because 16p/9 to 2p is
 *     exactly a 12.5% step and rounding 16p/9 down makes it more; then 2p.
 *     Nine classes a doubling, all steps under 12.5%.  The first of them
 *     above 4 KiB is 4368, which is exactly sqlite's page-cache block (a
 *     4096-byte page and its header): with 4608 it had 5.5% rounding and a
 *     1.6% tail, and its peak RSS was 10% above glibc's; now 2%.
 *   - aligned-only classes: the tiles are multiples of 16 but rarely of 64,
 *     so aligned_alloc(64, 1089) would have had to take 1920 bytes (the
 *     next multiple of 64 among the tiles), and 128-aligned 4097 bytes
 *     7680: up to 1.8 times the aligned request.  So the eighths p + kp/8,
 *     k = 1..6, of each of those doublings stay in the table as classes
 *     that only _mp_size_class_aligned picks (multiples of 128 and more;
 *     the size lookup skips them, so plain malloc never spreads over them).
 *     An aligned request then costs at most 12.5% over its size rounded up
 *     to the alignment, as before the tiles.  24 classes; 125 in all.
 *   - span pages: for classes up to 32 KiB the fewest pages (1..16) whose
 *     tail, after the last whole object, is at most 1/64 of the span -
 *     taking a power of two pages where one qualifies, because spans of
 *     these classes start aligned to the power of two at or above their
 *     length (which lets the free fast path check a pointer with a mask and
 *     a multiply, see types.h) and a 3-page span in a 4-page slot leaves a
 *     hole (this moved 7680 from 15 pages to 16 and 18432 from 9 to 16;
 *     15360 still takes 15, as no power of two up to 16 qualifies); above
 *     32 KiB, at most 1/8.  A 1/8 tail on top of the class's
 *     own rounding cost sqlite's page cache (4368-byte blocks, then in the
 *     4608 class, 5 per 3-page span) 12.5% over the request: 54 MiB peak
 *     RSS against glibc's 47 (52 with 1/64).
 *   - batch: 8 KiB worth of objects, between 1 and 32 - what moves between
 *     a thread cache and the central list in one lock hold.  Classes up to
 *     256 B still move 32 objects; above 512 B the smaller batch is less
 *     memory parked in thread caches and transfer slots: tb 2 300000 8
 *     4096 75 peaked at 8.9 MiB against 9.9 with 32 KiB batches, and ran
 *     1.08x as fast (2 KiB+ objects are touched by their user at a far
 *     greater cost than the lock of a smaller batch); at 4 KiB bench_rounds
 *     with 1 KiB blocks lost 10%, so 8 is where it stops.
 *   - tc_limit: what one thread may keep of a class, 4 MiB worth, between
 *     2 batches and 16384 objects, so that a thread that allocates a
 *     thousand 4 KiB blocks, or ten thousand 64 B ones (seed 004's rounds),
 *     and frees them all stays in its cache; bins only grow when a thread
 *     misses, and the per-thread byte cap (MEMPOOL_TCACHE_MAX) bounds the sum.
 *   - xfer_slots: batches the central transfer cache keeps, 64 KiB worth,
 *     between 1 and 16.
 *   - divc, tplus: the constants of the free path's object-boundary check.
 *
 * Include after types.h.  Everything is static: each includer gets its own.
 */
#ifndef MP_SIZECLASS_RULE_H
#define MP_SIZECLASS_RULE_H

typedef struct {
    mp_class_t classes[MP_MAX_CLASSES];
    int nclasses;
    uint8_t cls8[MP_LOOKUP_MAX / 8 + 1];      /* (n+7)>>3   -> class */
    uint8_t cls16[MP_SMALL_MAX / 16 + 1];     /* (n+15)>>4  -> class */
} mp_sizeclass_rule_t;

static size_t rule_pow2_at_least(size_t x) {
    size_t p = 1;
    while (p < x) p <<= 1;
    return p;
}

/* The fewest pages, up to max, whose tail after the last whole object is at
 * most 1/den of the span; 0 if none. */
static size_t rule_pages_within(size_t size, size_t den, size_t max) {
    for (size_t pages = 1; pages <= max; pages++) {
        size_t bytes = pages * MP_PAGE_SIZE;
        if (bytes >= size && bytes % size * den <= bytes) return pages;
    }
    return 0;
}

/* Pages per span: for classes up to MP_FASTFREE_MAX, a tail of at most 1/64
 * within 16 pages (every one of them has such a span count), in a power of
 * two pages where one qualifies; bigger classes, one object a span, at most
 * 1/8 (coupling two 40 KiB objects in one span to save a tail would keep
 * pages alive until both are freed). */
static size_t rule_span_pages(size_t size) {
    if (size > MP_FASTFREE_MAX) return rule_pages_within(size, 8, 128);
    for (size_t pages = 1; pages <= 16; pages *= 2) {
        size_t bytes = pages * MP_PAGE_SIZE;
        if (bytes >= size && bytes % size * 64 <= bytes) return pages;
    }
    return rule_pages_within(size, 64, 16);
}

static void rule_class_add(mp_sizeclass_rule_t *t, size_t size, bool aligned_only) {
    mp_class_t *c = &t->classes[t->nclasses++];
    c->size = (uint32_t)size;
    c->aligned_only = aligned_only;
    size_t pages = rule_span_pages(size);
    c->pages = (uint32_t)pages;
    c->nobj = (uint32_t)(pages * MP_PAGE_SIZE / size);
    c->fast_free = size <= MP_FASTFREE_MAX;
    c->span_align = c->fast_free ? rule_pow2_at_least(pages * MP_PAGE_SIZE) : MP_PAGE_SIZE;
    size_t batch = 8192 / size;
    c->batch = (uint32_t)(batch < 1 ? 1 : batch > 32 ? 32 : batch);
    size_t lim = ((size_t)4 << 20) / size;
    if (lim > 16384) lim = 16384;
    if (lim < 2 * (size_t)c->batch) lim = 2 * (size_t)c->batch;
    c->tc_limit = (uint32_t)lim;
    size_t xs = (64 * 1024) / ((size_t)c->batch * size);
    c->xfer_slots = (uint32_t)(xs < 1 ? 1 : xs > 16 ? 16 : xs);
    /* x is a multiple of size below nobj*size  <=>  x*divc < tplus, for every
     * x < 2^32: with divc = ceil(2^64/size), x = m*size gives x*divc = m*e
     * (mod 2^64) where e = divc*size - 2^64 < size, while any other x gives
     * at least divc.  So tplus = (nobj-1)*e + 1 accepts exactly the nobj
     * object offsets (tested exhaustively in tests/unit/test_sizeclass.c). */
    c->divc = UINT64_MAX / size + 1;
    uint64_t e = c->divc * (uint64_t)size;
    c->tplus = (uint64_t)(c->nobj - 1) * e + 1;
}

static void mp_sizeclass_rule(mp_sizeclass_rule_t *t) {
    *t = (mp_sizeclass_rule_t){ .nclasses = 1 };   /* class 0: not a small object */
    rule_class_add(t, 8, false);
    for (size_t s = 16; s <= 128; s += 16) rule_class_add(t, s, false);
    for (size_t p = 128; p < MP_SMALL_MAX; p *= 2) {
        if (p >= 1024 && p < MP_FASTFREE_MAX / 2) {
            /* tiles of a 16p-byte span: 15..9 objects, then 15p/8, then 2p;
             * between them, in size order, the aligned-only eighths p + kp/8
             * for k = 1..6 (none of them equals a tile) */
            size_t k = 1;
            for (size_t n = 15; n >= 9; n--) {
                size_t tile = 16 * p / n / 16 * 16;
                for (; k <= 6 && p + k * (p / 8) < tile; k++)
                    rule_class_add(t, p + k * (p / 8), true);
                rule_class_add(t, tile, false);
            }
            for (; k <= 6; k++) rule_class_add(t, p + k * (p / 8), true);
            rule_class_add(t, p + 7 * (p / 8), false);
            rule_class_add(t, 2 * p, false);
            continue;
        }
        for (size_t k = 1; k <= 8; k++) rule_class_add(t, p + k * (p / 8), false);
    }

    /* Lookup tables: the smallest class whose size is >= the request,
     * among those that are not aligned-only. */
    unsigned c = 1;
    for (size_t i = 0; i <= MP_LOOKUP_MAX / 8; i++) {
        while (t->classes[c].size < i * 8 || t->classes[c].aligned_only) c++;
        t->cls8[i] = (uint8_t)c;
    }
    c = 1;
    for (size_t i = 0; i <= MP_SMALL_MAX / 16; i++) {
        while (t->classes[c].size < i * 16 || t->classes[c].aligned_only) c++;
        t->cls16[i] = (uint8_t)c;
    }
}

#endif /* MP_SIZECLASS_RULE_H */
