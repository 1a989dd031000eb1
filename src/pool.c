/*
 * pool.c - the pool allocator (fixed-size objects, a per-thread cache in
 * front of a shared store), and the machinery that gives every pool and
 * arena its own per-thread state: the registry of explicit allocators and
 * the per-thread table (see xalloc.h for both).
 *
 * A pool's objects live in chunks (xalloc.h), carved lazily.  Each thread
 * that uses the pool has a cache: an array of up to cache_cap free objects
 * plus a few chunk addresses it has already validated for this pool.
 *   alloc hit:  pop the array, store XS_LIVE in the object's state byte.
 *   free hit:   the chunk is one this thread validated, the pointer is on a
 *               granule, CAS XS_LIVE -> XS_FREE on its state (the only
 *               atomic read-modify-write on the fast paths, and it is what
 *               makes two concurrent frees of one object end with exactly
 *               one success), push.
 * A pool made with MP_FLAG_POISON takes the slow paths for every call.
 * Misses go to the shared store - an array of free objects under the pool
 * lock - half a cache at a time, and the store carves new objects from the
 * chunks (adding a chunk when they are full, unless the cap is reached).
 *
 * Invariants
 *   - Every carved object is in exactly one place: handed out (XS_LIVE), in
 *     one thread's cache or in the store (XS_FREE).
 *   - store_cap >= carved, so moving objects into the store never fails.
 *   - A cache is linked in its pool's list while its thread is alive (and
 *     the pool is); cache->n is written only by its thread (relaxed atomic
 *     stores: plain moves) and read by stats.
 *   - Chunks are freed only by mp_pool_destroy.
 *
 * Locking: the fast paths take no lock.  pool->lock guards the store, the
 * chunks and the cache list.  Thread exit: the registry lock, then the
 * pool's lock, to move the cache into the store (xalloc.h has the order).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include "xalloc.h"

/* ==== registry and per-thread table ========================================== */
typedef struct {
    uint64_t tag;            /* 0: free slot */
    void *obj;
    mp_lock_t *lock;
    mp_xdetach_fn detach;
    int kind;
} xreg_slot_t;

/* The registry is two tables under one lock, with the same rules: one for
 * the allocators with per-thread state (pools, arenas: a detach function),
 * whose ids index every thread's table, and one for the others (slabs,
 * heaps), there for fork and nothing else.  Their ids carry XREG_PLAIN.
 * With one table, a pool created after 200,000 live heaps took id 200,000,
 * and each thread that used it a 2 MiB table. */
typedef struct {
    xreg_slot_t *slot;
    uint32_t cap;            /* slots allocated */
    uint32_t top;            /* 1 + highest index in use */
    uint32_t low;            /* no free slot below this */
} xreg_table_t;
#define XREG_PLAIN 0x80000000u

static mp_lock_t xreg_lock = MP_LOCK_INIT;
static xreg_table_t xreg_cached, xreg_plain;
static _Atomic uint64_t xstamp_next = 1;
static pthread_once_t xonce = PTHREAD_ONCE_INIT;
static pthread_key_t xkey;
static bool xkey_ok;

mp_xent_t _mp_xent_none;     /* stamp 0: matches nothing */
static mp_xtls_t xtls_empty = { 0, 0 };
static mp_xtls_t xtls_dead = { 0, 1 };
__thread mp_xtls_t *_mp_xtls __attribute__((tls_model(MP_TLS_MODEL))) = &xtls_empty;

uint64_t _mp_xstamp(void) {
    return atomic_fetch_add_explicit(&xstamp_next, 1, memory_order_relaxed);
}

/* Thread exit: detach every entry whose allocator is alive, free them all. */
static void xtls_thread_exit(void *arg) {
    mp_xtls_t *t = arg;
    xreg_table_t *r = &xreg_cached;
    mp_lock(&xreg_lock);
    for (uint32_t i = 0; i < t->cap; i++) {
        mp_xent_t *e = t->ent[i];
        if (e == &_mp_xent_none) continue;
        if (i < r->top && r->slot[i].tag == e->tag)
            r->slot[i].detach(r->slot[i].obj, e);
        t->ent[i] = &_mp_xent_none;
        mp_free(e);
    }
    mp_unlock(&xreg_lock);
    _mp_xtls = &xtls_dead;
    mp_free(t);
}

/* fork(): no allocator lock may be held by a thread that does not exist in
 * the child.  Ours run before the core's prepare handler (registered
 * later), so the core's locks, which are below ours, are taken after.
 * Allocator locks: the cached table's in index order, then the plain one's. */
typedef enum { XLOCK_TAKE, XLOCK_RELEASE, XLOCK_RESET } xlock_op_t;
static void xreg_table_locks(xreg_table_t *r, xlock_op_t op) {
    for (uint32_t k = 0; k < r->top; k++) {
        uint32_t i = op == XLOCK_RELEASE ? r->top - 1 - k : k;
        if (r->slot[i].tag == 0 || r->slot[i].lock == NULL) continue;
        if (op == XLOCK_TAKE) mp_lock(r->slot[i].lock);
        else if (op == XLOCK_RELEASE) mp_unlock(r->slot[i].lock);
        else mp_lock_reset(r->slot[i].lock);
    }
}
static void xreg_fork_prepare(void) {
    mp_lock(&xreg_lock);
    xreg_table_locks(&xreg_cached, XLOCK_TAKE);
    xreg_table_locks(&xreg_plain, XLOCK_TAKE);
}
static void xreg_fork_parent(void) {
    xreg_table_locks(&xreg_plain, XLOCK_RELEASE);
    xreg_table_locks(&xreg_cached, XLOCK_RELEASE);
    mp_unlock(&xreg_lock);
}
static void xreg_fork_child(void) {
    xreg_table_locks(&xreg_cached, XLOCK_RESET);
    xreg_table_locks(&xreg_plain, XLOCK_RESET);
    mp_lock_reset(&xreg_lock);
}

static void xreg_once(void) {
    /* No key left (a program that used them all up first): no thread
     * caches, rather than key 0, which is someone else's. */
    xkey_ok = pthread_key_create(&xkey, xtls_thread_exit) == 0;
    pthread_atfork(xreg_fork_prepare, xreg_fork_parent, xreg_fork_child);
}

uint32_t _mp_xreg_add(void *obj, int kind, mp_lock_t *lock, mp_xdetach_fn detach, uint64_t *tag) {
    mp_ensure_init();
    pthread_once(&xonce, xreg_once);
    xreg_table_t *r = detach ? &xreg_cached : &xreg_plain;
    mp_lock(&xreg_lock);
    uint32_t i = r->low;
    while (i < r->top && r->slot[i].tag != 0) i++;
    if (i >= r->cap) {
        uint32_t cap = r->cap ? 2 * r->cap : 16;
        xreg_slot_t *n = cap < XREG_PLAIN ? mp_realloc(r->slot, cap * sizeof *n) : NULL;
        if (n == NULL) {
            mp_unlock(&xreg_lock);
            return UINT32_MAX;
        }
        memset(n + r->cap, 0, (cap - r->cap) * sizeof *n);
        r->slot = n;
        r->cap = cap;
    }
    *tag = _mp_xstamp();
    r->slot[i] = (xreg_slot_t){ *tag, obj, lock, detach, kind };
    if (i >= r->top) r->top = i + 1;
    r->low = i + 1;
    mp_unlock(&xreg_lock);
    return detach ? i : i | XREG_PLAIN;
}

void _mp_xreg_remove(uint32_t id, uint64_t tag) {
    xreg_table_t *r = id & XREG_PLAIN ? &xreg_plain : &xreg_cached;
    uint32_t i = id & ~XREG_PLAIN;
    mp_lock(&xreg_lock);
    if (i < r->top && r->slot[i].tag == tag) {
        memset(&r->slot[i], 0, sizeof r->slot[i]);
        if (i < r->low) r->low = i;
        while (r->top > 0 && r->slot[r->top - 1].tag == 0) r->top--;
    }
    mp_unlock(&xreg_lock);
    mp_xtls_t *t = _mp_xtls;
    if (!(id & XREG_PLAIN) && id < t->cap && t->ent[id] != &_mp_xent_none &&
        t->ent[id]->tag == tag) {
        mp_free(t->ent[id]);
        t->ent[id] = &_mp_xent_none;
    }
}

mp_xent_t **_mp_xtls_slot(uint32_t id) {
    mp_xtls_t *t = _mp_xtls;
    if (t->dead) return NULL;
    if (id >= t->cap) {
        uint32_t cap = t->cap ? t->cap : 8;
        while (cap <= id) cap *= 2;
        mp_xtls_t *n = mp_malloc(sizeof *n + cap * sizeof(mp_xent_t *));
        if (n == NULL) return NULL;
        n->cap = cap;
        n->dead = 0;
        for (uint32_t i = 0; i < cap; i++) n->ent[i] = i < t->cap ? t->ent[i] : &_mp_xent_none;
        pthread_once(&xonce, xreg_once);
        if (!xkey_ok || pthread_setspecific(xkey, n) != 0) {
            mp_free(n);
            return NULL;
        }
        if (t != &xtls_empty) mp_free(t);
        _mp_xtls = t = n;
    }
    return &t->ent[id];
}

/* ==== the pool ================================================================== */
#define POOL_KNOWN 8                     /* validated chunks remembered per cache */
/* `last` before the first free: a value p & vmask never takes (vmask keeps
 * a pointer's chunk bits and its offset in a granule, never the granule
 * index bits), so that no pointer - not even (void *)1 - matches it. */
#define POOL_NONE(p) ((uintptr_t)1 << (p)->sshift)

typedef struct {
    void *obj;
    _Atomic uint8_t *st;                 /* its state byte */
} pool_slot_t;

/* A thread's cache of one pool; also the public mp_pool_cache_t handle. */
typedef struct mp_pool_cache_s pool_cache_t;
struct mp_pool_cache_s {
    mp_xent_t x;                         /* tag: the pool's; stamp: the same, or 0 */
    _Atomic uint32_t top;                /* bytes of slot[] in use (objects * 16:
                                          * the fast paths index by it directly) */
    uint32_t end;                        /* bytes of slot[]: the pool's cache_cap * 16 */
    /* what the handle's fast paths read instead of the pool's fields */
    void *owner;                         /* its thread's pointer (pool_self); NULL when
                                          * every call must take the slow path (poison) */
    mp_pool_t *pool;
    uintptr_t vmask;                     /* the pool's */
    uint32_t sshift;                     /* the pool's */
    uintptr_t last;                      /* chunk of the last free, or POOL_NONE */
    uintptr_t last_sdelta;               /* its sdelta */
    uintptr_t known[POOL_KNOWN];         /* more chunks of this pool (1: none) */
    pool_cache_t *next, *prev;           /* the pool's list (pool lock) */
    pool_slot_t slot[];
};

struct mp_pool_s {
    /* read-only after create: what the fast paths read */
    uint64_t tag;
    uint32_t id;
    uint32_t sshift;
    uintptr_t vmask;                     /* ~(chunk_bytes - 1) | (granule - 1): p & vmask
                                          * is p's chunk iff p is on a granule */
    uintptr_t chunk_of;                  /* ~(chunk_bytes - 1) */
    uintptr_t gmask;                     /* granule - 1 */
    unsigned flags;
    uint32_t kshift;                     /* log2(chunk_bytes) */
    uint32_t cache_cap;
    uint32_t batch;                      /* objects moved per refill/flush */
    mp_xlayout_t l;
    size_t max;                          /* SIZE_MAX: no cap */
    /* the shared store (lock) */
    _Alignas(64) mp_lock_t lock;
    void **store;
    size_t store_n, store_cap;
    mp_xchunk_t *chunks, *chunks_tail;   /* oldest first */
    mp_xchunk_t *carve;                  /* chunk being carved */
    size_t nchunks, carved, capacity;
    pool_cache_t *caches;
    size_t ncaches;
    mp_xcounters_t err;
};

/* Objects in c; set them.  Only c's thread writes; stats read. */
MP_INLINE uint32_t pool_count(pool_cache_t *c) {
    return atomic_load_explicit(&c->top, memory_order_relaxed) / (uint32_t)sizeof(pool_slot_t);
}
MP_INLINE void pool_set_count(pool_cache_t *c, uint32_t n) {
    atomic_store_explicit(&c->top, n * (uint32_t)sizeof(pool_slot_t), memory_order_relaxed);
}
/* The slot `top` bytes into c's array. */
MP_INLINE pool_slot_t *pool_at(pool_cache_t *c, uint32_t top) {
    return (pool_slot_t *)((char *)c->slot + top);
}

/* The calling thread's identity for a cache handle: its thread pointer,
 * one load on x86-64 and aarch64, unique among live threads. */
MP_INLINE void *pool_self(void) { return __builtin_thread_pointer(); }

MP_INLINE _Atomic uint8_t *pool_state(mp_pool_t *p, uintptr_t o) {
    return mp_xstate(o & p->chunk_of, o, p->sshift);
}

/* ---- the shared store (pool lock held) ---------------------------------------- */
static int pool_add_chunk(mp_pool_t *p) {
    if (p->capacity >= p->max) return MP_ELIMIT;
    mp_xchunk_t *c = _mp_xchunk_new(&p->l, MP_XMAGIC_POOL, p);
    if (c == NULL) return MP_ENOMEM;
    if (p->chunks_tail) p->chunks_tail->next = c;
    else p->chunks = c;
    p->chunks_tail = c;
    p->nchunks++;
    size_t room = p->max - p->capacity;
    p->capacity += room < p->l.nobj ? room : p->l.nobj;
    return MP_OK;
}

/* Carve up to `want` new objects (XS_FREE) into out; returns how many, and
 * sets *code when that is fewer than wanted. */
static uint32_t pool_carve(mp_pool_t *p, pool_slot_t *out, uint32_t want, int *code) {
    uint32_t got = 0;
    *code = MP_OK;
    if (p->store_cap < p->carved + want) {
        size_t cap = p->store_cap ? 2 * p->store_cap : 64;
        if (cap < p->carved + want) cap = p->carved + want;
        void **s = mp_realloc(p->store, cap * sizeof *s);
        if (s == NULL) {
            *code = MP_ENOMEM;
            return 0;
        }
        p->store = s;
        p->store_cap = cap;
    }
    while (got < want) {
        if (p->carved >= p->max) {
            *code = MP_ELIMIT;
            break;
        }
        mp_xchunk_t *c = p->carve;
        if (c == NULL || c->carved >= p->l.nobj) {
            c = c ? c->next : p->chunks;
            if (c == NULL) {
                int r = pool_add_chunk(p);
                if (r != MP_OK) {
                    *code = r;
                    break;
                }
                c = p->chunks_tail;
            }
            p->carve = c;
            continue;
        }
        uint32_t n = p->l.nobj - c->carved;
        if (n > want - got) n = want - got;
        if (p->max - p->carved < n) n = (uint32_t)(p->max - p->carved);
        for (uint32_t i = 0; i < n; i++) {
            uintptr_t o = (uintptr_t)c + p->l.base + (uintptr_t)(c->carved + i) * p->l.stride;
            _Atomic uint8_t *st = mp_xstate((uintptr_t)c, o, p->sshift);
            atomic_store_explicit(st, XS_FREE, memory_order_relaxed);
            if (p->flags & MP_FLAG_POISON) _mp_xpoison((void *)o, p->l.stride);
            out[got].obj = (void *)o;
            out[got++].st = st;
        }
        c->carved += n;
        p->carved += n;
    }
    return got;
}

/* Take up to `want` free objects (store first, then new ones). */
static uint32_t pool_take(mp_pool_t *p, pool_slot_t *out, uint32_t want, int *code) {
    uint32_t k = p->store_n < want ? (uint32_t)p->store_n : want;
    for (uint32_t i = 0; i < k; i++) {
        void *o = p->store[--p->store_n];
        out[i].obj = o;
        out[i].st = pool_state(p, (uintptr_t)o);
    }
    *code = MP_OK;
    if (k < want) k += pool_carve(p, out + k, want - k, code);
    return k;
}

static void pool_give(mp_pool_t *p, const pool_slot_t *s, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) p->store[p->store_n++] = s[i].obj;
}

/* ---- caches ---------------------------------------------------------------------- */
/* The calling thread's cache for p, created if needed; NULL when the thread
 * can have none (exiting, or out of memory). */
static pool_cache_t *pool_cache_get(mp_pool_t *p) {
    mp_xent_t **slot = _mp_xtls_slot(p->id);
    if (slot == NULL) return NULL;
    mp_xent_t *e = *slot;
    if (e->tag == p->tag) return (pool_cache_t *)e;
    if (e != &_mp_xent_none) {           /* left by a destroyed allocator */
        *slot = &_mp_xent_none;
        mp_free(e);
    }
    pool_cache_t *c = mp_malloc(sizeof *c + p->cache_cap * sizeof(pool_slot_t));
    if (c == NULL) return NULL;
    /* A poisoning pool's caches never match on the fast paths (stamp 0):
     * every call takes the slow path, which poisons and checks. */
    c->x = (mp_xent_t){ (p->flags & MP_FLAG_POISON) ? 0 : p->tag, p->tag, p->id, XK_POOL };
    pool_set_count(c, 0);
    c->end = p->cache_cap * (uint32_t)sizeof(pool_slot_t);
    c->owner = (p->flags & MP_FLAG_POISON) ? NULL : pool_self();
    c->pool = p;
    c->vmask = p->vmask;
    c->sshift = p->sshift;
    c->last = POOL_NONE(p);
    c->last_sdelta = 0;
    for (int i = 0; i < POOL_KNOWN; i++) c->known[i] = 1;
    mp_lock(&p->lock);
    c->prev = NULL;
    c->next = p->caches;
    if (p->caches) p->caches->prev = c;
    p->caches = c;
    p->ncaches++;
    mp_unlock(&p->lock);
    *slot = &c->x;
    return c;
}

/* Move the `n` oldest objects of c to the store. */
static void pool_cache_drain(mp_pool_t *p, pool_cache_t *c, uint32_t n) {
    uint32_t have = pool_count(c);
    if (n > have) n = have;
    mp_lock(&p->lock);
    pool_give(p, c->slot, n);
    memmove(c->slot, c->slot + n, (have - n) * sizeof(pool_slot_t));
    pool_set_count(c, have - n);
    mp_unlock(&p->lock);
}

/* Registry lock held: c's thread is exiting. */
static void pool_detach(void *obj, mp_xent_t *e) {
    mp_pool_t *p = obj;
    pool_cache_t *c = (pool_cache_t *)e;
    mp_lock(&p->lock);
    pool_give(p, c->slot, pool_count(c));
    pool_set_count(c, 0);
    if (c->prev) c->prev->next = c->next;
    else p->caches = c->next;
    if (c->next) c->next->prev = c->prev;
    p->ncaches--;
    mp_unlock(&p->lock);
}

/* ---- API --------------------------------------------------------------------------- */
mp_pool_t *mp_pool_create(size_t obj_size, size_t cache_size, size_t initial, size_t max,
                          unsigned flags) {
    mp_ensure_init();
    if (flags & ~MP_XFLAGS_ALL) return _mp_xfail(NULL, MP_EINVAL);
    if (max != 0 && initial > max) return _mp_xfail(NULL, MP_EINVAL);
    if (cache_size > 65536) return _mp_xfail(NULL, MP_EINVAL);
    flags |= MP_XFLAGS_FORCED;
    mp_xlayout_t l;
    int r = _mp_xlayout(obj_size, initial, flags, false, &l);
    if (r != MP_OK) return _mp_xfail(NULL, r);
    if (initial > _mp_xroom(&l, SIZE_MAX)) return _mp_xfail(NULL, MP_ENOMEM);
    mp_pool_t *p = mp_aligned_alloc(64, sizeof *p);
    if (p == NULL) return _mp_xfail(NULL, MP_ENOMEM);
    memset(p, 0, sizeof *p);
    p->l = l;
    p->flags = flags;
    p->chunk_of = ~(uintptr_t)(l.chunk_bytes - 1);
    p->gmask = ((uintptr_t)1 << l.sshift) - 1;
    p->vmask = p->chunk_of | p->gmask;
    p->sshift = l.sshift;
    p->kshift = (uint32_t)__builtin_ctzll(l.chunk_bytes);
    /* Default cache: 128 KiB worth of objects, 32 to 1024 of them.  Big
     * batches also keep threads' fresh objects - and their state bytes,
     * 64 to a cache line - apart.  With a cap, at most a sixteenth of it:
     * what a thread caches counts toward the cap, and one thread's refill
     * of half a default cache took all 16 objects of a pool capped at 16,
     * so that every other thread got MP_ELIMIT with none allocated. */
    size_t def = ((size_t)128 << 10) / l.stride;
    def = def < 32 ? 32 : def > 1024 ? 1024 : def;
    if (max && def > max / 16) def = max / 16 ? max / 16 : 1;
    p->cache_cap = (uint32_t)(cache_size ? cache_size : def);
    p->batch = p->cache_cap / 2 ? p->cache_cap / 2 : 1;
    p->max = max ? max : SIZE_MAX;
    p->lock = (mp_lock_t)MP_LOCK_INIT;
    p->id = _mp_xreg_add(p, XK_POOL, &p->lock, pool_detach, &p->tag);
    if (p->id == UINT32_MAX) {
        mp_free(p);
        return _mp_xfail(NULL, MP_ENOMEM);
    }
    while (p->capacity < initial) {
        r = pool_add_chunk(p);
        if (r != MP_OK) {
            mp_pool_destroy(p);
            return _mp_xfail(NULL, MP_ENOMEM);
        }
    }
    return p;
}

static MP_NOINLINE void *pool_alloc_slow(mp_pool_t *p) {
    int code = MP_OK;
    pool_cache_t *c = pool_cache_get(p);
    pool_slot_t s;
    if (c == NULL) {                     /* no cache: one object from the store */
        mp_lock(&p->lock);
        uint32_t got = pool_take(p, &s, 1, &code);
        mp_unlock(&p->lock);
        if (got == 0) return _mp_xfail(&p->err, code);
    } else {
        uint32_t n = pool_count(c);
        if (n == 0) {
            mp_lock(&p->lock);
            n = pool_take(p, c->slot, p->batch, &code);
            mp_unlock(&p->lock);
            if (n == 0) return _mp_xfail(&p->err, code);
        }
        s = c->slot[--n];
        pool_set_count(c, n);
    }
    atomic_store_explicit(s.st, XS_LIVE, memory_order_relaxed);
    if (p->flags & MP_FLAG_POISON) _mp_xpoison_check(&p->err, s.obj, s.obj, p->l.stride);
    return s.obj;
}

/* Pop the newest of c's cached objects; top (c->top) is not 0. */
MP_INLINE void *pool_pop(pool_cache_t *c, uint32_t top) {
    top -= (uint32_t)sizeof(pool_slot_t);
    pool_slot_t *s = pool_at(c, top);
    atomic_store_explicit(&c->top, top, memory_order_relaxed);
    atomic_store_explicit(s->st, XS_LIVE, memory_order_relaxed);
    return s->obj;
}

/* The calling thread's cache of p if the fast paths may use it, else NULL
 * (no cache yet, a poisoning pool, or p NULL - the slow paths sort out which). */
MP_INLINE pool_cache_t *pool_cache_hit(mp_pool_t *p) {
    if (MP_UNLIKELY(p == NULL)) return NULL;
    mp_xtls_t *t = _mp_xtls;
    uint32_t id = p->id;
    if (MP_UNLIKELY(id >= t->cap)) return NULL;
    pool_cache_t *c = (pool_cache_t *)t->ent[id];
    return MP_LIKELY(c->x.stamp == p->tag) ? c : NULL;
}

static MP_NOINLINE void *pool_alloc_null(void) { return _mp_xfail(NULL, MP_EINVAL); }

void *mp_pool_alloc(mp_pool_t *p) {
    pool_cache_t *c = pool_cache_hit(p);
    if (MP_LIKELY(c != NULL)) {
        uint32_t top = atomic_load_explicit(&c->top, memory_order_relaxed);
        if (MP_LIKELY(top != 0)) return pool_pop(c, top);
    }
    return p != NULL ? pool_alloc_slow(p) : pool_alloc_null();
}

/* Push a freed object (its state already XS_FREE) into c, flushing half of
 * c first when it is full. */
MP_INLINE int pool_cache_push(mp_pool_t *p, pool_cache_t *c, void *obj, _Atomic uint8_t *st) {
    if (MP_UNLIKELY(atomic_load_explicit(&c->top, memory_order_relaxed) == c->end))
        pool_cache_drain(p, c, p->batch);
    uint32_t n = pool_count(c);
    c->slot[n].obj = obj;
    c->slot[n].st = st;
    pool_set_count(c, n + 1);
    return MP_OK;
}

/* Validate obj fully, then free it into the calling thread's cache (or the
 * store when the thread has none). */
static MP_NOINLINE int pool_free_slow(mp_pool_t *p, void *obj) {
    if (p == NULL) return _mp_xrefuse(NULL, MP_EINVAL);
    if (obj == NULL) return _mp_xrefuse(&p->err, MP_EINVAL);
    uintptr_t o = (uintptr_t)obj;
    mp_xchunk_t *ch = mp_xchunk_find(o, ~p->chunk_of, MP_XMAGIC_POOL, p);
    if (ch == NULL) return _mp_xrefuse(&p->err, MP_EFOREIGN);
    if (o & p->gmask) return _mp_xrefuse(&p->err, MP_EINTERIOR);
    _Atomic uint8_t *st = mp_xstate((uintptr_t)ch, o, p->sshift);
    uint8_t e = XS_LIVE;
    if (!atomic_compare_exchange_strong_explicit(st, &e, XS_FREE, memory_order_relaxed,
                                                 memory_order_relaxed))
        return _mp_xrefuse(&p->err, e == XS_FREE ? MP_EDOUBLEFREE : MP_EINTERIOR);
    if (p->flags & MP_FLAG_POISON) _mp_xpoison(obj, p->l.stride);
    pool_cache_t *c = pool_cache_get(p);
    if (c == NULL) {
        mp_lock(&p->lock);
        p->store[p->store_n++] = obj;
        mp_unlock(&p->lock);
        return MP_OK;
    }
    c->known[((uintptr_t)ch >> p->kshift) & (POOL_KNOWN - 1)] = (uintptr_t)ch;
    c->last = (uintptr_t)ch;
    c->last_sdelta = ch->sdelta;
    return pool_cache_push(p, c, obj, st);
}

/* A free whose state byte held e, not XS_LIVE: refuse it. */
static MP_NOINLINE int pool_refuse(pool_cache_t *c, uint8_t e) {
    return _mp_xrefuse(&c->pool->err, e == XS_FREE ? MP_EDOUBLEFREE : MP_EINTERIOR);
}

/* Mark the object whose state byte is st free: true, or false with *e the
 * state it had (then the free is refused).  Atomic, so that of two threads
 * freeing one object at once exactly one succeeds. */
MP_INLINE bool pool_mark_free(_Atomic uint8_t *st, uint8_t *e) {
    *e = XS_LIVE;
    return atomic_compare_exchange_strong_explicit(st, e, XS_FREE, memory_order_relaxed,
                                                   memory_order_relaxed);
}

/* The fast path's chunk test failed: a chunk this cache knows (no page-map
 * lookup), else the full check. */
static MP_NOINLINE int pool_free_known(pool_cache_t *c, void *obj) {
    mp_pool_t *p = c->pool;
    uintptr_t o = (uintptr_t)obj, ch = o & p->chunk_of;
    if (c->known[(ch >> p->kshift) & (POOL_KNOWN - 1)] != ch || (o & p->gmask) != 0)
        return pool_free_slow(p, obj);
    c->last = ch;
    c->last_sdelta = ((mp_xchunk_t *)ch)->sdelta;
    _Atomic uint8_t *st = (_Atomic uint8_t *)((o >> p->sshift) + c->last_sdelta);
    uint8_t e;
    if (!pool_mark_free(st, &e)) return pool_refuse(c, e);
    return pool_cache_push(p, c, obj, st);
}

static MP_NOINLINE int pool_free_full(pool_cache_t *c, void *obj, _Atomic uint8_t *st) {
    return pool_cache_push(c->pool, c, obj, st);
}

/* Free obj into c, the calling thread's cache of its pool. */
MP_INLINE int pool_free_into(pool_cache_t *c, void *obj) {
    uintptr_t o = (uintptr_t)obj;
    /* obj is on a granule of the chunk this thread freed into last */
    if (MP_UNLIKELY((o & c->vmask) != c->last)) return pool_free_known(c, obj);
    _Atomic uint8_t *st = (_Atomic uint8_t *)((o >> c->sshift) + c->last_sdelta);
    uint8_t e;
    if (MP_UNLIKELY(!pool_mark_free(st, &e))) return pool_refuse(c, e);
    uint32_t top = atomic_load_explicit(&c->top, memory_order_relaxed);
    if (MP_UNLIKELY(top == c->end)) return pool_free_full(c, obj, st);
    pool_slot_t *s = pool_at(c, top);
    s->obj = obj;
    s->st = st;
    atomic_store_explicit(&c->top, top + (uint32_t)sizeof(pool_slot_t), memory_order_relaxed);
    return MP_OK;
}

int mp_pool_free(mp_pool_t *p, void *obj) {
    pool_cache_t *c = pool_cache_hit(p);
    if (MP_LIKELY(c != NULL)) return pool_free_into(c, obj);
    return pool_free_slow(p, obj);
}

/* ---- the thread's cache as a handle ------------------------------------------ */
/* The handle's calls skip the per-thread table: one comparison proves the
 * caller is the cache's thread.  The thread pointer is that proof: it is
 * the thread's own and is reused only after the thread has exited, by when
 * its caches have been freed.  Any other caller - or any call
 * on a poisoning pool's cache, whose owner is NULL - goes through the
 * pool's ordinary calls, which use the caller's own cache. */
mp_pool_cache_t *mp_pool_cache(mp_pool_t *p) {
    if (p == NULL) return _mp_xfail(NULL, MP_EINVAL);
    pool_cache_t *c = pool_cache_get(p);
    return c != NULL ? c : _mp_xfail(&p->err, MP_ENOMEM);
}

static MP_NOINLINE void *pool_cache_alloc_slow(pool_cache_t *c) {
    return c != NULL ? pool_alloc_slow(c->pool) : pool_alloc_null();
}

void *mp_pool_cache_alloc(mp_pool_cache_t *c) {
    if (MP_LIKELY(c != NULL && c->owner == pool_self())) {
        uint32_t top = atomic_load_explicit(&c->top, memory_order_relaxed);
        if (MP_LIKELY(top != 0)) return pool_pop(c, top);
    }
    return pool_cache_alloc_slow(c);
}

int mp_pool_cache_free(mp_pool_cache_t *c, void *obj) {
    if (MP_LIKELY(c != NULL && c->owner == pool_self())) return pool_free_into(c, obj);
    return c != NULL ? mp_pool_free(c->pool, obj) : _mp_xrefuse(NULL, MP_EINVAL);
}

int mp_pool_flush(mp_pool_t *p) {
    if (p == NULL) return _mp_xrefuse(NULL, MP_EINVAL);
    mp_xtls_t *t = _mp_xtls;
    if (p->id < t->cap && t->ent[p->id]->tag == p->tag) {
        pool_cache_t *c = (pool_cache_t *)t->ent[p->id];
        pool_cache_drain(p, c, pool_count(c));
    }
    return MP_OK;
}

void mp_pool_destroy(mp_pool_t *p) {
    if (p == NULL) return;
    _mp_xreg_remove(p->id, p->tag);
    for (mp_xchunk_t *c = p->chunks, *next; c; c = next) {
        next = c->next;
        _mp_xchunk_free(c);
    }
    mp_free(p->store);
    mp_free(p);
}

int mp_pool_stats(mp_pool_t *p, mp_pool_stats_t *st) {
    if (p == NULL || st == NULL) return _mp_xrefuse(p ? &p->err : NULL, MP_EINVAL);
    memset(st, 0, sizeof *st);
    size_t cached = 0;
    mp_lock(&p->lock);
    for (pool_cache_t *c = p->caches; c; c = c->next)
        cached += pool_count(c);
    /* (a cache's count is read without its thread's cooperation: clamp) */
    st->allocated = p->carved >= p->store_n + cached ? p->carved - p->store_n - cached : 0;
    st->capacity = p->capacity;
    st->chunks = p->nchunks;
    st->threads = p->ncaches;
    mp_unlock(&p->lock);
    st->free = st->capacity - st->allocated;
    st->cached = cached;
    st->obj_size = p->l.stride;
    st->bytes = st->chunks * p->l.chunk_bytes;
    _mp_xcounters_read(&p->err, &st->errors);
    return MP_OK;
}
