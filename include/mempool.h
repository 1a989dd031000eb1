/*
 * mempool.h - the public API of mempool, a thread-caching memory allocator.
 *
 * Every function here is thread-safe and may be called from any thread at any
 * time, including before main() and from inside other libraries'
 * constructors.  The same library also exports the standard malloc family
 * (malloc, free, calloc, ...), so linking it or preloading it with LD_PRELOAD
 * replaces the C library's allocator; the mp_ names below are always mempool,
 * whatever else the program links.
 *
 * Errors follow the C library: a failed allocation returns NULL and sets
 * errno (ENOMEM for an impossible or unsatisfiable size, EINVAL for a bad
 * alignment).  A bad pointer handed to a free or realloc is a bug in the
 * caller: mempool prints "mempool: <what>: <address>" on stderr and aborts,
 * before the heap can be corrupted.
 */
#ifndef MEMPOOL_H
#define MEMPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MP_API __attribute__((visibility("default")))
#define MP_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#define MP_ALLOC_SIZE(...) __attribute__((alloc_size(__VA_ARGS__)))
#else
#define MP_API
#define MP_MALLOC_ATTR
#define MP_ALLOC_SIZE(...)
#endif

#define MEMPOOL_VERSION_MAJOR 0
#define MEMPOOL_VERSION_MINOR 1

/* ---- allocation ------------------------------------------------------- */

/* Allocate n bytes, aligned to 16 (8 for requests of 8 bytes or less).
 * mp_malloc(0) returns a unique pointer that may be freed. */
MP_API MP_MALLOC_ATTR MP_ALLOC_SIZE(1) void *mp_malloc(size_t n);

/* Allocate n*size zeroed bytes; NULL and ENOMEM when n*size overflows. */
MP_API MP_MALLOC_ATTR MP_ALLOC_SIZE(1, 2) void *mp_calloc(size_t n, size_t size);

/* Resize p to n bytes, keeping its contents up to the smaller size.
 * mp_realloc(NULL, n) is mp_malloc(n); mp_realloc(p, 0) frees p and returns
 * NULL (glibc's behaviour).  On failure p is untouched and NULL returned. */
MP_API MP_ALLOC_SIZE(2) void *mp_realloc(void *p, size_t n);

/* Free p.  mp_free(NULL) does nothing. */
MP_API void mp_free(void *p);

/* Free p whose size the caller still knows: any size between what was asked
 * for (by the malloc, calloc, realloc or aligned call that returned p) and
 * mp_usable_size(p).  A size bigger than the block, or for a large block
 * smaller than its request, is reported and aborts. */
MP_API void mp_free_sized(void *p, size_t size);

/* n bytes aligned to `align`, which must be a power of two (any size, up to
 * at least 64 MiB).  NULL with EINVAL for a bad alignment. */
MP_API MP_MALLOC_ATTR MP_ALLOC_SIZE(2) void *mp_aligned_alloc(size_t align, size_t n);

/* POSIX: *out = n bytes aligned to align.  Returns 0, EINVAL (align not a
 * power of two multiple of sizeof(void*)) or ENOMEM; errno is not set. */
MP_API int mp_posix_memalign(void **out, size_t align, size_t n);

/* The number of bytes usable at p (at least what was asked for). */
MP_API size_t mp_usable_size(const void *p);

/* The size a request of n bytes is rounded up to: its size class, or whole
 * pages above 256 KiB.  mp_malloc(n) returns at least this many usable
 * bytes, so asking for mp_good_size(n) wastes nothing.  Most often it is
 * exactly mp_usable_size(mp_malloc(n)); when the thread has no block of that
 * class cached but one of the next class up, mp_malloc hands out that one
 * instead of taking new memory, and the block is the next class's size
 * (mp_good_size(mp_good_size(n) + 1): at most 25% above n for n over
 * 128 bytes, less than 32 above it below).  mp_usable_size and mp_malloc_usable
 * tell a block's real size; account with those, not with this. */
MP_API size_t mp_good_size(size_t n);

/* Allocate at least n bytes and store the block's real usable size,
 * mp_usable_size(p), in *usable (when not NULL), so that a growing
 * container can use the slack. */
MP_API MP_MALLOC_ATTR void *mp_malloc_usable(size_t n, size_t *usable);

/* ---- memory returned to the OS, thread caches ----------------------- */

/* Return the current thread's cached objects to the shared lists and every
 * whole free page to the operating system.  Returns the bytes released. */
MP_API size_t mp_trim(void);

/* Return the calling thread's cache to the shared lists now (it is also
 * done when the thread exits). */
MP_API void mp_thread_flush(void);

/* ---- statistics ------------------------------------------------------- */

typedef struct mp_stats_s {
    size_t mapped;          /* bytes of address space taken from the OS */
    size_t committed;       /* of those, bytes not handed back (may be in RSS) */
    size_t in_use;          /* bytes in objects handed out or in thread caches */
    size_t large_in_use;    /* of in_use, bytes in large (> 256 KiB) blocks */
    size_t free_dirty;      /* free pages not yet returned to the OS */
    size_t released;        /* total bytes returned to the OS so far */
    size_t thread_caches;   /* live thread caches */
    uint64_t os_maps;       /* calls to the memory source's alloc */
    uint64_t large_allocs;  /* large allocations served */
    uint64_t central_refills; /* thread-cache refills from the central lists */
    uint64_t central_flushes; /* thread-cache flushes to the central lists */
    size_t huge;            /* of mapped, bytes in the ranges advised as
                             * transparent huge pages (MEMPOOL_HUGEPAGES).
                             * A fine release (mp_trim) takes the advice off
                             * the free pieces of huge pages partly in use;
                             * this figure still counts them */
} mp_stats_t;

/* Fill *st with the current figures.  Allocates nothing.  The page heap's
 * figures are read together under its lock, and each size class's objects
 * under that class's locks; while other threads allocate, figures of
 * different layers may be a few batches apart, never nonsense (a count
 * below zero, mapped below committed). */
MP_API void mp_stats_get(mp_stats_t *st);

/* Write a human-readable picture of the heap (totals, per size class use,
 * page heap free spans) to the file descriptor fd.  Allocates nothing. */
MP_API void mp_stats_print(int fd);

/* ---- memory source ---------------------------------------------------- */

/* Where mempool gets its address space.  The default uses mmap/munmap and
 * madvise.  A replacement must be installed before the first allocation
 * (mp_set_memory_source returns false afterwards).
 *   alloc:   return `size` bytes aligned to `align` (both multiples of the
 *            OS page size; align a power of two), zero-filled, or NULL.
 *   free:    give back a whole region obtained from alloc (when all of it
 *            is free, decommitted, and the heap holds much more free
 *            address space than it uses; may be NULL: then nothing goes
 *            back).
 *   decommit: the contents of [p, p+size) are no longer needed; the memory
 *            must read as zero when next touched.  Return false if that was
 *            not done (mempool then treats the range as still in use).
 * Regions that alloc returns back to back are joined, as mmap's are: a
 * block, and a decommit range, may then span two or more of them (always
 * within what alloc returned).  A source that cannot allow that leaves a
 * gap of at least one page between its regions.
 * arg is passed to each call.  The callbacks run with mempool's page heap
 * lock held: they must not allocate with malloc or any mempool function
 * (that would wait for the lock forever), nor block for long. */
typedef struct mp_memory_source_s {
    void *(*alloc)(size_t size, size_t align, void *arg);
    void (*free)(void *p, size_t size, void *arg);
    bool (*decommit)(void *p, size_t size, void *arg);
    void *arg;
} mp_memory_source_t;

MP_API bool mp_set_memory_source(const mp_memory_source_t *src);

#ifdef __cplusplus
}
#endif

#endif /* MEMPOOL_H */
