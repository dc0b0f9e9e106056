/*  handoff.h - when a chat turn hands the customer to a person (issue 5), and what the bot says
    then. The reasons, as integrators know them, are the numbers of the protocol (PROTOCOL.md 15):
        1  the customer asked with handoff.request (the broker's alone; never decided here)
        2  keyword: the turn's intent is transfer_to_human ("转人工")
        4  negative emotion: the message's emotion score is below `emotion_below`
        5  repeated question: the session's user sent the same normalized question
           `repeated_question` times in a row (the broker counts: context.repeat_count)
        3  no answer: this turn went unanswered and so did the `failed_attempts` - 1 before it
    The first that holds in the order 2, 4, 5, 3 wins. A threshold of 0 disables its reason.
    Pure functions over numbers; thread-safe. */
#ifndef KF_HANDOFF_H
#define KF_HANDOFF_H
#include "common/worker_proto.h"
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#define KF_HANDOFF_DEFAULT_FAILED_ATTEMPTS 2
#define KF_HANDOFF_DEFAULT_EMOTION_BELOW 0.30
#define KF_HANDOFF_DEFAULT_REPEATED_QUESTION 3

typedef enum {
    KF_HANDOFF_NONE = 0,
    KF_HANDOFF_ASKED = 1,       //  handoff.request (broker)
    KF_HANDOFF_KEYWORD = 2,
    KF_HANDOFF_FAILED = 3,
    KF_HANDOFF_EMOTION = 4,
    KF_HANDOFF_REPEATED = 5
} kf_handoff_reason_t;

//  A bot's thresholds (context.handoff); 0 disables a reason.
typedef struct {
    int failed_attempts;        //  Unanswered turns in a row that hand over
    double emotion_below;       //  An emotion score below this hands over
    int repeated_question;      //  The same question this many times in a row hands over
} kf_handoff_config_t;

//  What the decision looks at, from one turn.
typedef struct {
    bool is_transfer;           //  Intent transfer_to_human
    double emotion_score;       //  [0, 1], lower = more upset
    int64_t repeat_count;       //  context.repeat_count (this message included)
    bool is_answered;           //  This turn was answered
    int64_t failed_attempts;    //  context.failed_attempts (unanswered turns before this one)
} kf_handoff_turn_t;

//  The defaults above.
void kf_handoff_config_defaults (kf_handoff_config_t *config);

//  Takes the thresholds of a job's context.handoff that are in range (counts 0-1000,
//  emotion_below 0-1) over what `config` holds; the others keep it.
void kf_handoff_config_apply (kf_handoff_config_t *config, const kf_wp_handoff_t *handoff);

//  Reads context.handoff `map` over the defaults, as kf_handoff_config_apply. NULL is fine.
void kf_handoff_config_read (kf_handoff_config_t *config, const msgpack_object *map);

//  The reason `turn` hands over under `config`, or KF_HANDOFF_NONE.
kf_handoff_reason_t kf_handoff_decide (const kf_handoff_config_t *config, const kf_handoff_turn_t *turn);

//  What the bot says when it hands over for `reason` (static text): that a person is coming, and
//  for 3, 4 and 5 briefly why. "" for KF_HANDOFF_NONE.
const char *kf_handoff_reply (kf_handoff_reason_t reason);
#endif
