/*  fuzz_worker_result.c - libFuzzer target for the chat result a worker's FINAL carries, as the
    broker decodes it (common/worker_proto.h): anything a worker of another version, a third
    party's or a broken one could send. The input is one msgpack object. What decodes packs to a
    map that decodes to the same fields and packs again to the same bytes, and every string it
    borrows lies inside the input. */
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
        fprintf (stderr, "fuzz_worker_result: invariant failed: %s\n", what);
        abort ();
    }
}

static void
s_pack (const kf_wp_result_t *result, msgpack_sbuffer *buffer)
{
    msgpack_sbuffer_init (buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    kf_wp_result_pack (result, &pk);
}

//  True when a borrowed view lies inside [base, base + size)
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
    kf_wp_result_t first;
    bool is_map = kf_wp_result_decode (&input.data, &first);
    s_require (is_map == (input.data.type == MSGPACK_OBJECT_MAP), "decodes maps only");
    const kf_wp_str_t views [] = { first.reply, first.response_type, first.intent, first.upstream,
                                   first.upstream_conversation_id, first.upstream_error_code,
                                   first.upstream_error_message };
    for (size_t v = 0; v < sizeof views / sizeof views [0]; v++)
        s_require (s_is_inside (views [v], (const char *) data, size), "views inside the input");
    s_require (!first.sources || first.sources->type == MSGPACK_OBJECT_ARRAY, "sources an array");
    s_require (!first.slots || first.slots->type == MSGPACK_OBJECT_MAP, "slots a map");
    s_require (!first.response_content || first.response_content->type != MSGPACK_OBJECT_NIL,
               "nil content is absent");
    msgpack_sbuffer once, twice;
    s_pack (&first, &once);
    msgpack_unpacked again;
    s_require (kf_mp_unpack_borrowed (once.data, once.size, &again), "packs to msgpack");
    kf_wp_result_t second;
    s_require (kf_wp_result_decode (&again.data, &second), "packs to a map");
    s_require (second.escalate_to_human == first.escalate_to_human && second.stopped == first.stopped
               && second.cached == first.cached && second.has_usage == first.has_usage
               && second.usage.total_tokens == first.usage.total_tokens
               && second.reply.len == first.reply.len && !!second.reply.data == !!first.reply.data
               && second.has_confidence == first.has_confidence
               && second.has_failed_attempts == first.has_failed_attempts
               && (!first.has_failed_attempts || second.failed_attempts == first.failed_attempts),
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
