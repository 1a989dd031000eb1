/* test_os.c - the OS layer: aligned regions, decommit, page size (os.c). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "internal.h"
#include "mempool.h"

TEST(page_size) {
    mp_ensure_init();
    CHECK_EQ(_mp_os_page, (size_t)sysconf(_SC_PAGESIZE));
    CHECK(mp_is_pow2(_mp_os_page));
}

TEST(aligned_regions) {
    for (size_t align = _mp_os_page; align <= ((size_t)128 << 20); align *= 4) {
        size_t size = 3 * MP_PAGE_SIZE;
        char *p = _mp_os_alloc(size, align);
        REQUIRE(p != NULL);
        CHECK_EQ((uintptr_t)p % align, 0);
        CHECK_EQ(p[0], 0);
        CHECK_EQ(p[size - 1], 0);
        memset(p, 7, size);
        _mp_os_free(p, size);
    }
}

TEST(decommit_zeroes) {
    size_t size = 64 * MP_PAGE_SIZE;
    char *p = _mp_os_alloc(size, MP_PAGE_SIZE);
    REQUIRE(p != NULL);
    memset(p, 9, size);
    CHECK(_mp_os_decommit(p, size));
    CHECK_EQ(p[0], 0);
    CHECK_EQ(p[size / 2], 0);
    /* A range smaller than an OS page, not aligned to one, is refused. */
    CHECK(!_mp_os_decommit(p + 1, 16));
    _mp_os_free(p, size);
}

TEST(fatal_message_format) {
    char b[40];
    size_t n = _mp_fmt_hex(b, 0x7ffd1234abcdull);
    b[n] = 0;
    CHECK(strcmp(b, "0x7ffd1234abcd") == 0);
    n = _mp_fmt_u64(b, 18446744073709551615ull);
    b[n] = 0;
    CHECK(strcmp(b, "18446744073709551615") == 0);
}

/* fork() while another thread is inside _mp_meta_alloc (a new thread's
 * cache, a new span record): the fork handlers must wait for its lock, or
 * the child inherits it held by a thread it does not have, and its next
 * metadata allocation waits forever. */
static atomic_int meta_held;
static void *meta_holder(void *arg) {
    (void)arg;
    _mp_meta_lock();
    atomic_store(&meta_held, 1);
    usleep(200 * 1000);
    _mp_meta_unlock(false);
    return NULL;
}

TEST(fork_takes_the_meta_lock) {
    mp_ensure_init();
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, meta_holder, NULL) == 0);
    while (!atomic_load(&meta_held)) usleep(100);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        alarm(10);
        void *m = _mp_meta_alloc(64);
        /* The raw exit: under TSAN, _exit would report the holder thread,
         * which this child does not have, as leaked. */
        syscall(SYS_exit_group, m != NULL ? 0 : 1);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s %d",
              WIFSIGNALED(st) ? "killed by signal" : "exited with", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    pthread_join(t, NULL);
}

/* free() must leave errno alone (POSIX.1-2024), and frees take locks: a
 * contended lock's futex wait fails with EAGAIN whenever the lock changed
 * hands before the thread slept, and that errno leaked out of free (a
 * review's repro: 4 threads freeing with MEMPOOL_CHECK=1, EAGAIN within
 * milliseconds).  Four threads here take one lock until errno survives
 * 200,000 rounds each, or not. */
static mp_lock_t contended = MP_LOCK_INIT;
static _Atomic int errno_seen;

static void *lock_hammer(void *arg) {
    (void)arg;
    for (int i = 0; i < 200000 && !atomic_load(&errno_seen); i++) {
        errno = 12345;
        mp_lock(&contended);
        mp_unlock(&contended);
        if (errno != 12345) atomic_store(&errno_seen, errno);
    }
    return NULL;
}

TEST(lock_keeps_errno) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) REQUIRE(pthread_create(&t[i], NULL, lock_hammer, NULL) == 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    int seen = atomic_load(&errno_seen);
    CHECK_EQ(seen, 0);
}

int main(void) {
    RUN(page_size);
    RUN(aligned_regions);
    RUN(decommit_zeroes);
    RUN(fatal_message_format);
    RUN(fork_takes_the_meta_lock);
    RUN(lock_keeps_errno);
    return harness_summary();
}
