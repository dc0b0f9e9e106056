/*  test_worker_pool.c - the worker registry: least-loaded pick, capacity, heartbeat expiry, and the
    latency percentiles the broker reports. */
#include "broker/latency.h"
#include "broker/worker_pool.h"
#include "common/log.h"
#include "testutil.h"

int
main (void)
{
    kf_worker_pool_t *pool = kf_worker_pool_new (100, 3);     //  Lost after 300 ms of silence
    CHECK (kf_worker_pool_pick (pool) == NULL);
    kf_worker_t *a = kf_worker_pool_add (pool, "\x00\x01", 2, "a", 11, 2);
    kf_worker_t *b = kf_worker_pool_add (pool, "\x00\x02", 2, "b", 12, 3);
    CHECK (kf_worker_pool_lookup (pool, "\x00\x01", 2) == a);
    CHECK (kf_worker_pool_lookup (pool, "\x00\x03", 2) == NULL);
    //  Most free slots first; none when all are full
    CHECK (kf_worker_pool_pick (pool) == b);
    b->active = 2;
    CHECK (kf_worker_pool_pick (pool) == a);
    a->active = 2;
    b->active = 3;
    CHECK (kf_worker_pool_pick (pool) == NULL);
    //  Busy or not, a worker not heard from in time is expired
    kf_worker_pool_touch (pool, a, 1000000);
    kf_worker_pool_touch (pool, b, 1200000);
    CHECK (kf_worker_pool_expired (pool, 1250000) == NULL);
    CHECK (kf_worker_pool_expired (pool, 1300000) == a);
    kf_worker_pool_remove (pool, a);
    CHECK_INT (kf_worker_pool_size (pool), 1);
    CHECK (kf_worker_pool_expired (pool, 1300000) == NULL);
    CHECK (kf_worker_pool_expired (pool, 1500000) == b);
    kf_worker_pool_destroy (&pool);
    CHECK (pool == NULL);

    kf_latency_t latency = { { 0 }, 0 };
    CHECK_INT (kf_latency_percentile (&latency, 50), 0);
    for (int i = 1; i <= 100; i++)
        kf_latency_add (&latency, i * 10);
    CHECK_INT (kf_latency_percentile (&latency, 50), 510);
    CHECK_INT (kf_latency_percentile (&latency, 100), 1000);
    for (int i = 0; i < KF_LATENCY_SAMPLES; i++)       //  Old samples roll out
        kf_latency_add (&latency, 7);
    CHECK_INT (kf_latency_percentile (&latency, 99), 7);
    CHECK_INT (kf_latency_kept (&latency), KF_LATENCY_SAMPLES);
    TEST_PASS ("test_worker_pool");
    return 0;
}
