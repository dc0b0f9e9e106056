/*  handoff.c - the handoff decision of a chat turn and its reply. See handoff.h. */
#include "workers/handoff.h"
#include "common/mpack.h"

void
kf_handoff_config_defaults (kf_handoff_config_t *config)
{
    config->failed_attempts = KF_HANDOFF_DEFAULT_FAILED_ATTEMPTS;
    config->emotion_below = KF_HANDOFF_DEFAULT_EMOTION_BELOW;
    config->repeated_question = KF_HANDOFF_DEFAULT_REPEATED_QUESTION;
}

void
kf_handoff_config_apply (kf_handoff_config_t *config, const kf_wp_handoff_t *handoff)
{
    if (handoff->has_failed_attempts && handoff->failed_attempts >= 0 && handoff->failed_attempts <= 1000)
        config->failed_attempts = (int) handoff->failed_attempts;
    if (handoff->has_repeated_question && handoff->repeated_question >= 0
    &&  handoff->repeated_question <= 1000)
        config->repeated_question = (int) handoff->repeated_question;
    if (handoff->has_emotion_below && handoff->emotion_below >= 0 && handoff->emotion_below <= 1)
        config->emotion_below = handoff->emotion_below;
}

void
kf_handoff_config_read (kf_handoff_config_t *config, const msgpack_object *map)
{
    kf_handoff_config_defaults (config);
    kf_wp_handoff_t handoff;
    if (kf_wp_handoff_decode (map, &handoff))
        kf_handoff_config_apply (config, &handoff);
}

kf_handoff_reason_t
kf_handoff_decide (const kf_handoff_config_t *config, const kf_handoff_turn_t *turn)
{
    if (turn->is_transfer)
        return KF_HANDOFF_KEYWORD;
    if (config->emotion_below > 0 && turn->emotion_score < config->emotion_below)
        return KF_HANDOFF_EMOTION;
    if (config->repeated_question > 0 && turn->repeat_count >= config->repeated_question)
        return KF_HANDOFF_REPEATED;
    if (config->failed_attempts > 0 && !turn->is_answered
    &&  turn->failed_attempts + 1 >= config->failed_attempts)
        return KF_HANDOFF_FAILED;
    return KF_HANDOFF_NONE;
}

const char *
kf_handoff_reply (kf_handoff_reason_t reason)
{
    switch (reason) {
        case KF_HANDOFF_NONE:
            return "";
        case KF_HANDOFF_FAILED:
            return "抱歉，这个问题我暂时没能帮您解决，正在为您转接人工客服，请稍候。";
        case KF_HANDOFF_EMOTION:
            return "非常抱歉给您带来了不好的体验，我马上为您转接人工客服，请稍候。";
        case KF_HANDOFF_REPEATED:
            return "抱歉，我的回答似乎没能解决您的问题，正在为您转接人工客服，请稍候。";
        case KF_HANDOFF_ASKED:
        case KF_HANDOFF_KEYWORD:
        default:
            return "好的，正在为您转接人工客服，请稍候。";
    }
}
