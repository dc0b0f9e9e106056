/*  test_worker_proto.c - the worker protocol's chat result as a typed struct (common/worker_proto.h):
    every field read from a worker's result, values of the wrong type read as absent, and what
    is packed reads back the same. */
#include "common/json_codec.h"
#include "common/mpack.h"
#include "common/worker_proto.h"
#include "testutil.h"
#include <math.h>

//  Decodes the JSON text as a worker's result (the buffers stay alive for the views)
static void
s_decode (const char *json, msgpack_sbuffer *buffer, msgpack_unpacked *unpacked, kf_wp_result_t *result)
{
    msgpack_sbuffer_init (buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    CHECK_INT (kf_json_to_msgpack (json, strlen (json), &pk, NULL, 0), 0);
    CHECK (kf_mp_unpack_borrowed (buffer->data, buffer->size, unpacked));
    kf_wp_result_decode (&unpacked->data, result);
}

static bool
s_str_is (kf_wp_str_t str, const char *text)
{
    return str.data && str.len == strlen (text) && memcmp (str.data, text, str.len) == 0;
}

static void
s_test_fields (void)
{
    msgpack_sbuffer buffer;
    msgpack_unpacked unpacked;
    kf_wp_result_t r;
    s_decode ("{\"reply\":\"您好\",\"response_type\":\"text\",\"response_content\":null,"
              "\"intent\":\"knowledge_qa\",\"intent_confidence\":0.9,\"confidence\":1,"
              "\"sources\":[{\"id\":1}],\"suggestions\":[],\"candidates\":[],\"sub_tasks\":[],"
              "\"emotion_score\":0.55,\"escalate_to_human\":true,\"handoff_reason\":4,"
              "\"failed_attempts\":2,\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3},"
              "\"slots\":{\"order_no\":\"A1\"},\"ticket\":{\"type\":\"repair\"},"
              "\"cache\":{\"question\":\"q\"},\"upstream\":\"main\","
              "\"upstream_conversation_id\":\"c-1\","
              "\"upstream_error\":{\"code\":\"timeout\",\"message\":\"slow\",\"status\":504},"
              "\"stopped\":true,\"cached\":false,\"unknown\":[1,2]}", &buffer, &unpacked, &r);
    CHECK (s_str_is (r.reply, "您好") && s_str_is (r.response_type, "text"));
    CHECK (!r.response_content);                    //  nil is absent
    CHECK (s_str_is (r.intent, "knowledge_qa"));
    CHECK (r.has_intent_confidence && fabs (r.intent_confidence - 0.9) < 1e-9);
    CHECK (r.has_confidence && r.confidence == 1);  //  An integer is a number too
    CHECK (r.sources && r.sources->via.array.size == 1 && r.suggestions && r.candidates && r.sub_tasks);
    CHECK (r.has_emotion_score && fabs (r.emotion_score - 0.55) < 1e-9);
    CHECK (r.escalate_to_human && r.has_handoff_reason && r.handoff_reason == 4);
    CHECK (r.has_failed_attempts && r.failed_attempts == 2);
    CHECK (r.has_usage && r.usage.prompt_tokens == 7 && r.usage.completion_tokens == 3
           && r.usage.total_tokens == 0);
    CHECK (r.slots && r.ticket && r.cache);
    CHECK (s_str_is (r.upstream, "main") && s_str_is (r.upstream_conversation_id, "c-1"));
    CHECK (r.has_upstream_error && s_str_is (r.upstream_error_code, "timeout")
           && s_str_is (r.upstream_error_message, "slow") && r.upstream_error_status == 504);
    CHECK (r.stopped && !r.cached);
    //  Packed, it reads back the same
    msgpack_sbuffer packed;
    msgpack_sbuffer_init (&packed);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &packed, msgpack_sbuffer_write);
    kf_wp_result_pack (&r, &pk);
    msgpack_unpacked again;
    CHECK (kf_mp_unpack_borrowed (packed.data, packed.size, &again));
    kf_wp_result_t back;
    CHECK (kf_wp_result_decode (&again.data, &back));
    CHECK (s_str_is (back.reply, "您好") && s_str_is (back.intent, "knowledge_qa"));
    CHECK (back.has_handoff_reason && back.handoff_reason == 4 && back.usage.prompt_tokens == 7);
    CHECK (back.slots && back.slots->via.map.size == 1 && back.stopped);
    CHECK (s_str_is (back.upstream_error_code, "timeout") && back.upstream_error_status == 504);
    msgpack_unpacked_destroy (&again);
    msgpack_sbuffer_destroy (&packed);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
}

//  A value of the wrong type is absent: the broker never stores a map as a reply or a string as
//  the sources
static void
s_test_wrong_types (void)
{
    msgpack_sbuffer buffer;
    msgpack_unpacked unpacked;
    kf_wp_result_t r;
    s_decode ("{\"reply\":5,\"response_type\":[\"text\"],\"intent\":{\"a\":1},"
              "\"intent_confidence\":\"high\",\"sources\":{\"id\":1},\"suggestions\":\"none\","
              "\"escalate_to_human\":\"yes\",\"handoff_reason\":2.5,\"usage\":[1],"
              "\"slots\":[],\"ticket\":\"t\",\"cache\":7,\"upstream_error\":\"boom\","
              "\"stopped\":1,\"cached\":\"true\"}", &buffer, &unpacked, &r);
    CHECK (!r.reply.data && !r.response_type.data && !r.intent.data);
    CHECK (!r.has_intent_confidence && !r.sources && !r.suggestions);
    CHECK (!r.escalate_to_human && !r.has_handoff_reason && !r.has_usage);
    CHECK (!r.slots && !r.ticket && !r.cache && !r.has_upstream_error);
    CHECK (!r.stopped && !r.cached);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
    //  Token counts: none negative, none so large their sum overflows
    s_decode ("{\"usage\":{\"prompt_tokens\":9223372036854775807,\"completion_tokens\":-5,"
              "\"total_tokens\":18446744073709551615}}", &buffer, &unpacked, &r);
    CHECK (r.has_usage && r.usage.prompt_tokens == KF_WP_TOKENS_MAX);
    CHECK (r.usage.completion_tokens == 0 && r.usage.total_tokens == 0);    //  Not an int64
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
    //  Not a map: nothing
    s_decode ("[1,2]", &buffer, &unpacked, &r);
    CHECK (!kf_wp_result_decode (&unpacked.data, &r));
    CHECK (!r.reply.data && !r.escalate_to_human);
    CHECK (!kf_wp_result_decode (NULL, &r));
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
}

//  The job: params and context read into fields, the handoff and answer settings typed, the last
//  turns kept, wrong types absent; packed, it reads back the same
static void
s_test_job (void)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    const char *json = "{\"method\":\"chat\",\"stream\":true,\"params\":{\"message\":\"怎么退货\","
        "\"top_k\":7,\"bot_id\":\"shop\",\"user_id\":\"u1\",\"channel\":\"web\","
        "\"labels\":{\"vip\":\"true\"},\"inputs\":[1]},\"context\":{\"session_id\":\"s_1\","
        "\"turn_count\":3,\"failed_attempts\":\"2\",\"repeat_count\":2,"
        "\"turns\":[{\"role\":\"user\",\"content\":\"你好\"},7,{\"role\":\"assistant\",\"content\":\"您好\"}],"
        "\"slots\":{\"order_no\":\"A1\"},\"emotion_score\":0.5,"
        "\"handoff\":{\"failed_attempts\":4,\"emotion_below\":\"low\",\"repeated_question\":3},"
        "\"answer\":{\"target_precision\":0.95,\"suggestions\":2}}}";
    CHECK_INT (kf_json_to_msgpack (json, strlen (json), &pk, NULL, 0), 0);
    msgpack_unpacked unpacked;
    CHECK (kf_mp_unpack_borrowed (buffer.data, buffer.size, &unpacked));
    kf_wp_job_t job;
    CHECK (kf_wp_job_decode (&unpacked.data, &job));
    CHECK (s_str_is (job.method, "chat") && job.stream && s_str_is (job.message, "怎么退货"));
    CHECK (job.has_top_k && job.top_k == 7 && s_str_is (job.bot_id, "shop"));
    CHECK (job.labels && !job.inputs);              //  inputs must be a map
    CHECK (s_str_is (job.session_id, "s_1") && job.turn_count == 3 && job.repeat_count == 2);
    CHECK (job.failed_attempts == 0);               //  A string is no count
    CHECK_INT (job.turn_total, 2);                  //  The maps among the entries
    CHECK (s_str_is (job.turns [1].content, "您好"));
    CHECK (job.slots && job.has_emotion_score && job.emotion_score == 0.5);
    CHECK (job.has_handoff && job.handoff.has_failed_attempts && job.handoff.failed_attempts == 4);
    CHECK (!job.handoff.has_emotion_below && job.handoff.has_repeated_question);
    CHECK (job.has_target_precision && job.target_precision == 0.95 && job.suggestions == 2);
    msgpack_sbuffer packed;
    msgpack_sbuffer_init (&packed);
    msgpack_packer_init (&pk, &packed, msgpack_sbuffer_write);
    kf_wp_job_pack (&job, &pk);
    msgpack_unpacked again;
    CHECK (kf_mp_unpack_borrowed (packed.data, packed.size, &again));
    kf_wp_job_t back;
    CHECK (kf_wp_job_decode (&again.data, &back));
    CHECK (s_str_is (back.message, "怎么退货") && back.turn_total == 2 && back.handoff.failed_attempts == 4);
    CHECK (back.has_target_precision && back.labels && s_str_is (back.turns [0].role, "user"));
    msgpack_unpacked_destroy (&again);
    msgpack_sbuffer_destroy (&packed);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
}

int
main (void)
{
    s_test_fields ();
    s_test_wrong_types ();
    s_test_job ();
    TEST_PASS ("test_worker_proto");
    return 0;
}
