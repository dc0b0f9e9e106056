/*  kb_gen_main.c - kb_gen: writes a generated knowledge base and queries over it (see kb_gen.h).
    kb_gen [--items N] [--queries N] [--seed S] ITEMS.jsonl [QUERIES.jsonl] */
#include "tests/bench/kb_gen.h"
#include <stdlib.h>
#include <string.h>

static const char *s_usage =
    "usage: kb_gen [--items N] [--queries N] [--seed S] ITEMS.jsonl [QUERIES.jsonl]\n";

int
main (int argc, char *argv [])
{
    int items = 100000, queries = 20000;
    uint64_t seed = 1;
    const char *paths [2] = { NULL, NULL };
    int path_count = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--items") == 0 && i + 1 < argc)
            items = atoi (argv [++i]);
        else
        if (strcmp (argv [i], "--queries") == 0 && i + 1 < argc)
            queries = atoi (argv [++i]);
        else
        if (strcmp (argv [i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull (argv [++i], NULL, 10);
        else
        if (argv [i][0] != '-' && path_count < 2)
            paths [path_count++] = argv [i];
        else {
            fprintf (stderr, "%s", s_usage);
            return 2;
        }
    }
    if (!paths [0]) {
        fprintf (stderr, "%s", s_usage);
        return 2;
    }
    FILE *out = fopen (paths [0], "w");
    if (!out || kf_kb_gen_items (out, items, seed) != 0) {
        fprintf (stderr, "kb_gen: cannot write %d items to %s\n", items, paths [0]);
        return 1;
    }
    fclose (out);
    if (paths [1]) {
        out = fopen (paths [1], "w");
        if (!out) {
            fprintf (stderr, "kb_gen: cannot write %s\n", paths [1]);
            return 1;
        }
        kf_kb_gen_queries (out, items, queries, seed);
        fclose (out);
    }
    return 0;
}
