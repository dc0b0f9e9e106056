/*  bots.h - bot profiles (what a chat window shows: name, avatar, welcome text, common questions,
    switches), the inputs each bot accepts and its handoff thresholds, stored in SQLite and cached
    in the broker, with the validation of both profile updates and chat inputs. */
#ifndef KF_BOTS_H
#define KF_BOTS_H
#include <msgpack.h>
#include <stddef.h>
#include "broker/store.h"
#include "common/wire.h"

typedef struct _kf_bots_t kf_bots_t;

//  When a bot hands a conversation to people (PROTOCOL.md 13.4): bots.handoff, sent to the worker
//  with every job. 0 disables a reason.
typedef struct {
    int64_t failed_attempts;    //  Turns in a row without an answer (default 2), 0..100
    double emotion_below;       //  Emotion score below which the customer is upset enough
                                //  (default 0.30), 0..1
    int64_t repeated_question;  //  Times in a row the same question (default 3), 0 or 2..100
} kf_handoff_limits_t;

//  How surely a bot answers (PROTOCOL.md 12.6): bots.answer, sent to the worker with every job.
typedef struct {
    double target_precision;    //  Precision its answers aim at (default 0.9), 0.5..0.99
    int64_t suggestions;        //  "Did you mean" items when it does not answer (default 3), 0..10
} kf_answer_settings_t;

#define KF_ANSWER_TARGET_PRECISION      0.9
#define KF_ANSWER_SUGGESTIONS           3

#define KF_HANDOFF_FAILED_ATTEMPTS      2
#define KF_HANDOFF_EMOTION_BELOW        0.30
#define KF_HANDOFF_REPEATED_QUESTION    3

//  Prepares statements on `store` (borrowed). NULL (logged) on failure.
kf_bots_t *kf_bots_new (kf_store_t *store);

//  Frees the cache and statements; nulls *self_p.
void kf_bots_destroy (kf_bots_t **self_p);

//  Packs a bot's profile map {bot_id, name, avatar_url, description, welcome, common_questions,
//  switches, handoff, answer, updated_at} (`extra` more pairs follow, the caller's). Returns 1, 0
//  when the bot has no profile (nothing packed), -1 on error.
int kf_bots_pack_profile (kf_bots_t *self, const char *bot_id, size_t len, int extra,
                          msgpack_packer *pk);

//  Packs the list {"data": [input definitions], "has_more": false, "total"}. Returns like above.
int kf_bots_pack_parameters (kf_bots_t *self, const char *bot_id, size_t len, msgpack_packer *pk);

//  Validates and stores a profile update: `params` may hold name, avatar_url, description, welcome,
//  common_questions, switches, handoff and answer (partial: the rest is kept) and parameters
//  (replaces the list).
//  Creates the bot when it has no profile yet. Returns 0, or -1 with `err` set.
int kf_bots_update (kf_bots_t *self, const char *bot_id, size_t len, const msgpack_object *params,
                    kf_error_t *err);

//  Checks a chat's `inputs` (NULL: none given) against the bot's input definitions: required
//  ones present, types and options respected. Names the bot does not define pass unchecked, and a
//  bot without a profile accepts any inputs. Returns 0, or -1 with `err` set.
int kf_bots_check_inputs (kf_bots_t *self, const char *bot_id, size_t len,
                          const msgpack_object *inputs, kf_error_t *err);

//  The handoff thresholds of a bot into `limits`: the stored ones, the defaults for what is not
//  stored (and for a bot without a profile, or when the database cannot be read).
void kf_bots_handoff (kf_bots_t *self, const char *bot_id, size_t len, kf_handoff_limits_t *limits);

//  Packs `limits` as the map {failed_attempts, emotion_below, repeated_question}.
void kf_handoff_limits_pack (const kf_handoff_limits_t *limits, msgpack_packer *pk);

//  The answer settings of a bot into `settings`: the stored ones, the defaults for the rest.
void kf_bots_answer (kf_bots_t *self, const char *bot_id, size_t len, kf_answer_settings_t *settings);

//  Packs `settings` as the map {target_precision, suggestions}.
void kf_answer_settings_pack (const kf_answer_settings_t *settings, msgpack_packer *pk);
#endif
