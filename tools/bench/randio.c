/* roam-bench-randio write|read FILE NOPS SEED: the randio workload of
   tools/bench/bench. NOPS random 4 KiB pwrites (then one fsync) or preads at
   4 KiB-aligned offsets of FILE; the offsets and the bytes written are the
   same for a given SEED, so every target gets the same work. Exits 0 on
   success, 1 on an I/O error (said on stderr), 2 on bad usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { kBlock = 4096, kWords = kBlock / 8 };

/* xorshift64*: fast, and the same sequence everywhere for a seed. */
static uint64_t next_random(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ULL;
}

/* One pwrite of fresh random words, or one pread, at a random block of the
   file. Returns 0, or 1 after saying what failed. */
static int one_op(int fd, int write_op, uint64_t blocks, uint64_t *state, uint64_t buf[kWords]) {
    const off_t off = (off_t)(next_random(state) % blocks) * kBlock;
    ssize_t n;
    if (write_op) {
        for (int k = 0; k < kWords; k++) buf[k] = next_random(state);
        n = pwrite(fd, buf, kBlock, off);
    } else {
        n = pread(fd, buf, kBlock, off);
    }
    if (n == kBlock) return 0;
    fprintf(stderr, "%s at %lld: %s\n", write_op ? "pwrite" : "pread", (long long)off,
            n < 0 ? strerror(errno) : "short");
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: roam-bench-randio write|read FILE NOPS SEED\n");
        return 2;
    }
    const int write_op = strcmp(argv[1], "write") == 0;
    const long nops = atol(argv[3]);
    uint64_t state = strtoull(argv[4], NULL, 10) * 0x9E3779B97F4A7C15ULL + 1;
    const int fd = open(argv[2], write_op ? O_RDWR : O_RDONLY);
    if (fd < 0) {
        perror(argv[2]);
        return 1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < kBlock) {
        fprintf(stderr, "%s: too small\n", argv[2]);
        return 1;
    }
    const uint64_t blocks = (uint64_t)st.st_size / kBlock;
    uint64_t buf[kWords], sum = 0;
    for (long i = 0; i < nops; i++) {
        if (one_op(fd, write_op, blocks, &state, buf) != 0) return 1;
        if (!write_op) sum += buf[i % kWords];
    }
    if (write_op && fsync(fd) != 0) {
        perror("fsync");
        return 1;
    }
    if (close(fd) != 0) {
        perror("close");
        return 1;
    }
    return sum == 42 ? 3 : 0; /* keeps the sum of what was read alive */
}
