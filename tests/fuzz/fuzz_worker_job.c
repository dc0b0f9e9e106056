/*  fuzz_worker_job.c - libFuzzer target for the job a worker decodes (common/worker_proto.h):
    anything a broker of another version, or a hand-made job, could send. The input is one msgpack
    object. What decodes packs to a map that decodes to the same fields and packs again to the same
    bytes, every string it borrows lies inside the input, and at most KF_WP_TURNS_MAX turns are
    kept. */
#include "common/mpack.h"
#include "common/worker_proto.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_require (bool ok, const char *what)
{
    if (!ok) {
        fprintf (stderr, "fuzz_worker_job: invariant failed: %s\n", what);
        abort ();
    }
}

static void
s_pack (const kf_wp_job_t *job, msgpack_sbuffer *buffer)
{
    msgpack_sbuffer_init (buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    kf_wp_job_pack (job, &pk);
}

static bool
s_is_inside (kf_wp_str_t str, const char *base, size_t size)
{
    return !str.data || (str.data >= base && str.data + str.len <= base + size);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    msgpack_unpacked input;
    if (!kf_mp_unpack_borrowed ((const char *) data, size, &input))
        return 0;
    kf_wp_job_t first;
    bool is_map = kf_wp_job_decode (&input.data, &first);
    s_require (is_map == (input.data.type == MSGPACK_OBJECT_MAP), "decodes maps only");
    s_require (first.turn_total >= 0 && first.turn_total <= KF_WP_TURNS_MAX, "turns bounded");
    const kf_wp_str_t views [] = { first.method, first.message, first.bot_id, first.user_id,
                                   first.channel, first.keyword, first.session_id,
                                   first.upstream_conversation_id };
    for (size_t v = 0; v < sizeof views / sizeof views [0]; v++)
        s_require (s_is_inside (views [v], (const char *) data, size), "views inside the input");
    for (int t = 0; t < first.turn_total; t++)
        s_require (s_is_inside (first.turns [t].content, (const char *) data, size), "turns inside");
    s_require (!first.labels || first.labels->type == MSGPACK_OBJECT_MAP, "labels a map");
    msgpack_sbuffer once, twice;
    s_pack (&first, &once);
    msgpack_unpacked again;
    s_require (kf_mp_unpack_borrowed (once.data, once.size, &again), "packs to msgpack");
    kf_wp_job_t second;
    s_require (kf_wp_job_decode (&again.data, &second), "packs to a map");
    s_require (second.stream == first.stream && second.message.len == first.message.len
               && second.turn_total == first.turn_total && second.has_top_k == first.has_top_k
               && second.repeat_count == first.repeat_count && second.has_handoff == first.has_handoff
               && second.handoff.has_emotion_below == first.handoff.has_emotion_below,
               "decodes to the same fields");
    s_pack (&second, &twice);
    s_require (once.size == twice.size && memcmp (once.data, twice.data, once.size) == 0,
               "packs again to the same bytes");
    msgpack_unpacked_destroy (&again);
    msgpack_sbuffer_destroy (&once);
    msgpack_sbuffer_destroy (&twice);
    msgpack_unpacked_destroy (&input);
    return 0;
}
