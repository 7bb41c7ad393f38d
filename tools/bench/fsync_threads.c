/* roam-bench-fsync DIR THREADS FILES: the fsync workload of tools/bench/bench.
   THREADS threads each create FILES files of their own in DIR, each one
   create + one 4 KiB write + fsync + close: what a mail store, a package
   manager or many small databases do. Run with 1 and with 8 threads, the
   times show whether concurrent fsyncs share a flush (group commit). Prints
   nothing; exits 0 on success, 1 on an I/O error (said on stderr), 2 on bad
   usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kBlock = 4096, kMaxThreads = 64 };

struct worker {
    const char *dir;
    int index;
    long files;
    int failed;
};

/* One thread's files: DIR/t<index>-<n>. */
static void *run_worker(void *arg) {
    struct worker *w = arg;
    char buf[kBlock];
    memset(buf, 'a' + w->index % 26, sizeof buf);
    for (long n = 0; n < w->files; n++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/t%d-%ld", w->dir, w->index, n);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        const char *what = "open";
        if (fd >= 0) {
            what = pwrite(fd, buf, kBlock, 0) != kBlock ? "pwrite" : fsync(fd) != 0 ? "fsync" : NULL;
            if (close(fd) != 0 && what == NULL) what = "close";
        }
        if (what != NULL) {
            fprintf(stderr, "%s %s: %s\n", what, path, strerror(errno));
            w->failed = 1;
            return NULL;
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: roam-bench-fsync DIR THREADS FILES\n");
        return 2;
    }
    const int threads = atoi(argv[2]);
    const long files = atol(argv[3]);
    if (threads < 1 || threads > kMaxThreads || files < 1) {
        fprintf(stderr, "roam-bench-fsync: THREADS must be 1..%d and FILES at least 1\n", kMaxThreads);
        return 2;
    }
    pthread_t ids[kMaxThreads];
    struct worker workers[kMaxThreads];
    for (int i = 0; i < threads; i++) {
        workers[i] = (struct worker){argv[1], i, files, 0};
        if (pthread_create(&ids[i], NULL, run_worker, &workers[i]) != 0) {
            fprintf(stderr, "roam-bench-fsync: cannot start thread %d\n", i);
            return 1;
        }
    }
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        failed |= workers[i].failed;
    }
    return failed;
}
