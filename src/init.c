/*
 * init.c - start-up, options, fork safety and statistics.
 *
 * Options: one table (name, default, range, why).  Each is read once, at
 * start-up, from the environment variable MEMPOOL_<NAME>, without
 * allocating; a number may end in k, m or g.  A value outside its range is
 * clamped to it.  A set-user-ID or set-group-ID program keeps the defaults.
 *
 * Start-up happens on the first call that needs it (the first slow path of
 * any thread, or a constructor, whichever comes first) under init_lock.
 * The thread that runs it may re-enter malloc (a getenv that allocates: not
 * glibc's, but a program may interpose its own): it then finds _mp_ready ==
 * 1 and is served without a thread cache, straight from the central lists,
 * which need no start-up of their own.  pthread_atfork, which may allocate in
 * glibc, is called only once _mp_ready is 2, as an ordinary malloc.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "mempool.h"

typedef struct {
    const char *name;
    long def, min, max;
    const char *why;
} mp_option_desc_t;

static const mp_option_desc_t options[MP_OPT_COUNT] = {
    [MP_OPT_VERBOSE] = { "VERBOSE", 0, 0, 1,
        "print the options in force at start-up" },
    [MP_OPT_SHOW_STATS] = { "SHOW_STATS", 0, 0, 2,
        "at exit, print a one-line summary (1) or the full picture (2) on stderr" },
    [MP_OPT_CHECK] = { "CHECK", 0, 0, 1,
        "validate every free in full (no thread cache): catches every double free, "
        "and a realloc of a freed block" },
    [MP_OPT_TCACHE_MAX] = { "TCACHE_MAX", 8L << 20, 64L << 10, 1L << 30,
        "bytes one thread cache may hold: speed against memory held per thread" },
    [MP_OPT_RETAIN] = { "RETAIN", 8L << 20, 0, 1L << 40,
        "free pages kept before returning them to the OS: syscalls against RSS" },
    [MP_OPT_DECAY_MS] = { "DECAY_MS", 500, 0, 3600L * 1000,
        "how long a free page stays before it may be returned (unless far over RETAIN)" },
    [MP_OPT_ARENAS] = { "ARENAS", 0, 0, MP_MAX_ARENAS,
        "sets of central lists, threads assigned round-robin (0: one per CPU the process "
        "may run on, at most 16): sharing between threads against memory" },
    [MP_OPT_CHUNK] = { "CHUNK", 4L << 20, 256L << 10, 1L << 30,
        "address space asked of the OS at a time (only touched pages cost RSS); free "
        "address space beyond 16 of them and twice the peak in use is unmapped" },
    [MP_OPT_HUGEPAGES] = { "HUGEPAGES", 16L << 20, 0, 1L << 40,
        "heap size from which new chunks are advised transparent huge pages (0: never): "
        "fewer page faults and TLB misses for a big heap, against free pieces of huge "
        "pages in use that stay resident (docs/DESIGN.md)" },
};

long _mp_options[MP_OPT_COUNT];
_Atomic int _mp_ready;
static mp_lock_t init_lock = MP_LOCK_INIT;
static __thread bool in_init __attribute__((tls_model(MP_TLS_MODEL)));

/* A decimal number with an optional k/m/g suffix (and b).  Too big for a
 * long reads as LONG_MAX, which the option's range then clamps. */
static long parse_size(const char *s, bool *ok) {
    long v = 0;
    *ok = false;
    if (*s < '0' || *s > '9') return 0;
    while (*s >= '0' && *s <= '9') {
        int d = *s++ - '0';
        v = v > (LONG_MAX - d) / 10 ? LONG_MAX : v * 10 + d;
    }
    int sh = 0;
    switch (*s) {
    case 'k': case 'K': sh = 10; s++; break;
    case 'm': case 'M': sh = 20; s++; break;
    case 'g': case 'G': sh = 30; s++; break;
    default: break;
    }
    v = v > (LONG_MAX >> sh) ? LONG_MAX : v << sh;
    if (*s == 'b' || *s == 'B') s++;
    *ok = *s == '\0';
    return v;
}

/* The defaults, with one arena: what a call sees that re-enters malloc
 * from inside start-up (a getenv that allocates, say) before the options
 * are read.  Every option must be in range for the code to work. */
static void options_defaults(void) {
    for (int i = 0; i < MP_OPT_COUNT; i++) _mp_options[i] = options[i].def;
    _mp_options[MP_OPT_ARENAS] = 1;
}

/* Read into a copy, then publish: calls re-entered from getenv keep seeing
 * the defaults, never a half-read table (ARENAS 0 would divide by 0). */
static void options_read(void) {
    char name[64];
    long opt[MP_OPT_COUNT];
    for (int i = 0; i < MP_OPT_COUNT; i++) {
        const mp_option_desc_t *o = &options[i];
        opt[i] = o->def;
        size_t nl = strlen(o->name);
        memcpy(name, "MEMPOOL_", 8);
        memcpy(name + 8, o->name, nl + 1);
        /* secure_getenv, as glibc's getenv, does not allocate; it ignores the
         * environment of a set-user-ID or set-group-ID program, which its
         * caller controls: the defaults hold there. */
        const char *v = secure_getenv(name);
        if (v == NULL) continue;
        bool ok;
        long x = parse_size(v, &ok);
        if (!ok) continue;
        opt[i] = x < o->min ? o->min : x > o->max ? o->max : x;
    }
    /* Chunks are whole pages of ours (the page heap rounds up as well). */
    opt[MP_OPT_CHUNK] = (long)mp_align_up((size_t)opt[MP_OPT_CHUNK], MP_PAGE_SIZE);
    if (opt[MP_OPT_ARENAS] == 0) {
        /* The CPUs this process may run on (a container's share, not the
         * machine's), read without allocating. */
        cpu_set_t set;
        long n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
        opt[MP_OPT_ARENAS] = n < 1 ? 1 : n > MP_MAX_ARENAS ? MP_MAX_ARENAS : n;
    }
    memcpy(_mp_options, opt, sizeof opt);
}

static void options_print(void) {
    char buf[160];
    for (int i = 0; i < MP_OPT_COUNT; i++) {
        size_t n = 0, l = strlen(options[i].name);
        memcpy(buf, "mempool: option MEMPOOL_", 24);
        n = 24;
        memcpy(buf + n, options[i].name, l);
        n += l;
        buf[n++] = '=';
        n += _mp_fmt_u64(buf + n, (uint64_t)_mp_options[i]);
        buf[n++] = '\n';
        _mp_write(2, buf, n);
    }
}

/* ---- fork: take every lock in order, release (parent) or reset (child) ---- */
static void fork_prepare(void) {
    mp_lock(&init_lock);
    _mp_tcache_lock_all();
    _mp_central_lock_all();
    mp_lock(&_mp_pageheap_lock);
    _mp_meta_lock();
}
static void fork_parent(void) {
    _mp_meta_unlock(false);
    mp_unlock(&_mp_pageheap_lock);
    _mp_central_unlock_all(false);
    _mp_tcache_unlock_all(false);
    mp_unlock(&init_lock);
}
static void fork_child(void) {
    _mp_meta_unlock(true);
    mp_lock_reset(&_mp_pageheap_lock);
    _mp_central_unlock_all(true);
    _mp_tcache_unlock_all(true);
    mp_lock_reset(&init_lock);
}

MP_NOINLINE void _mp_init_slow(void) {
    if (in_init) return;                 /* re-entered from our own start-up */
    mp_lock(&init_lock);
    if (atomic_load_explicit(&_mp_ready, memory_order_acquire) == 2) {
        mp_unlock(&init_lock);
        return;
    }
    in_init = true;
    options_defaults();
    atomic_store_explicit(&_mp_ready, 1, memory_order_release);
    _mp_os_init();
    _mp_pagemap_init();
    options_read();
    _mp_tcache_setup_thread_key();
    atomic_store_explicit(&_mp_ready, 2, memory_order_release);
    /* Registered only now: it may allocate, which is served normally. */
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    in_init = false;
    mp_unlock(&init_lock);
    if (mp_option(MP_OPT_VERBOSE)) options_print();
}

/* Start at load time too, so that the work is not in some thread's first
 * malloc; the allocator still works if a malloc comes earlier. */
__attribute__((constructor(101))) static void mp_constructor(void) { mp_ensure_init(); }

/* ---- statistics ------------------------------------------------------------ */
void mp_stats_get(mp_stats_t *st) {
    memset(st, 0, sizeof *st);
    mp_ensure_init();
    mp_pageheap_stats_t ph;
    _mp_pageheap_stats(&ph);
    size_t small;
    _mp_central_stats(&st->central_refills, &st->central_flushes, &small);
    st->mapped = ph.mapped;
    st->committed = ph.committed;
    st->free_dirty = ph.free_dirty;
    st->released = ph.released;
    st->large_in_use = ph.large_in_use;
    st->in_use = small + ph.large_in_use;
    st->os_maps = ph.os_maps;
    st->huge = ph.huge;
    st->large_allocs = ph.large_allocs;
    st->thread_caches = _mp_tcache_count();
}

static size_t fmt_field(char *b, const char *key, uint64_t v) {
    size_t n = strlen(key);
    memcpy(b, key, n);
    b[n++] = '=';
    return n + _mp_fmt_u64(b + n, v);
}

/* One line: "mempool: stats: mapped=... committed=... ..." */
static void stats_line(int fd) {
    mp_stats_t st;
    mp_stats_get(&st);
    char b[512];
    size_t n = 0;
    memcpy(b, "mempool: stats:", 15);
    n = 15;
    const struct { const char *k; uint64_t v; } f[] = {
        { " mapped_kb", st.mapped >> 10 },       { " committed_kb", st.committed >> 10 },
        { " in_use_kb", st.in_use >> 10 },       { " large_kb", st.large_in_use >> 10 },
        { " free_dirty_kb", st.free_dirty >> 10 }, { " released_kb", st.released >> 10 },
        { " thread_caches", st.thread_caches },  { " os_maps", st.os_maps },
        { " large_allocs", st.large_allocs },    { " refills", st.central_refills },
        { " flushes", st.central_flushes },     { " huge_kb", st.huge >> 10 },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) n += fmt_field(b + n, f[i].k, f[i].v);
    b[n++] = '\n';
    _mp_write(fd, b, n);
}

void mp_stats_print(int fd) {
    stats_line(fd);
    _mp_central_print(fd);
    _mp_pageheap_print(fd);
}

__attribute__((destructor)) static void mp_destructor(void) {
    if (atomic_load(&_mp_ready) != 2) return;
    long show = mp_option(MP_OPT_SHOW_STATS);
    if (show == 1) stats_line(2);
    else if (show >= 2) mp_stats_print(2);
}
