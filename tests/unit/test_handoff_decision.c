/*  test_handoff_decision.c - the handoff decision (workers/handoff.h): each reason, their order, thresholds off, the replies. */
#include "testutil.h"
#include "common/mpack.h"
#include "workers/handoff.h"

static kf_handoff_reason_t
s_decide (const kf_handoff_config_t *config, bool is_transfer, double score, int repeats,
          bool is_answered, int failed)
{
    kf_handoff_turn_t turn = { is_transfer, score, repeats, is_answered, failed };
    return kf_handoff_decide (config, &turn);
}

int
main (void)
{
    kf_handoff_config_t config;
    kf_handoff_config_defaults (&config);
    //  A plain answered question: none
    CHECK_INT (s_decide (&config, false, 0.6, 1, true, 0), KF_HANDOFF_NONE);
    CHECK_INT (s_decide (&config, true, 0.6, 1, true, 0), KF_HANDOFF_KEYWORD);
    CHECK_INT (s_decide (&config, false, 0.12, 1, true, 0), KF_HANDOFF_EMOTION);
    CHECK_INT (s_decide (&config, false, 0.30, 1, true, 0), KF_HANDOFF_NONE);   //  Not below
    CHECK_INT (s_decide (&config, false, 0.6, 3, true, 0), KF_HANDOFF_REPEATED);
    CHECK_INT (s_decide (&config, false, 0.6, 2, true, 0), KF_HANDOFF_NONE);
    //  No answer: the first miss counts 1, the second reaches the default 2
    CHECK_INT (s_decide (&config, false, 0.6, 1, false, 0), KF_HANDOFF_NONE);
    CHECK_INT (s_decide (&config, false, 0.6, 1, false, 1), KF_HANDOFF_FAILED);
    CHECK_INT (s_decide (&config, false, 0.6, 1, true, 5), KF_HANDOFF_NONE);    //  Answered now
    //  Order: keyword, emotion, repeated, failed
    CHECK_INT (s_decide (&config, true, 0.1, 5, false, 5), KF_HANDOFF_KEYWORD);
    CHECK_INT (s_decide (&config, false, 0.1, 5, false, 5), KF_HANDOFF_EMOTION);
    CHECK_INT (s_decide (&config, false, 0.5, 5, false, 5), KF_HANDOFF_REPEATED);
    //  Thresholds read from context.handoff; 0 disables
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    kf_mp_pack_kv_int (&pk, "failed_attempts", 0);
    kf_mp_pack_kv_double (&pk, "emotion_below", 0.5);
    kf_mp_pack_kv_int (&pk, "repeated_question", 0);
    msgpack_unpacked unpacked;
    CHECK (kf_mp_unpack_one (buffer.data, buffer.size, &unpacked));
    kf_handoff_config_read (&config, &unpacked.data);
    CHECK_INT (config.failed_attempts, 0);
    CHECK (config.emotion_below == 0.5);
    CHECK_INT (s_decide (&config, false, 0.45, 9, false, 9), KF_HANDOFF_EMOTION);
    CHECK_INT (s_decide (&config, false, 0.55, 9, false, 9), KF_HANDOFF_NONE);
    msgpack_unpacked_destroy (&unpacked);
    //  Out of range and wrong types keep the defaults
    msgpack_sbuffer_clear (&buffer);
    msgpack_pack_map (&pk, 3);
    kf_mp_pack_kv_int (&pk, "failed_attempts", -1);
    kf_mp_pack_kv_double (&pk, "emotion_below", 3.0);
    kf_mp_pack_kv_str (&pk, "repeated_question", "3");
    CHECK (kf_mp_unpack_one (buffer.data, buffer.size, &unpacked));
    kf_handoff_config_read (&config, &unpacked.data);
    CHECK_INT (config.failed_attempts, KF_HANDOFF_DEFAULT_FAILED_ATTEMPTS);
    CHECK (config.emotion_below == KF_HANDOFF_DEFAULT_EMOTION_BELOW);
    CHECK_INT (config.repeated_question, KF_HANDOFF_DEFAULT_REPEATED_QUESTION);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
    kf_handoff_config_read (&config, NULL);
    CHECK_INT (config.failed_attempts, 2);
    //  Replies: each says a person is coming; 3, 4, 5 say why
    CHECK_STR (kf_handoff_reply (KF_HANDOFF_NONE), "");
    for (int reason = 2; reason <= 5; reason++)
        CHECK (strstr (kf_handoff_reply (reason), "人工客服"));
    CHECK (strstr (kf_handoff_reply (KF_HANDOFF_FAILED), "没能帮您解决"));
    CHECK (strstr (kf_handoff_reply (KF_HANDOFF_EMOTION), "抱歉"));
    CHECK (strstr (kf_handoff_reply (KF_HANDOFF_REPEATED), "没能解决"));
    TEST_PASS ("test_handoff_decision");
    return 0;
}
