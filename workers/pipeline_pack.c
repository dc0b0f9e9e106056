/*  pipeline_pack.c - a chat turn in msgpack: the meta event's fields, the FINAL result, tokens and
    failures (PROTOCOL.md 9.6, 9.7). */
#include "workers/pipeline.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/text_norm.h"
#include "workers/ticket_dialog.h"
#include <stdlib.h>
#include <string.h>

#define S_META_FIELDS 10
#define S_TURN_FIELDS 6

void
kf_pipeline_pack_source (msgpack_packer *pk, const kf_kb_hit_t *hit)
{
    const kf_kb_item_t *item = hit->item;
    msgpack_pack_map (pk, 6);
    kf_mp_pack_kv_int (pk, "id", item->id);
    kf_mp_pack_kv_str (pk, "external_id", item->external_id);
    kf_mp_pack_kv_str (pk, "question", item->question);
    kf_mp_pack_kv_str (pk, "category", item->category);
    kf_mp_pack_kv_double (pk, "score", hit->probability);
    kf_mp_pack_kv_double (pk, "similarity", hit->confidence);
}

static void s_pack_slots (const kf_turn_t *turn, msgpack_packer *pk);

//  "candidates": the knowledge base's ranking for the message, best first, at most top_k
static void
s_pack_candidates (const kf_turn_t *turn, msgpack_packer *pk)
{
    int count = turn->hit_count < turn->top_k ? turn->hit_count : turn->top_k;
    kf_mp_pack_cstr (pk, "candidates");
    msgpack_pack_array (pk, count);
    for (int i = 0; i < count; i++) {
        const kf_kb_item_t *item = turn->hits [i].item;
        msgpack_pack_map (pk, 5);
        kf_mp_pack_kv_int (pk, "id", item->id);
        kf_mp_pack_kv_str (pk, "external_id", item->external_id);
        kf_mp_pack_kv_str (pk, "question", item->question);
        kf_mp_pack_kv_double (pk, "score", turn->hits [i].probability);
        kf_mp_pack_kv_double (pk, "similarity", turn->hits [i].confidence);
    }
}

static void
s_pack_sub_tasks (const kf_turn_t *turn, msgpack_packer *pk)
{
    kf_mp_pack_cstr (pk, "sub_tasks");
    msgpack_pack_array (pk, turn->sub_task_count);
    for (int t = 0; t < turn->sub_task_count; t++) {
        msgpack_pack_map (pk, 3);
        kf_mp_pack_kv_str (pk, "intent", turn->sub_tasks [t].intent);
        kf_mp_pack_kv_double (pk, "confidence", turn->sub_tasks [t].confidence);
        kf_mp_pack_cstr (pk, "text");
        kf_mp_pack_str (pk, turn->sub_tasks [t].text, turn->sub_tasks [t].text_len);
    }
}

int
kf_pipeline_pack_meta_fields (kf_turn_t *turn, msgpack_packer *pk)
{
    if (!pk)
        return S_META_FIELDS;
    kf_mp_pack_kv_str (pk, "intent", turn->intent);
    kf_mp_pack_kv_double (pk, "intent_confidence", turn->intent_confidence);
    kf_mp_pack_kv_double (pk, "confidence", turn->confidence);
    kf_mp_pack_cstr (pk, "sources");
    if (turn->is_llm) {
        msgpack_pack_array (pk, turn->context_count);
        for (int i = 0; i < turn->context_count; i++)
            kf_pipeline_pack_source (pk, &turn->hits [i]);
    }
    else {
        msgpack_pack_array (pk, (turn->source != NULL) + turn->also_count);
        if (turn->source)
            kf_pipeline_pack_source (pk, &turn->hits [0]);
        for (int i = 0; i < turn->also_count; i++)
            kf_pipeline_pack_source (pk, &turn->also [i]);
    }
    int suggestions = turn->is_llm ? 0 : turn->suggestion_count;
    kf_mp_pack_cstr (pk, "suggestions");
    msgpack_pack_array (pk, suggestions);
    for (int i = 0; i < suggestions; i++)
        kf_mp_pack_cstr (pk, turn->suggestions [i]);
    s_pack_candidates (turn, pk);
    s_pack_sub_tasks (turn, pk);
    kf_mp_pack_kv_double (pk, "emotion_score", turn->emotion_score);
    kf_mp_pack_kv_bool (pk, "escalate_to_human", turn->escalate_to_human && !turn->is_llm);
    kf_mp_pack_kv_int (pk, "handoff_reason", turn->is_llm ? 0 : turn->handoff_reason);
    return S_META_FIELDS;
}

int
kf_pipeline_pack_turn_fields (const kf_turn_t *turn, msgpack_packer *pk)
{
    if (!pk)
        return S_TURN_FIELDS;
    kf_mp_pack_kv_double (pk, "intent_confidence", turn->intent_confidence);
    s_pack_candidates (turn, pk);
    s_pack_sub_tasks (turn, pk);
    kf_mp_pack_kv_double (pk, "emotion_score", turn->emotion_score);
    kf_mp_pack_kv_int (pk, "handoff_reason", turn->is_llm ? 0 : turn->handoff_reason);
    s_pack_slots (turn, pk);
    return S_TURN_FIELDS;
}

//  Packs "slots": the new state; a ticket completed this turn is the result's, not a draft
static void
s_pack_slots (const kf_turn_t *turn, msgpack_packer *pk)
{
    kf_slots_t shown = turn->slots;
    if (turn->has_ticket)
        shown.has_draft = false;
    kf_mp_pack_cstr (pk, "slots");
    kf_slots_pack (&shown, pk);
}

//  Packs "usage" of a turn that called no LLM: no tokens
static void
s_pack_no_usage (msgpack_packer *pk)
{
    kf_mp_pack_cstr (pk, "usage");
    msgpack_pack_map (pk, 3);
    kf_mp_pack_kv_int (pk, "prompt_tokens", 0);
    kf_mp_pack_kv_int (pk, "completion_tokens", 0);
    kf_mp_pack_kv_int (pk, "total_tokens", 0);
}

//  Packs what the broker's answer cache keeps: the key's parts and every answer of the item
static void
s_pack_cache (kf_turn_t *turn, msgpack_packer *pk)
{
    const kf_kb_item_t *item = turn->source;
    if (!turn->normalized)              //  Only an answer the cache keeps needs its key
        turn->normalized = kf_text_normalize (turn->message, turn->message_len);
    msgpack_pack_map (pk, 3);
    kf_mp_pack_kv_str (pk, "question", turn->normalized);
    kf_mp_pack_kv_int (pk, "kb_version", turn->kb_version);
    kf_mp_pack_cstr (pk, "answers");
    msgpack_pack_array (pk, item->answer_count);
    for (int i = 0; i < item->answer_count; i++) {
        const kf_variant_t *answer = &item->answers [i];
        msgpack_pack_map (pk, 4);
        kf_mp_pack_cstr (pk, "labels");
        msgpack_pack_map (pk, answer->label_count);
        for (int l = 0; l < answer->label_count; l++) {
            kf_mp_pack_cstr (pk, answer->labels [l].key);
            kf_mp_pack_cstr (pk, answer->labels [l].value);
        }
        kf_mp_pack_kv_str (pk, "answer", answer->answer);
        kf_mp_pack_kv_str (pk, "response_type", answer->response_type);
        kf_mp_pack_cstr (pk, "response_content");
        kf_variant_pack_content (answer, pk);
    }
}

void
kf_pipeline_pack_result (kf_turn_t *turn, msgpack_packer *pk)
{
    bool is_cached = turn->is_cacheable && turn->source && turn->kb_version > 0;
    msgpack_pack_map (pk, 6 + is_cached + turn->has_ticket + kf_pipeline_pack_meta_fields (turn, NULL));
    kf_mp_pack_kv_str (pk, "reply", turn->reply ? turn->reply : "");
    kf_mp_pack_kv_str (pk, "response_type", turn->answer ? turn->answer->response_type : "text");
    kf_mp_pack_cstr (pk, "response_content");
    if (turn->answer)
        kf_variant_pack_content (turn->answer, pk);
    else
        msgpack_pack_nil (pk);
    kf_pipeline_pack_meta_fields (turn, pk);
    kf_mp_pack_kv_int (pk, "failed_attempts", turn->is_answered ? 0 : turn->failed_attempts + 1);
    s_pack_no_usage (pk);
    s_pack_slots (turn, pk);
    if (turn->has_ticket) {
        kf_mp_pack_cstr (pk, "ticket");
        kf_ticket_dialog_pack (&turn->slots, pk);
    }
    if (is_cached) {
        kf_mp_pack_cstr (pk, "cache");
        s_pack_cache (turn, pk);
    }
}

//  The packed fields of a business turn but failed_attempts
typedef struct {
    msgpack_sbuffer packed;
    int count;
} s_business_fields_t;

void *
kf_pipeline_business_fields_new (kf_turn_t *turn)
{
    s_business_fields_t *fields = kf_calloc (1, sizeof *fields);
    msgpack_sbuffer_init (&fields->packed);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &fields->packed, msgpack_sbuffer_write);
    turn->source = NULL;            //  The API answers, not the knowledge base
    turn->answer = NULL;
    turn->suggestion_count = 0;     //  The other requests' items (also) answer in the tail
    turn->confidence = turn->intent_confidence;
    kf_mp_pack_kv_str (&pk, "response_type", "text");
    kf_mp_pack_cstr (&pk, "response_content");
    msgpack_pack_nil (&pk);
    fields->count = 2 + kf_pipeline_pack_meta_fields (turn, &pk);
    s_pack_no_usage (&pk);
    s_pack_slots (turn, &pk);
    fields->count += 2;
    return fields;
}

int
kf_pipeline_business_fields (void *arg, const kf_business_outcome_t *outcome, msgpack_packer *pk)
{
    s_business_fields_t *fields = arg;
    pk->callback (pk->data, fields->packed.data, fields->packed.size);
    kf_mp_pack_kv_int (pk, "failed_attempts", outcome->failed_attempts);
    return fields->count + 1;
}

void
kf_pipeline_business_fields_free (void *arg)
{
    s_business_fields_t *fields = arg;
    if (!fields)
        return;
    msgpack_sbuffer_destroy (&fields->packed);
    free (fields);
}

void
kf_pipeline_pack_token (msgpack_sbuffer *body, const char *text, size_t len)
{
    msgpack_sbuffer_clear (body);
    //  The event's size up front: a first write would take an 8 KiB buffer
    if (body->alloc < len + 32) {
        body->alloc = len + 32;
        body->data = kf_realloc (body->data, body->alloc);
    }
    msgpack_packer pk;
    msgpack_packer_init (&pk, body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "event", "token");
    kf_mp_pack_cstr (&pk, "content");
    kf_mp_pack_str (&pk, text, len);
}

void
kf_pipeline_pack_failure (msgpack_sbuffer *body, const kf_error_t *err)
{
    msgpack_sbuffer_init (body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_bool (&pk, "ok", false);
    kf_mp_pack_cstr (&pk, "error");
    kf_error_pack (&pk, err);
}
