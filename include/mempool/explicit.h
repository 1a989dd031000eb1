/*
 * mempool/explicit.h - mempool's explicit allocators: slabs, arenas, pools
 * and heaps, for programs that know the shape of their allocations better
 * than malloc can guess it.
 *
 *   slab   fixed-size objects, lock-free (alloc and free are a few atomic
 *          operations, no lock), grows on demand up to an optional cap.
 *   pool   fixed-size objects with a per-thread cache in front of a shared
 *          store: alloc and free touch only the calling thread's cache on a
 *          hit (the fastest way to get and return an object).
 *   arena  bump allocation, everything released at once by a reset; the
 *          memory is kept for the next round.
 *   heap   malloc/calloc/realloc/free of any size inside a heap that can be
 *          destroyed - everything in it freed at once - in one call.
 *
 * All four take their memory from mempool's page heap (never from malloc),
 * and return it when destroyed.  docs/EXPLICIT.md explains the designs.
 *
 * Errors.  A function that returns a pointer returns NULL on failure and
 * sets errno (EINVAL: a bad argument - NULL allocator, size 0, a bad flag,
 * an alignment that is not a power of two; EOVERFLOW: a size or count that
 * overflows; ENOMEM: out of memory or over the allocator's cap) and the
 * calling thread's mp_last_error() to the precise MP_E* code.  A function
 * that returns int returns MP_OK (0) or a negative MP_E* code.
 *
 * Every free checks its pointer before touching anything: a double free, a
 * pointer from another allocator (slab, pool, arena, heap, malloc, the
 * stack, ...), an interior or misaligned pointer is refused with its code,
 * counted in the allocator's stats (mp_xerrors_t), and the allocator stays
 * intact.  The check is race-free: when two threads free the same object at
 * once, exactly one call succeeds.  One refusal is named less precisely: a
 * heap gives memory back to the page heap (a freed object above 32 KiB, and
 * a 256 KiB chunk of small objects once all of them are free and the heap
 * keeps a spare chunk of that size already), so freeing an object there
 * again is MP_EDOUBLEFREE only while that memory is still a free run of its
 * own, and MP_EFOREIGN once it has merged with free neighbours or has been
 * handed out again.  The limit every allocator shares: once
 * a freed object has been handed out again, a stale pointer to it is a
 * valid pointer to the new object.
 *
 * Pointers from these allocators must never be given to free() or mp_free()
 * (mempool reports that and aborts).
 *
 * Thread safety, for all four: every function may be called from any thread
 * at any time, except that mp_*_destroy (and mp_arena_reset) must not run
 * at the same time as any other call on the same allocator.  Objects may be
 * freed by a thread other than the one that allocated them.
 *
 * Poisoning (use-after-free writes): with MP_FLAG_POISON, or in a library
 * built with -DMP_EXPLICIT_POISON (every allocator then poisons), freed
 * objects are filled with a pattern that is checked when the object is
 * handed out again; a change is reported on stderr as "mempool: use after
 * free: write to a freed object: <address>" and counted (errors.poisoned).
 */
#ifndef MEMPOOL_EXPLICIT_H
#define MEMPOOL_EXPLICIT_H

#include "../mempool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------- */
#define MP_OK            0
#define MP_EINVAL      (-1)  /* bad argument: NULL allocator or pointer, size 0, bad flags */
#define MP_ENOMEM      (-2)  /* out of memory */
#define MP_EOVERFLOW   (-3)  /* a size (or count * size) overflows */
#define MP_EALIGN      (-4)  /* an alignment that is not a power of two */
#define MP_ELIMIT      (-5)  /* the allocator's cap (max objects) is reached */
#define MP_EDOUBLEFREE (-6)  /* the object is already free */
#define MP_EFOREIGN    (-7)  /* not from this allocator */
#define MP_EINTERIOR   (-8)  /* inside this allocator's memory but not the
                              * start of an object: interior, misaligned,
                              * or never handed out */

/* A short English description of an MP_E* code ("double free", ...). */
MP_API const char *mp_strerror(int err);

/* The MP_E* code of the calling thread's last failed call to an explicit
 * allocator (MP_OK if none has failed). */
MP_API int mp_last_error(void);

/* Refused calls, per allocator (each is a count of calls). */
typedef struct mp_xerrors_s {
    uint64_t double_free;   /* MP_EDOUBLEFREE */
    uint64_t foreign;       /* MP_EFOREIGN */
    uint64_t interior;      /* MP_EINTERIOR */
    uint64_t bad_request;   /* MP_EINVAL, MP_EOVERFLOW, MP_EALIGN */
    uint64_t limit;         /* MP_ELIMIT and MP_ENOMEM */
    uint64_t poisoned;      /* use-after-free writes found (poisoning on;
                             * a heap finds a freed object's overwritten
                             * free-list link even without it) */
} mp_xerrors_t;

/* ---- flags (slab, pool, heap, arena where they apply) --------------------- */
#define MP_FLAG_CACHELINE 0x1u  /* slab, pool: objects aligned to 64 bytes
                                 * (and spaced by a multiple of 64): no false
                                 * sharing between objects.  Default: 16. */
#define MP_FLAG_POISON    0x2u  /* poison freed objects, check on reuse */

/* ---- slab: fixed-size objects, lock-free --------------------------------- */
typedef struct mp_slab_s mp_slab_t;

/* A slab of objects of obj_size bytes (1 .. 16 MiB), with room for at least
 * `initial` objects from the start and never more than `max` (0: no cap).
 * flags: MP_FLAG_CACHELINE, MP_FLAG_POISON.  NULL + errno on error. */
MP_API mp_slab_t *mp_slab_create(size_t obj_size, size_t initial, size_t max, unsigned flags);

/* An object (obj_size bytes, aligned to 16 or 64), or NULL: ENOMEM when out
 * of memory or at the cap (mp_last_error: MP_ENOMEM / MP_ELIMIT). */
MP_API MP_MALLOC_ATTR void *mp_slab_alloc(mp_slab_t *s);

/* Return p to s: MP_OK, or MP_EINVAL (s or p NULL), MP_EDOUBLEFREE,
 * MP_EFOREIGN, MP_EINTERIOR - then nothing was changed. */
MP_API int mp_slab_free(mp_slab_t *s, void *p);

/* Free the slab and every object in it; s may be NULL. */
MP_API void mp_slab_destroy(mp_slab_t *s);

typedef struct mp_slab_stats_s {
    size_t used;        /* objects handed out */
    size_t free;        /* objects the slab can hand out without growing */
    size_t capacity;    /* used + free */
    size_t obj_size;    /* bytes between objects (obj_size rounded up) */
    size_t chunks;      /* chunks taken from the page heap */
    size_t bytes;       /* their bytes */
    mp_xerrors_t errors;
} mp_slab_stats_t;

/* Counts (exact when no other thread is using the slab; O(capacity)). */
MP_API int mp_slab_stats(mp_slab_t *s, mp_slab_stats_t *st);

/* ---- pool: fixed-size objects behind per-thread caches --------------------- */
typedef struct mp_pool_s mp_pool_t;

/* A pool of objects of obj_size bytes (1 .. 16 MiB).  cache_size: objects
 * each thread may keep (0: 128 KiB worth, 32 to 1024 objects, and at most
 * max/16 (at least 1) with a cap; at most 65536); initial, max and flags as
 * for mp_slab_create.  Objects cached by threads count toward the cap: with
 * one, another thread can meet MP_ELIMIT while up to cache_size objects per
 * thread sit free in caches (mp_pool_flush gives a thread's back).  Any
 * number of pools may exist at once, each with its own per-thread caches. */
MP_API mp_pool_t *mp_pool_create(size_t obj_size, size_t cache_size, size_t initial,
                                 size_t max, unsigned flags);
MP_API MP_MALLOC_ATTR void *mp_pool_alloc(mp_pool_t *p);
/* As mp_slab_free. */
MP_API int mp_pool_free(mp_pool_t *p, void *obj);
/* Give the calling thread's cached objects back to the pool's shared store
 * (done automatically when the thread exits). */
MP_API int mp_pool_flush(mp_pool_t *p);

/* The calling thread's cache of p as a handle, for the fastest calls: a
 * loop that allocates and frees many objects takes it once and skips the
 * lookup of its thread's cache on every call.  NULL (EINVAL, ENOMEM) when p
 * is NULL or the cache cannot be made.  The handle is the thread's: valid
 * until the thread exits or p is destroyed.  Passed to another thread it
 * still works - the calls see they are not the owner's and use the caller's
 * own cache, at mp_pool_alloc's speed - and it checks every free as
 * mp_pool_free does. */
typedef struct mp_pool_cache_s mp_pool_cache_t;
MP_API mp_pool_cache_t *mp_pool_cache(mp_pool_t *p);
/* As mp_pool_alloc and mp_pool_free on the handle's pool. */
MP_API MP_MALLOC_ATTR void *mp_pool_cache_alloc(mp_pool_cache_t *c);
MP_API int mp_pool_cache_free(mp_pool_cache_t *c, void *obj);
MP_API void mp_pool_destroy(mp_pool_t *p);

typedef struct mp_pool_stats_s {
    size_t allocated;   /* objects handed out */
    size_t free;        /* objects the pool can hand out without growing */
    size_t cached;      /* of free, objects in threads' caches */
    size_t capacity;    /* allocated + free */
    size_t obj_size;
    size_t chunks, bytes;
    size_t threads;     /* threads with a cache for this pool */
    mp_xerrors_t errors;
} mp_pool_stats_t;

MP_API int mp_pool_stats(mp_pool_t *p, mp_pool_stats_t *st);

/* ---- arena: bump allocation, reset all at once ------------------------------ */
typedef struct mp_arena_s mp_arena_t;

/* An arena whose first chunk holds `initial` bytes (0: 64 KiB).  It grows
 * by chaining chunks, each as big as everything before it (up to 64 MiB).
 * flags: MP_FLAG_POISON. */
MP_API mp_arena_t *mp_arena_create(size_t initial, unsigned flags);

/* n bytes (n >= 1) aligned to 16.  Threads allocate from their own block of
 * the arena, so there is no atomic operation on the fast path. */
MP_API MP_MALLOC_ATTR void *mp_arena_alloc(mp_arena_t *a, size_t n);

/* n bytes aligned to align (a power of two; any size). */
MP_API MP_MALLOC_ATTR void *mp_arena_alloc_aligned(mp_arena_t *a, size_t n, size_t align);

/* Release everything allocated from the arena at once.  The chunks needed
 * by the round just ended (at least `initial` bytes) are kept for reuse;
 * the rest, and blocks of their own for big requests, go back to the page
 * heap.  No other call on the arena may run at the same time. */
MP_API int mp_arena_reset(mp_arena_t *a);
MP_API void mp_arena_destroy(mp_arena_t *a);

typedef struct mp_arena_stats_s {
    size_t used;        /* bytes handed out since the last reset (sizes rounded
                         * up to 16, plus alignment padding) */
    size_t capacity;    /* bytes of the chunks held */
    size_t chunks;
    uint64_t resets;
    mp_xerrors_t errors;
} mp_arena_stats_t;

MP_API int mp_arena_stats(mp_arena_t *a, mp_arena_stats_t *st);

/* ---- heap: malloc and free in a heap that is destroyed at once --------------- */
typedef struct mp_heap_s mp_heap_t;

/* A new, empty heap.  flags: MP_FLAG_POISON.
 * Thread safety: every call may come from any thread at any time; calls on
 * one heap are serialised by the heap's lock (use a heap per thread for
 * parallel work).  mp_heap_destroy must not run at the same time as another
 * call on that heap.  Objects of a heap are freed with mp_heap_free on that
 * heap (from any thread), never with free/mp_free. */
MP_API mp_heap_t *mp_heap_create(unsigned flags);

/* As malloc: n bytes aligned to 16 (mp_heap_malloc(h, 0) is a unique
 * minimal object); NULL + errno on error. */
MP_API MP_MALLOC_ATTR void *mp_heap_malloc(mp_heap_t *h, size_t n);
/* n*size zeroed bytes; EOVERFLOW when n*size overflows. */
MP_API MP_MALLOC_ATTR void *mp_heap_calloc(mp_heap_t *h, size_t n, size_t size);
/* As realloc: NULL p is mp_heap_malloc; n == 0 frees p and returns NULL.
 * A bad p is refused (NULL, errno EINVAL, mp_last_error the code) and kept. */
MP_API void *mp_heap_realloc(mp_heap_t *h, void *p, size_t n);
/* MP_OK (also for p == NULL) or MP_EDOUBLEFREE, MP_EFOREIGN, MP_EINTERIOR. */
MP_API int mp_heap_free(mp_heap_t *h, void *p);
/* Bytes usable at p, or 0 when p is not a live object of h. */
MP_API size_t mp_heap_usable_size(mp_heap_t *h, const void *p);
/* Free every object of h and return its memory, in time proportional to
 * the heap's chunks, not its objects.  h may be NULL. */
MP_API void mp_heap_destroy(mp_heap_t *h);

typedef struct mp_heap_stats_s {
    size_t in_use;      /* bytes in live objects (usable sizes) */
    size_t objects;     /* live objects */
    size_t large;       /* of them, objects above 32 KiB (pages of their own) */
    size_t bytes;       /* bytes held from the page heap */
    size_t chunks;      /* chunks for small objects */
    mp_xerrors_t errors;
} mp_heap_stats_t;

MP_API int mp_heap_stats(mp_heap_t *h, mp_heap_stats_t *st);

#ifdef __cplusplus
}
#endif

#endif /* MEMPOOL_EXPLICIT_H */
