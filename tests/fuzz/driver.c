/*
 * driver.c - a main for a libFuzzer-style target (LLVMFuzzerTestOneInput),
 * for builds without libFuzzer: `make test` runs the fuzz targets through it
 * with gcc, deterministically.
 *
 *   fuzz_X [--runs N] [--seed S] [--max-len L] [FILE | DIR]...
 *   fuzz_X --hex FILE|DIR...          print the inputs, one hex line each
 *   fuzz_X --unpack DIR FILE.corpus   write each input to a file in DIR
 *
 * First every FILE (and every regular file in each DIR: a corpus, or a crash
 * input saved by libFuzzer) is run as one input - a FILE named *.corpus
 * holds many, one per line in hex (tests/fuzz/X.corpus: libFuzzer's
 * corpus, merged to the inputs that add coverage and packed by --hex, which
 * keeps hundreds of inputs in one file; --unpack turns it back into the
 * directory libFuzzer wants, see the Makefile's fuzz targets); then N inputs (default
 * 1000) of 1..L random bytes (default 512) from a splitmix64 generator seeded
 * with S (default 1).  Random bytes are a blind fuzzer next to libFuzzer's
 * coverage guidance, but the same seed always gives the same inputs, so a
 * failure here replays exactly: each generated input is written, before it
 * runs, to $FUZZ_FAILURE (default ./fuzz-failure.bin), which is removed
 * when all have passed; pass that file back to replay the failure.
 *
 * Prints "fuzz: <n> inputs from files, <runs> generated (seed S, up to L
 * bytes)" and "N passed, 0 failed"; a failing input aborts in the target.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *failure_file;

static void usage(void) {
    fprintf(stderr, "usage: fuzz_X [--runs N] [--seed S] [--max-len L] [FILE | DIR]...\n"
                    "       fuzz_X --hex FILE|DIR...\n"
                    "       fuzz_X --unpack DIR FILE.corpus\n");
    exit(2);
}

static unsigned long parse_num(const char *s) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s ? s : "", &end, 10);
    if (s == NULL || *s == '\0' || *end != '\0' || errno) usage();
    return v;
}

static uint64_t next_rand(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Keep a copy of the input about to run, so that a crash leaves it behind. */
static void save(const uint8_t *d, size_t n) {
    FILE *f = fopen(failure_file, "wb");
    if (f == NULL) return;
    if (n) fwrite(d, 1, n, f);
    fclose(f);
}

/* What to do with each input read from the command line. */
static enum { RUN, HEX, UNPACK } mode = RUN;
static const char *unpack_dir;
static unsigned long unpacked;

static void one_input(const uint8_t *d, size_t n) {
    if (mode == RUN) {
        LLVMFuzzerTestOneInput(d, n);
    } else if (mode == HEX) {
        for (size_t i = 0; i < n; i++) printf("%02x", d[i]);
        putchar('\n');
    } else {
        char name[4096];
        snprintf(name, sizeof name, "%s/seed-%05lu", unpack_dir, unpacked++);
        FILE *f = fopen(name, "wb");
        if (f == NULL || (n && fwrite(d, 1, n, f) != n) || fclose(f) != 0) {
            fprintf(stderr, "fuzz: cannot write %s\n", name);
            exit(1);
        }
    }
}

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            buf = realloc(buf, cap + 1);
            if (buf == NULL) exit(1);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;
        n += got;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

static int hex_digit(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A .corpus file: one input per line, in hex (an empty line is the empty
 * input).  Each line is decoded in place, two digits to a byte. */
static int run_corpus(const char *path, char *text) {
    int count = 0, line = 0;
    for (char *s = text; *s;) {
        char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        line++;
        if (len % 2) {
            fprintf(stderr, "fuzz: %s:%d: odd number of hex digits\n", path, line);
            exit(1);
        }
        uint8_t *d = (uint8_t *)s;
        for (size_t i = 0; i < len / 2; i++) {
            int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                fprintf(stderr, "fuzz: %s:%d: not hex\n", path, line);
                exit(1);
            }
            d[i] = (uint8_t)(hi << 4 | lo);
        }
        one_input(d, len / 2);
        count++;
        s += len + (nl != NULL);
    }
    return count;
}

static int run_file(const char *path) {
    size_t n;
    uint8_t *buf = read_all(path, &n);
    size_t pl = strlen(path);
    int count = 1;
    if (pl > 7 && strcmp(path + pl - 7, ".corpus") == 0) count = run_corpus(path, (char *)buf);
    else one_input(buf, n);
    free(buf);
    return count;
}

static int run_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    if (!S_ISDIR(st.st_mode)) return run_file(path);
    DIR *d = opendir(path);
    if (d == NULL) exit(1);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) count += run_file(full);
    }
    closedir(d);
    return count;
}

int main(int argc, char **argv) {
    unsigned long runs = 1000, seed = 1, max_len = 512;
    int files = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0) runs = parse_num(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0) seed = parse_num(argv[++i]);
        else if (strcmp(argv[i], "--max-len") == 0) max_len = parse_num(argv[++i]);
        else if (strcmp(argv[i], "--hex") == 0) mode = HEX;
        else if (strcmp(argv[i], "--unpack") == 0 && i + 1 < argc) mode = UNPACK, unpack_dir = argv[++i];
        else if (argv[i][0] == '-') usage();
        else files += run_path(argv[i]);
    }
    if (mode != RUN) return 0;
    if (max_len == 0) usage();
    failure_file = getenv("FUZZ_FAILURE");
    if (failure_file == NULL || *failure_file == '\0') failure_file = "fuzz-failure.bin";
    uint8_t *buf = malloc(max_len);
    if (buf == NULL) return 1;
    uint64_t rng = seed;
    for (unsigned long r = 0; r < runs; r++) {
        size_t n = 1 + (size_t)(next_rand(&rng) % max_len);
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = next_rand(&rng);
            memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
        }
        save(buf, n);
        LLVMFuzzerTestOneInput(buf, n);
    }
    free(buf);
    remove(failure_file);
    printf("fuzz: %d inputs from files, %lu generated (seed %lu, up to %lu bytes)\n", files, runs,
           seed, max_len);
    printf("%lu passed, 0 failed\n", (unsigned long)files + runs);
    return 0;
}
