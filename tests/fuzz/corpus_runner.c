/*  corpus_runner.c - runs a libFuzzer target without libFuzzer: every regular file of the corpus
    directories (or files) named on the command line, in name order, then a few built-in nasty
    inputs. Linked with one fuzz target per executable; a crash, an abort or a sanitizer report
    fails the test, a clean run prints "N files run" and exits 0. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  Runs the target on a heap copy of exactly `size` bytes, so that a read past the end is a
//  sanitizer report rather than a silent read of whatever follows.
static void
s_run (const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc (size ? size : 1);
    if (!copy) {
        fprintf (stderr, "corpus_runner: out of memory\n");
        abort ();
    }
    if (size)
        memcpy (copy, data, size);
    LLVMFuzzerTestOneInput (copy, size);
    free (copy);
}

//  Reads a whole file. Returns a heap buffer (caller frees) or NULL with errno set.
static uint8_t *
s_read_file (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    uint8_t *data = NULL;
    size_t used = 0, capacity = 0;
    while (true) {
        if (used == capacity) {
            capacity = capacity ? capacity * 2 : 4096;
            uint8_t *bigger = realloc (data, capacity);
            if (!bigger) {
                free (data);
                fclose (file);
                errno = ENOMEM;
                return NULL;
            }
            data = bigger;
        }
        size_t got = fread (data + used, 1, capacity - used, file);
        used += got;
        if (got == 0)
            break;
    }
    bool has_failed = ferror (file);
    fclose (file);
    if (has_failed) {
        free (data);
        errno = EIO;
        return NULL;
    }
    *size = used;
    return data;
}

//  Runs one file. Returns 0, or -1 when it cannot be read.
static int
s_run_file (const char *path)
{
    size_t size = 0;
    uint8_t *data = s_read_file (path, &size);
    if (!data) {
        fprintf (stderr, "corpus_runner: cannot read %s: %s\n", path, strerror (errno));
        return -1;
    }
    s_run (data, size);
    free (data);
    return 0;
}

static int
s_compare_names (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

//  Runs every regular file of `dir` in name order (not recursing). Returns the number run, or -1.
static int
s_run_dir (const char *dir)
{
    DIR *handle = opendir (dir);
    if (!handle) {
        fprintf (stderr, "corpus_runner: cannot open %s: %s\n", dir, strerror (errno));
        return -1;
    }
    char **paths = NULL;
    size_t count = 0, capacity = 0;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        char *path = NULL;
        struct stat info;
        if (asprintf (&path, "%s/%s", dir, entry->d_name) < 0)
            abort ();
        if (stat (path, &info) != 0 || !S_ISREG (info.st_mode)) {
            free (path);
            continue;
        }
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            paths = realloc (paths, capacity * sizeof *paths);
            if (!paths)
                abort ();
        }
        paths [count++] = path;
    }
    closedir (handle);
    qsort (paths, count, sizeof *paths, s_compare_names);
    int run = 0;
    bool has_failed = false;            //  An unreadable corpus file fails the whole run
    for (size_t i = 0; i < count; i++) {
        if (s_run_file (paths [i]) == 0)
            run++;
        else
            has_failed = true;
        free (paths [i]);
    }
    free (paths);
    return has_failed ? -1 : run;
}

//  Inputs every parser should survive, whatever its format: the first byte of each is tried
//  as is and behind every small selector byte, since targets often read one first.
static void
s_run_builtin (int *count)
{
    static uint8_t buffer [1 << 17];
    //  Empty, and every single byte
    s_run (buffer, 0);
    (*count)++;
    for (int b = 0; b < 256; b++) {
        buffer [0] = (uint8_t) b;
        s_run (buffer, 1);
        (*count)++;
    }
    //  Long runs of one byte: container openers nest, length prefixes claim what is not there
    static const uint8_t runs [] = { 0x91, 0x81, 0xdd, 0xdf, 0xdb, 0xc6, 0xff, 0x00, 0x80, '[', '{',
                                     '"', '\\', 0xe4 };
    static const size_t lengths [] = { 2, 33, 34, 4096, sizeof buffer - 1 };
    for (size_t r = 0; r < sizeof runs; r++)
        for (size_t l = 0; l < sizeof lengths / sizeof lengths [0]; l++)
            for (int selector = -1; selector < 4; selector++) {
                size_t start = selector < 0 ? 0 : 1;
                buffer [0] = (uint8_t) selector;
                memset (buffer + start, runs [r], lengths [l]);
                s_run (buffer, start + lengths [l]);
                (*count)++;
            }
    //  Huge declared lengths right after a selector byte
    static const uint8_t headers [][6] = {
        { 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff }, { 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff },
        { 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff }, { 0x01, 0xc9, 0xff, 0xff, 0xff, 0xff },
        { 0x01, 0x81, 0xa2, 'i', 'd', 0xdb },   { 0x05, 0xff, 'K', 'E', 'F', 'U' },
    };
    for (size_t h = 0; h < sizeof headers / sizeof headers [0]; h++) {
        s_run (headers [h], sizeof headers [h]);
        (*count)++;
    }
    //  Pseudo-random bytes (fixed seed: the run is reproducible)
    uint32_t state = 2463534242u;
    for (int round = 0; round < 64; round++) {
        size_t size = (size_t) 1 << (round % 14);
        for (size_t i = 0; i < size; i++) {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            buffer [i] = (uint8_t) state;
        }
        s_run (buffer, size);
        (*count)++;
    }
}

int
main (int argc, char *argv [])
{
    if (argc < 2) {
        fprintf (stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv [0]);
        return 2;
    }
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat info;
        if (stat (argv [i], &info) != 0) {
            fprintf (stderr, "corpus_runner: %s: %s\n", argv [i], strerror (errno));
            return 1;
        }
        int run = S_ISDIR (info.st_mode) ? s_run_dir (argv [i]) : s_run_file (argv [i]) == 0 ? 1 : -1;
        if (run < 0)
            return 1;
        files += run;
    }
    //  An empty corpus would make this test pass while testing nothing
    if (files == 0) {
        fprintf (stderr, "corpus_runner: no corpus files found\n");
        return 1;
    }
    int builtin = 0;
    s_run_builtin (&builtin);
    printf ("%d built-in inputs run\n", builtin);
    printf ("%d files run\n", files);
    return 0;
}
