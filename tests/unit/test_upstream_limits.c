/*  test_upstream_limits.c - the broker's LLM upstream limits when a worker names an upstream the
    broker's config does not: the default limits apply (64 slots, a queue of 256, then busy; a
    freed slot goes to the oldest waiting job), the upstream shows in stats, and past 16 such
    names jobs go unlimited rather than fail. */
#include "broker/upstream_limits.h"
#include "common/mpack.h"
#include "testutil.h"
#include <stdio.h>

static char s_granted [32];
static int s_grants;

static bool
s_on_grant (void *arg, const char *job_id, kf_grant_t grant)
{
    (void) arg;
    CHECK_INT (grant, KF_GRANT_OK);
    snprintf (s_granted, sizeof s_granted, "%s", job_id);
    s_grants++;
    return true;
}

int
main (void)
{
    kf_upstream_limits_t *limits = kf_upstream_limits_new (NULL, s_on_grant, NULL);
    char job [32];
    for (int i = 0; i < KF_CONFIG_DEFAULT_MAX_CONCURRENCY; i++) {
        snprintf (job, sizeof job, "j%d", i);
        CHECK_INT (kf_upstream_limits_acquire (limits, job, "qwen", 0), KF_GRANT_OK);
    }
    for (int i = 0; i < KF_CONFIG_DEFAULT_QUEUE; i++) {
        snprintf (job, sizeof job, "q%d", i);
        CHECK_INT (kf_upstream_limits_acquire (limits, job, "qwen", 0), KF_GRANT_QUEUED);
    }
    CHECK_INT (kf_upstream_limits_acquire (limits, "over", "qwen", 0), KF_GRANT_BUSY);
    //  A slot freed goes to the oldest waiting job
    kf_upstream_limits_release (limits, "j0", KF_OUTCOME_SUCCESS, 1000);
    CHECK_INT (s_grants, 1);
    CHECK_STR (s_granted, "q0");
    CHECK (kf_upstream_limits_holds (limits, "q0"));

    //  It is in stats like a configured upstream
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    kf_upstream_limits_pack (limits, &pk, 1000);
    msgpack_unpacked stats;
    CHECK (kf_mp_unpack_one (buffer.data, buffer.size, &stats));
    CHECK (stats.data.type == MSGPACK_OBJECT_ARRAY && stats.data.via.array.size == 1);
    CHECK (kf_mp_str_eq (&stats.data.via.array.ptr [0], "name", "qwen"));
    CHECK_INT (kf_mp_get_int (&stats.data.via.array.ptr [0], "open", 0), KF_CONFIG_DEFAULT_MAX_CONCURRENCY);
    msgpack_unpacked_destroy (&stats);
    msgpack_sbuffer_destroy (&buffer);

    //  Sixteen names get limits; the seventeenth goes unlimited (granted, not counted)
    for (int i = 1; i < 16; i++) {
        char name [16];
        snprintf (name, sizeof name, "other-%d", i);
        CHECK_INT (kf_upstream_limits_acquire (limits, name, name, 0), KF_GRANT_OK);
        CHECK (kf_upstream_limits_holds (limits, name));
    }
    CHECK_INT (kf_upstream_limits_acquire (limits, "seventeenth", "seventeenth", 0), KF_GRANT_OK);
    CHECK (!kf_upstream_limits_holds (limits, "seventeenth"));
    //  No name: nothing to limit
    CHECK_INT (kf_upstream_limits_acquire (limits, "nameless", "", 0), KF_GRANT_OK);
    kf_upstream_limits_destroy (&limits);
    CHECK (limits == NULL);
    printf ("test_upstream_limits: all checks passed\n");
    return 0;
}
