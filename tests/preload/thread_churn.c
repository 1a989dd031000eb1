/* thread_churn.c - 10,000 short-lived threads, each allocating and freeing
 * (run under LD_PRELOAD=libmempool.so): every exiting thread must give its
 * cache back, so resident memory stays bounded.  Exit 0 on success. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static void *worker(void *arg) {
    (void)arg;
    void *p[200];
    for (int i = 0; i < 200; i++) {
        p[i] = malloc((size_t)(i * 37) % 3000 + 1);
        memset(p[i], 7, 1);
    }
    for (int i = 0; i < 200; i++) free(p[i]);
    return NULL;
}

int main(void) {
    enum { TOTAL = 10000, BATCH = 16 };
    long after_warmup = 0;
    for (int done = 0; done < TOTAL; done += BATCH) {
        pthread_t t[BATCH];
        for (int i = 0; i < BATCH; i++)
            if (pthread_create(&t[i], NULL, worker, NULL) != 0) { perror("pthread_create"); return 1; }
        for (int i = 0; i < BATCH; i++) pthread_join(t[i], NULL);
        if (done == 50 * BATCH) after_warmup = rss_kb();
    }
    long end = rss_kb();
    printf("thread_churn: %d threads, VmRSS %ld kB after warm-up, %ld kB at the end\n", TOTAL,
           after_warmup, end);
    /* Leaking each thread's cache would cost megabytes here. */
    if (end > after_warmup + 8192) {
        fprintf(stderr, "thread_churn: memory grew by %ld kB\n", end - after_warmup);
        return 1;
    }
    return 0;
}
