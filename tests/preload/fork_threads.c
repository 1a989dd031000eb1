/* fork_threads.c - fork() while other threads allocate (run under
 * LD_PRELOAD=libmempool.so).  The child must be able to allocate and free;
 * a deadlock in the allocator's fork handling hangs the child, which the
 * parent detects with a timeout.  Exit 0 on success. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;

static void *churn(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *keep[64] = { 0 };
    while (!atomic_load(&stop)) {
        int i = (int)(rand_r(&seed) % 64);
        free(keep[i]);
        size_t n = 1 + rand_r(&seed) % (rand_r(&seed) % 16 == 0 ? 400000 : 2000);
        keep[i] = malloc(n);
        if (keep[i]) memset(keep[i], i, n < 64 ? n : 64);
    }
    for (int i = 0; i < 64; i++) free(keep[i]);
    return NULL;
}

int main(void) {
    enum { THREADS = 4, FORKS = 200 };
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
    int failures = 0;
    for (int f = 0; f < FORKS; f++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) {
            /* the child: allocate, use, free, in all size ranges */
            for (int i = 0; i < 200; i++) {
                size_t n = (size_t)(i * 997) % 300000 + 1;
                char *p = malloc(n);
                if (!p) _exit(3);
                memset(p, 1, n);
                free(p);
            }
            _exit(0);
        }
        /* wait at most 10 s for the child */
        int status = 0, waited = 0;
        while (waitpid(pid, &status, WNOHANG) == 0) {
            if (++waited > 10000) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                fprintf(stderr, "fork %d: child hung (deadlock after fork)\n", f);
                failures++;
                break;
            }
            usleep(1000);
        }
        if (waited <= 10000 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
            fprintf(stderr, "fork %d: child failed (status %d)\n", f, status);
            failures++;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    printf("fork_threads: %d forks, %d failures\n", FORKS, failures);
    return failures != 0;
}
