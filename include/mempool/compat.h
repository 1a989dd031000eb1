/*
 * mempool/compat.h - the API of seed 003 (mempool-engine: slab_create,
 * arena_alloc, pool_create, mempool_t, ...) on top of mempool's explicit
 * allocators (mempool/explicit.h), so that code written for it compiles
 * and runs unchanged:
 *
 *   #include <mempool/compat.h>
 *   slab_allocator_t *alloc = slab_create(256, 1000);
 *   void *ptr = slab_alloc(alloc);
 *   slab_free(alloc, ptr);
 *   slab_destroy(alloc);
 *
 * What the names keep from the seed: its signatures, its promise that
 * every block is aligned to a 64-byte cache line (CACHE_LINE_SIZE), and
 * its int results (0 on success; here a negative MP_E* code on failure, so
 * `slab_free(a, p) != 0` still means "refused").  What they fix: a slab or
 * pool grows beyond num_blocks / total_blocks (the seed's sizes become the
 * room made at creation), the free lists are ABA-safe, the double-free check
 * is atomic, every pool has per-thread caches of its own, and a thread's
 * cached blocks go back to the pool when it exits.
 *
 * Everything here is a static inline wrapper: nothing is exported, and the
 * names exist only in programs that include this header.
 */
#ifndef MEMPOOL_COMPAT_H
#define MEMPOOL_COMPAT_H

#include "explicit.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef CACHE_LINE_SIZE
#define CACHE_LINE_SIZE 64
#endif

typedef mp_slab_t slab_allocator_t;
typedef mp_arena_t arena_allocator_t;
typedef mp_pool_t mempool_t;

/* ---- slab --------------------------------------------------------------------- */
/* A slab of block_size-byte blocks with room for num_blocks from the start. */
static inline slab_allocator_t *slab_create(size_t block_size, size_t num_blocks) {
    return mp_slab_create(block_size, num_blocks, 0, MP_FLAG_CACHELINE);
}
static inline void *slab_alloc(slab_allocator_t *alloc) { return mp_slab_alloc(alloc); }
static inline int slab_free(slab_allocator_t *alloc, void *ptr) { return mp_slab_free(alloc, ptr); }
static inline void slab_destroy(slab_allocator_t *alloc) { mp_slab_destroy(alloc); }
static inline int slab_stats(slab_allocator_t *alloc, size_t *used_blocks, size_t *free_blocks) {
    mp_slab_stats_t st;
    int r = mp_slab_stats(alloc, &st);
    if (r != MP_OK) return r;
    if (used_blocks) *used_blocks = st.used;
    if (free_blocks) *free_blocks = st.free;
    return 0;
}

/* ---- arena -------------------------------------------------------------------- */
/* An arena whose first chunk holds `capacity` bytes; it grows past that. */
static inline arena_allocator_t *arena_create(size_t capacity) {
    return mp_arena_create(capacity, 0);
}
/* size bytes aligned to a cache line, as the seed promised. */
static inline void *arena_alloc(arena_allocator_t *alloc, size_t size) {
    return mp_arena_alloc_aligned(alloc, size, CACHE_LINE_SIZE);
}
static inline void arena_reset(arena_allocator_t *alloc) { (void)mp_arena_reset(alloc); }
static inline void arena_destroy(arena_allocator_t *alloc) { mp_arena_destroy(alloc); }
static inline int arena_stats(arena_allocator_t *alloc, size_t *used, size_t *capacity) {
    mp_arena_stats_t st;
    int r = mp_arena_stats(alloc, &st);
    if (r != MP_OK) return r;
    if (used) *used = st.used;
    if (capacity) *capacity = st.capacity;
    return 0;
}

/* ---- pool --------------------------------------------------------------------- */
/* block_size-byte blocks, up to blocks_per_thread cached per thread, room
 * for total_blocks from the start. */
static inline mempool_t *pool_create(size_t block_size, size_t blocks_per_thread,
                                     size_t total_blocks) {
    return mp_pool_create(block_size, blocks_per_thread, total_blocks, 0, MP_FLAG_CACHELINE);
}
static inline void *pool_alloc(mempool_t *pool) { return mp_pool_alloc(pool); }
static inline int pool_free(mempool_t *pool, void *ptr) { return mp_pool_free(pool, ptr); }
static inline void pool_destroy(mempool_t *pool) { mp_pool_destroy(pool); }
static inline int pool_stats(mempool_t *pool, size_t *allocated, size_t *free_count) {
    mp_pool_stats_t st;
    int r = mp_pool_stats(pool, &st);
    if (r != MP_OK) return r;
    if (allocated) *allocated = st.allocated;
    if (free_count) *free_count = st.free;
    return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* MEMPOOL_COMPAT_H */
