/*  bots.h - bot profiles (what a chat window shows: name, avatar, welcome text, common questions,
    switches) and the inputs each bot accepts, stored in SQLite and cached in the broker, with the
    validation of both profile updates and chat inputs. */
#ifndef KF_BOTS_H
#define KF_BOTS_H
#include <msgpack.h>
#include <stddef.h>
#include "broker/store.h"
#include "common/wire.h"

typedef struct _kf_bots_t kf_bots_t;

//  Prepares statements on `store` (borrowed). NULL (logged) on failure.
kf_bots_t *kf_bots_new (kf_store_t *store);

//  Frees the cache and statements; nulls *self_p.
void kf_bots_destroy (kf_bots_t **self_p);

//  Packs a bot's profile map {bot_id, name, avatar_url, description, welcome, common_questions,
//  switches, updated_at}. Returns 1, 0 when the bot has no profile, -1 on error.
int kf_bots_pack_profile (kf_bots_t *self, const char *bot_id, size_t len, msgpack_packer *pk);

//  Packs the list {"data": [input definitions], "has_more": false, "total"}. Returns like above.
int kf_bots_pack_parameters (kf_bots_t *self, const char *bot_id, size_t len, msgpack_packer *pk);

//  Validates and stores a profile update: `params` may hold name, avatar_url, description, welcome,
//  common_questions, switches (partial: the rest is kept) and parameters (replaces the list).
//  Creates the bot when it has no profile yet. Returns 0, or -1 with `err` set.
int kf_bots_update (kf_bots_t *self, const char *bot_id, size_t len, const msgpack_object *params,
                    kf_error_t *err);

//  Checks a chat's `inputs` (NULL: none given) against the bot's input definitions: required
//  ones present, types and options respected. Names the bot does not define pass unchecked, and a
//  bot without a profile accepts any inputs. Returns 0, or -1 with `err` set.
int kf_bots_check_inputs (kf_bots_t *self, const char *bot_id, size_t len,
                          const msgpack_object *inputs, kf_error_t *err);
#endif
