/*  clock.h - wall-clock and monotonic time in the units kefu uses. */
#ifndef KF_CLOCK_H
#define KF_CLOCK_H
#include <stdint.h>

//  Milliseconds since the Unix epoch (for stored timestamps).
int64_t kf_now_ms (void);

//  Monotonic microseconds (for deadlines, heartbeats and latencies).
int64_t kf_mono_us (void);

//  Monotonic milliseconds.
static inline int64_t kf_mono_ms (void) { return kf_mono_us () / 1000; }
#endif
