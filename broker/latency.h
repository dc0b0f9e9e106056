/*  latency.h - a ring of recent latency samples with percentiles, for stats. */
#ifndef KF_LATENCY_H
#define KF_LATENCY_H
#include <stddef.h>
#include <stdint.h>

#define KF_LATENCY_SAMPLES 8192     //  Recent enough to track load changes, small enough to sort

typedef struct {
    int64_t samples [KF_LATENCY_SAMPLES];   //  Microseconds
    size_t count;                           //  Samples ever added
} kf_latency_t;

//  Records one sample in microseconds.
void kf_latency_add (kf_latency_t *self, int64_t us);

//  Returns the p-th percentile (0..100) of the kept samples in microseconds, 0 when empty.
int64_t kf_latency_percentile (const kf_latency_t *self, double p);

//  Number of kept samples.
size_t kf_latency_kept (const kf_latency_t *self);
#endif
