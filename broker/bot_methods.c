/*  bot_methods.c - the client methods about a bot rather than a conversation: session.init (what a
    chat window shows before the first message), bot.get, bot.update, parameters. */
#include "broker/answer_cache.h"
#include "broker/answer_quality.h"
#include "broker/bots.h"
#include "broker/broker.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdlib.h>
#include <string.h>

typedef int (s_pack_fn) (kf_broker_t *self, const char *bot_id, size_t len, msgpack_packer *pk);

//  What a chat window shows
static int
s_pack_profile (kf_broker_t *self, const char *bot_id, size_t len, msgpack_packer *pk)
{
    return kf_bots_pack_profile (self->bots, bot_id, len, 0, pk);
}

//  The profile, and for the people who run the bot how surely it answers (answer_quality)
static int
s_pack_bot (kf_broker_t *self, const char *bot_id, size_t len, msgpack_packer *pk)
{
    int rc = kf_bots_pack_profile (self->bots, bot_id, len, 1, pk);
    if (rc != 1)
        return rc;
    kf_answer_settings_t settings;
    kf_bots_answer (self->bots, bot_id, len, &settings);
    int64_t kb_version;
    const kf_answer_curve_t *curve = kf_answer_quality_get (self->quality, bot_id, len, &kb_version);
    kf_mp_pack_cstr (pk, "answer_quality");
    kf_answer_quality_pack (curve, settings.target_precision, kb_version, pk);
    return 1;
}

static int
s_pack_parameters (kf_broker_t *self, const char *bot_id, size_t len, msgpack_packer *pk)
{
    return kf_bots_pack_parameters (self->bots, bot_id, len, pk);
}

//  Reads bot_id (default "default"), packs with `pack`, replies; 404 for a bot without a profile
static void
s_reply_packed (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req,
                s_pack_fn *pack)
{
    kf_error_t err;
    const char *bot_id;
    size_t len;
    if (kf_param_str (req->params, "bot_id", false, 64, &bot_id, &len, &err))
        goto failed;
    if (!bot_id || len == 0)
        bot_id = "default", len = 7;
    kf_result_t r;
    kf_result_init (&r);
    int rc = pack (self, bot_id, len, &r.pk);
    if (rc == 1) {
        kf_broker_send_result (self, routing, routing_len, req, &r);
        return;
    }
    msgpack_sbuffer_destroy (&r.buffer);
    kf_error_set (&err, rc == 0 ? KF_E_NOT_FOUND : KF_E_INTERNAL, "bot %.*s %s", (int) len, bot_id,
                  rc == 0 ? "has no profile (create one with bot.update)" : "could not be read");
failed:
    kf_broker_send_error (self, routing, routing_len, req, &err);
}

void
kf_method_bot_get (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    s_reply_packed (self, routing, routing_len, req, s_pack_bot);
}

void
kf_method_parameters (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    s_reply_packed (self, routing, routing_len, req, s_pack_parameters);
}

void
kf_method_session_init (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    //  user_id and channel are checked like everywhere; the window's content depends on the bot
    kf_error_t err;
    const char *user_id;
    size_t user_len;
    char channel [16];
    if (kf_param_str (req->params, "user_id", false, 128, &user_id, &user_len, &err)
    ||  kf_param_channel (req->params, channel, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    s_reply_packed (self, routing, routing_len, req, s_pack_profile);
}

void
kf_method_bot_update (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req)
{
    kf_error_t err;
    const char *bot_id;
    size_t len;
    if (kf_param_str (req->params, "bot_id", true, 64, &bot_id, &len, &err)
    ||  kf_bots_update (self->bots, bot_id, len, req->params, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    //  Answers cached under the old settings would outlive them (a threshold, a number of
    //  suggestions): the bot's entries go
    if (kf_mp_get (req->params, "answer")) {
        char *id = kf_strndup (bot_id, len);
        kf_answer_cache_invalidate (self->cache, id);
        free (id);
    }
    s_reply_packed (self, routing, routing_len, req, s_pack_bot);
}
