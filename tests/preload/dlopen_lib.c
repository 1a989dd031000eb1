/* dlopen_lib.c - dlopen libmempool.so into a running, threaded program
 * (run WITHOUT LD_PRELOAD: argv[1] is the library).  An initial-exec TLS
 * block too big for glibc's static TLS reserve would fail here with "cannot
 * allocate memory in static TLS block".  Threads started before the dlopen
 * then use the library's mp_malloc/mp_free.  Then dlclose(): a thread that
 * used the library exits after it, which runs the library's thread-exit
 * destructor (a crash if dlclose had unmapped the library).  Exit 0 on
 * success. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
static malloc_fn mpm;
static free_fn mpf;
static pthread_barrier_t loaded;
static pthread_barrier_t used, closed;

static void *late_exit(void *arg) {
    (void)arg;
    void *p = mpm(100);
    mpf(p);
    pthread_barrier_wait(&used);
    pthread_barrier_wait(&closed);    /* exits after the dlclose */
    return p == NULL ? (void *)1 : NULL;
}

static void *worker(void *arg) {
    (void)arg;
    pthread_barrier_wait(&loaded);    /* started before the dlopen */
    for (int i = 0; i < 100000; i++) {
        char *p = mpm((size_t)(i % 5000) + 1);
        if (p == NULL) return (void *)1;
        p[0] = 1;
        mpf(p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: dlopen_lib path/to/libmempool.so\n"); return 2; }
    pthread_t t[4];
    pthread_barrier_init(&loaded, NULL, 5);
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, NULL);
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) { fprintf(stderr, "dlopen failed: %s\n", dlerror()); return 1; }
    mpm = (malloc_fn)dlsym(h, "mp_malloc");
    mpf = (free_fn)dlsym(h, "mp_free");
    if (!mpm || !mpf) { fprintf(stderr, "dlsym failed\n"); return 1; }
    pthread_barrier_wait(&loaded);
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += r != NULL;
    }
    pthread_t late;
    pthread_barrier_init(&used, NULL, 2);
    pthread_barrier_init(&closed, NULL, 2);
    pthread_create(&late, NULL, late_exit, NULL);
    pthread_barrier_wait(&used);
    if (dlclose(h) != 0) { fprintf(stderr, "dlclose failed: %s\n", dlerror()); return 1; }
    pthread_barrier_wait(&closed);
    void *r;
    pthread_join(late, &r);
    bad += r != NULL;
    printf("dlopen_lib: loaded %s with RTLD_LOCAL, 4 threads used it, one exited after "
           "dlclose: %s\n", argv[1], bad ? "FAILED" : "ok");
    return bad != 0;
}
