/*  latency.c - recent latency samples and their percentiles (sorted copy on demand: stats calls are
    rare, adds are hot). */
#include "broker/latency.h"
#include <stdlib.h>
#include <string.h>

void
kf_latency_add (kf_latency_t *self, int64_t us)
{
    self->samples [self->count++ % KF_LATENCY_SAMPLES] = us;
}

size_t
kf_latency_kept (const kf_latency_t *self)
{
    return self->count < KF_LATENCY_SAMPLES ? self->count : KF_LATENCY_SAMPLES;
}

static int
s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

int64_t
kf_latency_percentile (const kf_latency_t *self, double p)
{
    size_t kept = kf_latency_kept (self);
    if (kept == 0)
        return 0;
    int64_t *sorted = malloc (kept * sizeof (int64_t));
    if (!sorted)
        return 0;
    memcpy (sorted, self->samples, kept * sizeof (int64_t));
    qsort (sorted, kept, sizeof (int64_t), s_compare);
    size_t index = (size_t) (p / 100.0 * (kept - 1) + 0.5);
    int64_t value = sorted [index < kept ? index : kept - 1];
    free (sorted);
    return value;
}
