/*  bench.c - `kefuctl bench`: placeholder until the load generator lands. */
#include "kefuctl/kefuctl.h"
#include <stdio.h>

int
kefuctl_bench (const kefuctl_options_t *options, int argc, char **argv)
{
    (void) options, (void) argc, (void) argv;
    fprintf (stderr, "kefuctl bench: not built yet\n");
    return 2;
}
