/*  intent_methods.c - the methods that edit what a bot understands: intent.create/query/update/
    delete and chitchat.create/query/update/delete (PROTOCOL.md 4.37-4.41). Each validates its
    params and answers exactly once; every successful edit bumps the knowledge-base version, so
    workers reload the bot (and retrain its classifier) and the answer cache drops its entries. */
#include "broker/broker.h"
#include "broker/chitchat_store.h"
#include "broker/intents.h"
#include "common/mpack.h"
#include <stdio.h>
#include <string.h>

//  An edit of one row (create or update): 0 with the row's id, or -1 with `err` set
typedef int (s_edit_fn) (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                         int64_t *id, kf_error_t *err);
//  Packs row `id`: 0, or -1 with nothing packed
typedef int (s_pack_fn) (kf_store_t *store, int64_t id, msgpack_packer *pk);

//  Answers an edit of one row with the row as it is now
static void
s_edit (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req,
        s_edit_fn *edit, s_pack_fn *pack)
{
    kf_error_t err;
    char bot [260];
    int64_t id = 0;
    if (kf_broker_param_bot (req, bot, &err) || edit (self->store, bot, req->params, &id, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    kf_store_kb_bump_version (self->store);
    kf_result_t r;
    kf_result_init (&r);
    if (pack (self->store, id, &r.pk)) {
        msgpack_sbuffer_destroy (&r.buffer);
        kf_error_set (&err, KF_E_INTERNAL, "the row was stored but could not be read back");
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    kf_broker_send_result (self, routing, routing_len, req, &r);
}

//  A delete: packs its result and returns how many rows went, or -1 with `err` set
typedef int (s_delete_fn) (kf_store_t *store, const char *bot_id, const msgpack_object *params,
                           msgpack_packer *pk, kf_error_t *err);

static void
s_delete (kf_broker_t *self, const char *routing, size_t routing_len, kf_request_t *req,
          s_delete_fn *delete)
{
    kf_error_t err;
    char bot [260];
    kf_result_t r;
    kf_result_init (&r);
    int deleted = -1;
    if (kf_broker_param_bot (req, bot, &err) == 0)
        deleted = delete (self->store, bot, req->params, &r.pk, &err);
    if (deleted < 0) {
        msgpack_sbuffer_destroy (&r.buffer);
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    if (deleted > 0)
        kf_store_kb_bump_version (self->store);
    kf_broker_send_result (self, routing, routing_len, req, &r);
}

//  --- Intents ---------------------------------------------------------------------------------

void
kf_method_intent_create (kf_broker_t *self, const char *routing, size_t routing_len,
                         kf_request_t *req)
{
    s_edit (self, routing, routing_len, req, kf_intents_create, kf_intents_pack_one);
}

void
kf_method_intent_update (kf_broker_t *self, const char *routing, size_t routing_len,
                         kf_request_t *req)
{
    s_edit (self, routing, routing_len, req, kf_intents_update, kf_intents_pack_one);
}

void
kf_method_intent_delete (kf_broker_t *self, const char *routing, size_t routing_len,
                         kf_request_t *req)
{
    s_delete (self, routing, routing_len, req, kf_intents_delete);
}

void
kf_method_intent_query (kf_broker_t *self, const char *routing, size_t routing_len,
                        kf_request_t *req)
{
    kf_error_t err;
    char bot [260];
    const char *name;
    size_t name_len;
    int64_t page, page_size;
    if (kf_broker_param_bot (req, bot, &err)
    ||  kf_param_str (req->params, "name", false, KF_INTENT_NAME_MAX, &name, &name_len, &err)
    ||  kf_broker_param_page (req, 100, &page, &page_size, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    if (name && name_len == 0)
        name = NULL;
    kf_result_t r;
    kf_result_init (&r);
    kf_broker_send_query (self, routing, routing_len, req, &r,
                    kf_intents_query_pack (self->store, bot, name, name_len, page, page_size,
                                           &r.pk));
}

//  --- Chit-chat -------------------------------------------------------------------------------

void
kf_method_chitchat_create (kf_broker_t *self, const char *routing, size_t routing_len,
                           kf_request_t *req)
{
    s_edit (self, routing, routing_len, req, kf_chitchat_store_create, kf_chitchat_store_pack_one);
}

void
kf_method_chitchat_update (kf_broker_t *self, const char *routing, size_t routing_len,
                           kf_request_t *req)
{
    s_edit (self, routing, routing_len, req, kf_chitchat_store_update, kf_chitchat_store_pack_one);
}

void
kf_method_chitchat_delete (kf_broker_t *self, const char *routing, size_t routing_len,
                           kf_request_t *req)
{
    s_delete (self, routing, routing_len, req, kf_chitchat_store_delete);
}

void
kf_method_chitchat_query (kf_broker_t *self, const char *routing, size_t routing_len,
                          kf_request_t *req)
{
    kf_error_t err;
    char bot [260];
    const char *keyword;
    size_t keyword_len;
    int64_t page, page_size;
    if (kf_broker_param_bot (req, bot, &err)
    ||  kf_param_str (req->params, "keyword", false, KF_CHITCHAT_QUESTION_CHARS, &keyword,
                      &keyword_len, &err)
    ||  kf_broker_param_page (req, 100, &page, &page_size, &err)) {
        kf_broker_send_error (self, routing, routing_len, req, &err);
        return;
    }
    if (keyword && keyword_len == 0)
        keyword = NULL;
    kf_result_t r;
    kf_result_init (&r);
    kf_broker_send_query (self, routing, routing_len, req, &r,
                    kf_chitchat_store_query_pack (self->store, bot, keyword, keyword_len, page,
                                                  page_size, &r.pk));
}
