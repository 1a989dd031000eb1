/*
 * os.c - the operating-system layer: the only file that calls mmap, munmap,
 * madvise and futex.  It owns
 *   - the memory source: where heap memory comes from (mmap by default, or
 *     the callbacks given to mp_set_memory_source before first use);
 *   - the alignment shim: regions aligned to any power of two >= 8 KiB on
 *     top of whatever page size the kernel has (4, 16 or 64 KiB);
 *   - the transparent-huge-page advice and the huge page size;
 *   - metadata memory (spans, thread caches): bump-allocated from 1 MiB
 *     blocks under meta_lock and never returned;
 *   - the futex lock's slow path, and fatal error reporting.
 * Nothing here allocates with malloc or uses stdio: it runs under malloc.
 * What a free can reach here (the lock, releases, unmaps, advice) leaves
 * errno as it found it: free() must not change it (POSIX.1-2024), and a
 * futex wait fails with EAGAIN whenever the lock changed hands first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "internal.h"
#include "mempool.h"

size_t _mp_os_page = 4096;

static mp_memory_source_t source;      /* alloc == NULL: the mmap default */
static _Atomic bool source_locked;     /* set by the first heap allocation */

/* Restores errno when the block it is declared in ends. */
static inline void os_restore_errno(const int *saved) { errno = *saved; }
#define MP_KEEP_ERRNO int mp_saved_errno_ __attribute__((cleanup(os_restore_errno), unused)) = errno

void _mp_os_init(void) {
    unsigned long ps = getauxval(AT_PAGESZ);
    if (ps >= 4096 && mp_is_pow2(ps))
        _mp_os_page = ps;
}

/* ---- the default source: mmap ------------------------------------------ */
static void *os_mmap(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* size bytes aligned to align: map size+align-page, then trim both ends. */
static void *os_mmap_aligned(size_t size, size_t align) {
    if (align <= _mp_os_page)
        return os_mmap(size);
    size_t over = size + align - _mp_os_page;
    if (over < size) return NULL;
    char *p = os_mmap(over);
    if (p == NULL) return NULL;
    uintptr_t a = mp_align_up((uintptr_t)p, align);
    size_t front = a - (uintptr_t)p, back = over - front - size;
    if (front) munmap(p, front);
    if (back) munmap((char *)a + size, back);
    return (void *)a;
}

bool mp_set_memory_source(const mp_memory_source_t *src) {
    if (atomic_load(&source_locked) || src == NULL || src->alloc == NULL)
        return false;
    source = *src;
    return true;
}

void *_mp_os_alloc(size_t size, size_t align) {
    atomic_store_explicit(&source_locked, true, memory_order_relaxed);
    size = mp_align_up(size, _mp_os_page);
    if (align < _mp_os_page) align = _mp_os_page;
    void *p;
    if (source.alloc) {
        p = source.alloc(size, align, source.arg);
        if (p && ((uintptr_t)p & (align - 1))) _mp_fatal("memory source returned a misaligned region", p);
    } else {
        p = os_mmap_aligned(size, align);
    }
    if (p == NULL) errno = ENOMEM;
    return p;
}

/* size bytes exactly at `at` (a multiple of the OS page), or NULL when that
 * range is not free or a custom memory source is installed.  The page heap
 * uses it to grow its address range contiguously, so that new memory
 * coalesces with a free span at the edge of the old (see heap_grow). */
void *_mp_os_alloc_at(void *at, size_t size) {
    if (source.alloc || ((uintptr_t)at & (_mp_os_page - 1)) || size % _mp_os_page) return NULL;
#ifdef MAP_FIXED_NOREPLACE
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
#else
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#endif
    void *p = mmap(at, size, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (p != at) {                 /* kernels before 4.17 take it as a hint */
        munmap(p, size);
        return NULL;
    }
    return p;
}

void _mp_os_free(void *p, size_t size) {
    MP_KEEP_ERRNO;
    size = mp_align_up(size, _mp_os_page);
    if (source.alloc) {
        if (source.free) source.free(p, size, source.arg);
    } else {
        munmap(p, size);
    }
}

mp_give_t _mp_os_give_mode(void) {
    return source.alloc == NULL ? MP_GIVE_RANGES : source.free ? MP_GIVE_REGIONS : MP_GIVE_NONE;
}

/* Give [p, p+size), whole OS pages of a region, back to the kernel: any
 * part of an mmap'ed region can go.  A custom source takes back only whole
 * regions (_mp_os_free), so with one this does nothing and says so. */
bool _mp_os_unmap(void *p, size_t size) {
    MP_KEEP_ERRNO;
    if (source.alloc || ((uintptr_t)p | size) & (_mp_os_page - 1)) return false;
    return munmap(p, size) == 0;    /* ENOMEM: the split would pass vm.max_map_count */
}

bool _mp_os_decommit(void *p, size_t size) {
    MP_KEEP_ERRNO;
    uintptr_t a = mp_align_up((uintptr_t)p, _mp_os_page);
    uintptr_t b = mp_align_down((uintptr_t)p + size, _mp_os_page);
    if (b <= a) return false;
    if (source.alloc)
        return source.decommit ? source.decommit((void *)a, b - a, source.arg) : false;
    /* MADV_DONTNEED: the pages read as zero afterwards, which calloc and the
     * page heap's clean/dirty bookkeeping rely on (MADV_FREE would not). */
    return madvise((void *)a, b - a, MADV_DONTNEED) == 0;
}

/* ---- transparent huge pages -------------------------------------------- */
/* The size of a transparent huge page, read once from sysfs (without
 * allocating), or 0 when the kernel has none, has them switched off
 * ("[never]"), a custom memory source owns the memory, or they are too
 * coarse to be worth aligning to (512 MiB on arm64 with 64 KiB pages).
 * Called under the page heap lock only, so the cache needs no atomics. */
static long huge_size = -1;

static size_t os_read_small(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    return (size_t)n;
}

size_t _mp_os_huge_size(void) {
    if (huge_size < 0) {
        char buf[128];
        long v = 0;
        if (os_read_small("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", buf, sizeof buf))
            for (const char *s = buf; *s >= '0' && *s <= '9'; s++) v = v * 10 + (*s - '0');
        if (!mp_is_pow2((size_t)v) || v <= (long)_mp_os_page || v > (32L << 20)) v = 0;
        if (v && os_read_small("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf) &&
            strstr(buf, "[never]"))
            v = 0;
        huge_size = v;
    }
    return source.alloc ? 0 : (size_t)huge_size;
}

/* Ask for huge pages on [p, p+size): its aligned 2 MiB blocks are then
 * faulted in whole (one fault instead of 512) and mapped by one TLB entry.
 * Advice only: failure changes nothing but speed. */
void _mp_os_advise_huge(void *p, size_t size) {
#ifdef MADV_HUGEPAGE
    MP_KEEP_ERRNO;
    if (source.alloc == NULL) madvise(p, size, MADV_HUGEPAGE);
#else
    (void)p, (void)size;
#endif
}

/* Keep khugepaged off [p, p+size): the 2 MiB blocks it touches can no
 * longer be collapsed into huge pages (their range is no longer one
 * advised mapping).  False if the kernel refused (vm.max_map_count). */
bool _mp_os_advise_nohuge(void *p, size_t size) {
#ifdef MADV_NOHUGEPAGE
    MP_KEEP_ERRNO;
    return source.alloc == NULL && madvise(p, size, MADV_NOHUGEPAGE) == 0;
#else
    (void)p, (void)size;
    return true;
#endif
}

/* ---- metadata ------------------------------------------------------------ */
void *_mp_os_reserve(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Address space that reads as zero and costs no commit charge in any
 * overcommit mode (a private mapping that is not writable is not
 * accounted); _mp_os_make_writable opens the parts that get written. */
void *_mp_os_reserve_readonly(size_t size) {
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

bool _mp_os_make_writable(void *p, size_t size) {
    uintptr_t a = mp_align_down((uintptr_t)p, _mp_os_page);
    uintptr_t b = mp_align_up((uintptr_t)p + size, _mp_os_page);
    return mprotect((void *)a, b - a, PROT_READ | PROT_WRITE) == 0;
}

static mp_lock_t meta_lock = MP_LOCK_INIT;
static char *meta_cur, *meta_end;
#define MP_META_BLOCK ((size_t)1 << 20)

/* fork(): the last lock the handlers take (a new thread's cache and a new
 * span record come from here with no other lock held). */
void _mp_meta_lock(void) { mp_lock(&meta_lock); }
void _mp_meta_unlock(bool child) {
    if (child) mp_lock_reset(&meta_lock); else mp_unlock(&meta_lock);
}

void *_mp_meta_alloc(size_t size) {
    size = mp_align_up(size, MP_CACHELINE);
    mp_lock(&meta_lock);
    if ((size_t)(meta_end - meta_cur) < size) {
        size_t want = size > MP_META_BLOCK ? mp_align_up(size, _mp_os_page) : MP_META_BLOCK;
        char *b = os_mmap(want);
        if (b == NULL) { mp_unlock(&meta_lock); return NULL; }
        meta_cur = b;
        meta_end = b + want;
    }
    void *p = meta_cur;
    meta_cur += size;
    mp_unlock(&meta_lock);
    return p;
}

/* ---- futex lock ------------------------------------------------------------ */
void _mp_lock_slow(mp_lock_t *l) {
    MP_KEEP_ERRNO;
    /* Spin briefly: critical sections are short.  Then sleep in the kernel. */
    for (int i = 0; i < 100; i++) {
        int expect = 0;
        if (atomic_load_explicit(&l->v, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&l->v, &expect, 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ volatile("yield");
#endif
    }
    while (atomic_exchange_explicit(&l->v, 2, memory_order_acquire) != 0)
        syscall(SYS_futex, &l->v, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void _mp_lock_wake(mp_lock_t *l) {
    MP_KEEP_ERRNO;
    syscall(SYS_futex, &l->v, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---- messages -------------------------------------------------------------- */
void _mp_write(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

size_t _mp_fmt_u64(char *buf, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    return n;
}

size_t _mp_fmt_hex(char *buf, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do { tmp[n++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    buf[0] = '0';
    buf[1] = 'x';
    for (size_t i = 0; i < n; i++) buf[2 + i] = tmp[n - 1 - i];
    return n + 2;
}

/* "mempool: <what>: <address>" on stderr, then abort: the bug is reported
 * where it happens, before the heap can be damaged. */
void _mp_fatal(const char *what, const void *addr) {
    char buf[256];
    size_t n = 0, wl = strlen(what);
    if (wl > 180) wl = 180;
    memcpy(buf, "mempool: ", 9);
    n = 9;
    memcpy(buf + n, what, wl);
    n += wl;
    buf[n++] = ':';
    buf[n++] = ' ';
    n += _mp_fmt_hex(buf + n, (uintptr_t)addr);
    buf[n++] = '\n';
    _mp_write(2, buf, n);
    abort();
}
