/*  test_pipeline.c - chat turns through the worker's pipeline without processes: the sample bot's
    intents trained as a worker trains them, the sample knowledge base, and the job, result and
    meta as msgpack. Routing (knowledge, chit-chat table, sub_tasks with their clauses, business
    queries remembering the order number, a ticket over three turns), the handoff reasons, the
    rules of a bot without intents, and the per-message cost of the intent and emotion stages. */
#include "testutil.h"
#include <unistd.h>
#include "common/clock.h"
#include "common/emotion.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include "tests/bench/kb_jsonl.h"
#include "workers/pipeline.h"
#include "workers/pipeline_stages.h"
#include "workers/ticket_dialog.h"

typedef struct {
    kf_kb_index_t *kb;
    kf_bot_models_t *models;
    kf_pipeline_config_t config;
    int64_t next_id;
    const kf_config_t *server;  //  LLM and business settings, NULL: none
} s_world_t;

typedef struct {
    msgpack_sbuffer buffer;     //  The packed result
    msgpack_unpacked unpacked;
    const msgpack_object *result;
    msgpack_sbuffer slots;      //  The result's slots, for the next turn
    msgpack_sbuffer meta;       //  The meta fields as a map
} s_reply_t;

static void
s_add_item (void *arg, const msgpack_object *obj)
{
    s_world_t *world = arg;
    if (!kf_jsonl_item_on_shelf (obj))
        return;
    kf_kb_item_t item;
    kf_jsonl_item (obj, ++world->next_id, "default", &item);
    kf_kb_index_add_item (world->kb, &item);
}

//  Adds one line of sample-intents.jsonl to the default bot and to "tiny" (keywords only)
static void
s_add_intent (void *arg, const msgpack_object *obj)
{
    s_world_t *world = arg;
    const char *lists [3][64];
    int counts [3] = { 0 };
    const char *keys [3] = { "examples", "keywords", "patterns" };
    char *owned [3][64];
    for (int l = 0; l < 3; l++) {
        const msgpack_object *array = kf_mp_get (obj, keys [l]);
        for (uint32_t i = 0; array && i < array->via.array.size && counts [l] < 64; i++) {
            owned [l][counts [l]] = kf_strndup (array->via.array.ptr [i].via.str.ptr,
                                                array->via.array.ptr [i].via.str.size);
            lists [l][counts [l]] = owned [l][counts [l]];
            counts [l]++;
        }
    }
    char *name = kf_mp_dup_str (obj, "intent");
    CHECK_INT (kf_bot_models_add_intent (world->models, "default", name, lists [0], counts [0],
                                         lists [1], counts [1], lists [2], counts [2]), 0);
    free (name);
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < counts [l]; i++)
            free (owned [l][i]);
}

static void
s_world_init (s_world_t *world, const char *root)
{
    memset (world, 0, sizeof *world);
    kf_pipeline_config_defaults (&world->config);
    char path [512];
    world->kb = kf_kb_index_new ();
    snprintf (path, sizeof path, "%s/deploy/sample-kb.jsonl", root);
    CHECK (kf_jsonl_each (path, s_add_item, world) > 0);
    kf_kb_index_build (world->kb);
    world->models = kf_bot_models_new ();
    snprintf (path, sizeof path, "%s/deploy/sample-intents.jsonl", root);
    CHECK_INT (kf_jsonl_each (path, s_add_intent, world), 6);
    //  The default bot's rows of schemas/009_intents.sql (a few)
    const char *hello [] = { "你好", "您好", "hi", "hello", "在吗", "在不在", "有人吗" };
    kf_bot_models_add_chitchat (world->models, "default", hello, 7, "您好，我是智能客服小快，请问有什么可以帮您？");
    const char *who [] = { "你是谁", "你叫什么名字", "你是哪位" };
    kf_bot_models_add_chitchat (world->models, "default", who, 3, "我是本店的智能客服小快。");
    const char *thanks [] = { "谢谢", "谢谢你", "多谢", "感谢", "thanks" };
    kf_bot_models_add_chitchat (world->models, "default", thanks, 5, "不客气，很高兴能帮到您！");
    //  A bot with its own chit-chat and no intents of its own... uses the default's model; "ruled"
    //  is tested with a set of its own below
    const char *mine [] = { "你好" };
    kf_bot_models_add_chitchat (world->models, "shop-2", mine, 1, "二号店欢迎您！");
    //  As a worker builds them (kb_source.c): the knowledge questions are knowledge_qa examples,
    //  and the knowledge base is calibrated
    int *items = kf_malloc (kf_kb_index_size (world->kb) * sizeof (int));
    for (size_t i = 0; i < kf_kb_index_size (world->kb); i++) {
        const kf_kb_item_t *item = kf_kb_index_item (world->kb, i);
        kf_bot_models_add_questions (world->models, "default", (const char *const *) &item->question, 1);
        kf_bot_models_add_questions (world->models, "default", (const char *const *) item->similar,
                                     item->similar_count);
        items [i] = (int) i;
    }
    kf_kb_calibration_t *calibration = kf_kb_calibration_fit (world->kb, "default", items,
                                                              (int) kf_kb_index_size (world->kb), NULL, 0);
    kf_bot_models_set_calibration (world->models, "default", &calibration);
    free (items);
    double elapsed_ms;
    CHECK_INT (kf_bot_models_train (world->models, &elapsed_ms), 1);
    printf ("sample bot: trained in %.2f ms\n", kf_bot_models_train_ms (world->models, "default"));
}

static void
s_world_destroy (s_world_t *world)
{
    kf_bot_models_destroy (&world->models);
    kf_kb_index_destroy (&world->kb);
}

//  One turn: the job from its parts, the pipeline, the result and the meta fields unpacked
static void
s_chat_bot (s_world_t *world, kf_bot_models_t *models, const char *bot, const char *message,
            const s_reply_t *previous, int failed, int repeats, s_reply_t *reply)
{
    msgpack_sbuffer job;
    msgpack_sbuffer_init (&job);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &job, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_cstr (&pk, "params");
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "message", message);
    kf_mp_pack_kv_str (&pk, "bot_id", bot);
    kf_mp_pack_cstr (&pk, "context");
    msgpack_pack_map (&pk, 3 + (previous != NULL));
    kf_mp_pack_kv_int (&pk, "failed_attempts", failed);
    kf_mp_pack_kv_int (&pk, "repeat_count", repeats);
    kf_mp_pack_cstr (&pk, "handoff");
    msgpack_pack_map (&pk, 0);
    if (previous) {
        kf_mp_pack_cstr (&pk, "slots");
        pk.callback (pk.data, previous->slots.data, previous->slots.size);
    }
    msgpack_unpacked unpacked;
    CHECK (kf_mp_unpack_one (job.data, job.size, &unpacked));
    kf_turn_t turn;
    kf_pipeline_env_t env = { world->kb, models, world->server };
    kf_wp_job_t decoded;
    CHECK (kf_wp_job_decode (&unpacked.data, &decoded));
    kf_pipeline_prepare (&turn, &world->config, &env, &decoded);
    turn.kb_version = 1;
    kf_pipeline_answer (&turn, &world->config);
    msgpack_sbuffer_init (&reply->buffer);
    msgpack_packer_init (&pk, &reply->buffer, msgpack_sbuffer_write);
    kf_pipeline_pack_result (&turn, &pk);
    msgpack_sbuffer_init (&reply->meta);
    msgpack_packer_init (&pk, &reply->meta, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, kf_pipeline_pack_meta_fields (&turn, NULL));
    kf_pipeline_pack_meta_fields (&turn, &pk);
    kf_turn_release (&turn);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&job);
    CHECK (kf_mp_unpack_one (reply->buffer.data, reply->buffer.size, &reply->unpacked));
    reply->result = &reply->unpacked.data;
    msgpack_sbuffer_init (&reply->slots);
    msgpack_packer_init (&pk, &reply->slots, msgpack_sbuffer_write);
    const msgpack_object *slots = kf_mp_get (reply->result, "slots");
    CHECK (slots && slots->type == MSGPACK_OBJECT_MAP);
    msgpack_pack_object (&pk, *slots);
    //  Every result carries the issue-5 fields, equal in meta
    msgpack_unpacked meta;
    CHECK (kf_mp_unpack_one (reply->meta.data, reply->meta.size, &meta));
    static const char *keys [] = { "intent", "intent_confidence", "emotion_score", "sub_tasks",
                                   "handoff_reason", "escalate_to_human", NULL };
    for (int k = 0; keys [k]; k++) {
        CHECK (kf_mp_get (reply->result, keys [k]) && kf_mp_get (&meta.data, keys [k]));
        msgpack_sbuffer a, b;
        msgpack_sbuffer_init (&a);
        msgpack_sbuffer_init (&b);
        msgpack_packer pa, pb;
        msgpack_packer_init (&pa, &a, msgpack_sbuffer_write);
        msgpack_packer_init (&pb, &b, msgpack_sbuffer_write);
        msgpack_pack_object (&pa, *kf_mp_get (reply->result, keys [k]));
        msgpack_pack_object (&pb, *kf_mp_get (&meta.data, keys [k]));
        CHECK (a.size == b.size && memcmp (a.data, b.data, a.size) == 0);
        msgpack_sbuffer_destroy (&a);
        msgpack_sbuffer_destroy (&b);
    }
    double score = kf_mp_get_double (reply->result, "emotion_score", -1);
    CHECK (score >= 0 && score <= 1);
    msgpack_unpacked_destroy (&meta);
}

static void
s_chat (s_world_t *world, const char *message, const s_reply_t *previous, int failed, int repeats,
        s_reply_t *reply)
{
    s_chat_bot (world, world->models, "default", message, previous, failed, repeats, reply);
}

//  One turn from a whole job written as JSON (the broker's context as a previous version, or
//  anyone, may have left it): the pipeline must answer with a well-formed result whatever it holds
static void
s_chat_json (s_world_t *world, const char *json, s_reply_t *reply)
{
    msgpack_sbuffer job;
    msgpack_sbuffer_init (&job);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &job, msgpack_sbuffer_write);
    char err [128];
    if (kf_json_to_msgpack (json, strlen (json), &pk, err, sizeof err) != 0) {
        fprintf (stderr, "bad test JSON: %s: %s\n", err, json);
        exit (1);
    }
    msgpack_unpacked unpacked;
    CHECK (kf_mp_unpack_one (job.data, job.size, &unpacked));
    kf_turn_t turn;
    kf_pipeline_env_t env = { world->kb, world->models, NULL };
    kf_wp_job_t decoded;
    kf_wp_job_decode (&unpacked.data, &decoded);    //  Not a map: an empty job, answered too
    kf_pipeline_prepare (&turn, &world->config, &env, &decoded);
    turn.kb_version = 1;
    kf_pipeline_answer (&turn, &world->config);
    msgpack_sbuffer_init (&reply->buffer);
    msgpack_packer_init (&pk, &reply->buffer, msgpack_sbuffer_write);
    kf_pipeline_pack_result (&turn, &pk);
    msgpack_sbuffer_init (&reply->meta);
    msgpack_sbuffer_init (&reply->slots);
    kf_turn_release (&turn);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&job);
    CHECK (kf_mp_unpack_one (reply->buffer.data, reply->buffer.size, &reply->unpacked));
    reply->result = &reply->unpacked.data;
    const msgpack_object *slots = kf_mp_get (reply->result, "slots");
    CHECK (slots && slots->type == MSGPACK_OBJECT_MAP);
    const char *text;
    size_t len;
    CHECK (kf_mp_str (kf_mp_get (reply->result, "reply"), &text, &len));
}

static void
s_reply_destroy (s_reply_t *reply)
{
    msgpack_unpacked_destroy (&reply->unpacked);
    msgpack_sbuffer_destroy (&reply->buffer);
    msgpack_sbuffer_destroy (&reply->slots);
    msgpack_sbuffer_destroy (&reply->meta);
}

static const char *
s_str (const msgpack_object *map, const char *key)
{
    static char buffer [8192];
    const char *s;
    size_t len;
    if (!kf_mp_str (kf_mp_get (map, key), &s, &len) || len >= sizeof buffer)
        return "";
    memcpy (buffer, s, len);
    buffer [len] = 0;
    return buffer;
}

static void
s_test_knowledge (s_world_t *world)
{
    s_reply_t r;
    s_chat (world, "怎么申请退货？", NULL, 0, 1, &r);
    CHECK_STR (s_str (r.result, "intent"), "knowledge_qa");
    CHECK (strstr (s_str (r.result, "reply"), "申请售后"));
    CHECK (kf_mp_get (r.result, "cache"));                  //  Sure, nothing else shaped it
    CHECK_INT (kf_mp_get (r.result, "sub_tasks")->via.array.size, 0);
    CHECK_INT (kf_mp_get_int (r.result, "handoff_reason", -1), 0);
    CHECK (kf_mp_get_double (r.result, "emotion_score", 0) >= KF_EMOTION_UPSET_BELOW);
    s_reply_destroy (&r);
}

//  Two requests: sub_tasks with each clause's text
static void
s_test_sub_tasks (s_world_t *world)
{
    s_reply_t r;
    s_chat (world, "我要退货，另外我的快递到哪了", NULL, 0, 1, &r);
    const msgpack_object *subs = kf_mp_get (r.result, "sub_tasks");
    CHECK_INT (subs->via.array.size, 2);
    CHECK_STR (s_str (&subs->via.array.ptr [0], "intent"), "knowledge_qa");
    CHECK_STR (s_str (&subs->via.array.ptr [0], "text"), "我要退货");
    CHECK_STR (s_str (&subs->via.array.ptr [1], "intent"), "business_query");
    CHECK_STR (s_str (&subs->via.array.ptr [1], "text"), "我的快递到哪了");
    CHECK (!kf_mp_get (r.result, "cache"));                 //  Never cached with sub_tasks
    //  Each request in turn: "我要退货" ("我要" is a filler) finds the returns item, answered or
    //  first of the "did you mean" (the bot's calibration decides); the logistics answer follows,
    //  its item the last source; a turn that answered a request counts as answered
    const char *reply = s_str (r.result, "reply");
    CHECK (strstr (reply, "申请售后") || strstr (reply, "您是不是想问：\n1. 怎么申请退货？"));
    CHECK (strstr (reply, "\n\n在App「我的-我的订单」中打开对应订单，点击「查看物流」"));
    const msgpack_object *sources = kf_mp_get (r.result, "sources");
    CHECK (sources->via.array.size >= 1);
    CHECK_STR (s_str (&sources->via.array.ptr [sources->via.array.size - 1], "question"), "怎么查询物流信息？");
    CHECK_INT (kf_mp_get_int (r.result, "failed_attempts", -1), 0);
    s_reply_destroy (&r);
    //  An ambiguous first request (did you mean ...), then the logistics answer, its item the
    //  only source
    s_chat (world, "密码，另外我的快递到哪了", NULL, 0, 1, &r);
    CHECK_INT (kf_mp_get (r.result, "sub_tasks")->via.array.size, 2);
    reply = s_str (r.result, "reply");
    CHECK (strstr (reply, "您是不是想问"));
    CHECK (strstr (reply, "\n\n在App「我的-我的订单」中打开对应订单，点击「查看物流」"));
    sources = kf_mp_get (r.result, "sources");
    CHECK_INT (sources->via.array.size, 1);
    CHECK_STR (s_str (&sources->via.array.ptr [0], "question"), "怎么查询物流信息？");
    s_reply_destroy (&r);
    //  Both answered: both items are sources, the first request's first
    s_chat (world, "怎么申请退货，另外我的快递到哪了", NULL, 0, 1, &r);
    CHECK_INT (kf_mp_get (r.result, "sub_tasks")->via.array.size, 2);
    reply = s_str (r.result, "reply");
    CHECK (strstr (reply, "申请售后"));
    CHECK (strstr (reply, "\n\n在App「我的-我的订单」中打开对应订单，点击「查看物流」"));
    CHECK (strstr (reply, "申请售后") < strstr (reply, "查看物流"));
    sources = kf_mp_get (r.result, "sources");
    CHECK_INT (sources->via.array.size, 2);
    CHECK_STR (s_str (&sources->via.array.ptr [0], "question"), "怎么申请退货？");
    CHECK_STR (s_str (&sources->via.array.ptr [1], "question"), "怎么查询物流信息？");
    CHECK (!kf_mp_get (r.result, "cache"));
    s_reply_destroy (&r);
    //  A calm clause the model reads as upset (黑洞是什么: emotion_sensitive 0.48, the message
    //  scores 0.60): 15.2 holds for each clause, so it takes its next best intent, and the
    //  turn is no emotion_sensitive one (no apology)
    s_chat (world, "黑洞是什么，另外我的快递到哪了", NULL, 0, 1, &r);
    CHECK (kf_mp_get_double (r.result, "emotion_score", 0) >= KF_EMOTION_UPSET_BELOW);
    CHECK (strcmp (s_str (r.result, "intent"), "emotion_sensitive") != 0);
    subs = kf_mp_get (r.result, "sub_tasks");
    for (uint32_t t = 0; t < subs->via.array.size; t++)
        CHECK (strcmp (s_str (&subs->via.array.ptr [t], "intent"), "emotion_sensitive") != 0);
    CHECK_INT (subs->via.array.size, 2);
    CHECK_STR (s_str (&subs->via.array.ptr [0], "intent"), "knowledge_qa");
    CHECK_STR (s_str (&subs->via.array.ptr [0], "text"), "黑洞是什么");
    CHECK_STR (s_str (&subs->via.array.ptr [1], "intent"), "business_query");
    CHECK_STR (s_str (r.result, "intent"), "knowledge_qa");
    CHECK (strncmp (s_str (r.result, "reply"), "非常抱歉", strlen ("非常抱歉")) != 0);
    CHECK (!strstr (s_str (r.result, "reply"), "给您带来不便"));
    CHECK (strstr (s_str (r.result, "reply"), "查看物流"));    //  The logistics answer follows
    s_reply_destroy (&r);
    //  An upset customer's question underneath: an empathetic prefix and the answer
    s_chat (world, "你们太慢了，退款多久到账", NULL, 0, 1, &r);
    CHECK_STR (s_str (r.result, "intent"), "emotion_sensitive");
    CHECK_STR (s_str (&kf_mp_get (r.result, "sub_tasks")->via.array.ptr [1], "text"), "退款多久到账");
    CHECK (kf_mp_get (r.result, "sources")->via.array.size == 1);
    CHECK (strstr (s_str (r.result, "reply"), "抱歉"));
    s_reply_destroy (&r);
}

//  Two requests, one for the business API of a bot that has one: the knowledge request is
//  answered, and the business request asks for the order number it needs (the API answers a
//  turn of its own); with the number known, nothing is added
static void
s_test_sub_tasks_business (s_world_t *world)
{
    char path [] = "/tmp/kefu-pipeline-XXXXXX";
    int fd = mkstemp (path);
    CHECK (fd >= 0);
    const char *ini = "[business orders]\nurl = http://127.0.0.1:9/orders/{order_no}\n"
                      "reply = 订单{order_no}：{status}\nask_reply = 请提供您的订单号，我来帮您查询。\n"
                      "[bot default]\nbusiness = orders\n";
    CHECK (write (fd, ini, strlen (ini)) == (ssize_t) strlen (ini));
    close (fd);
    char err [256];
    kf_config_t *server = kf_config_load (path, err, sizeof err);
    if (!server)
        fprintf (stderr, "config: %s\n", err);
    CHECK (server);
    unlink (path);
    world->server = server;
    s_reply_t r;
    s_chat (world, "怎么申请退货，另外我的快递到哪了", NULL, 0, 1, &r);
    CHECK_STR (s_str (r.result, "intent"), "knowledge_qa");
    const char *reply = s_str (r.result, "reply");
    CHECK (strstr (reply, "申请售后"));
    CHECK (strstr (reply, "\n\n请提供您的订单号，我来帮您查询。"));
    CHECK_INT (kf_mp_get (r.result, "sources")->via.array.size, 1);
    s_reply_destroy (&r);
    s_reply_t first;
    s_chat (world, "订单号是 ORD-2024-001", NULL, 0, 1, &first);
    s_chat (world, "怎么申请退货，顺便查下物流", &first, 0, 1, &r);
    CHECK (strstr (s_str (r.result, "reply"), "申请售后"));
    CHECK (!strstr (s_str (r.result, "reply"), "订单号"));
    s_reply_destroy (&r);
    s_reply_destroy (&first);
    world->server = NULL;
    kf_config_destroy (&server);
}

static void
s_test_chitchat (s_world_t *world)
{
    s_reply_t r;
    s_chat (world, "你好", NULL, 0, 0, &r);
    CHECK_STR (s_str (r.result, "intent"), "chitchat");
    CHECK_STR (s_str (r.result, "reply"), "您好，我是智能客服小快，请问有什么可以帮您？");
    CHECK_INT (kf_mp_get_int (r.result, "failed_attempts", -1), 0);
    s_reply_destroy (&r);
    s_chat (world, "你是谁呀？", NULL, 0, 1, &r);          //  Particles and punctuation folded
    CHECK_STR (s_str (r.result, "reply"), "我是本店的智能客服小快。");
    s_reply_destroy (&r);
    s_chat (world, "谢谢你啦", NULL, 0, 1, &r);             //  Near: 谢谢你
    CHECK_STR (s_str (r.result, "reply"), "不客气，很高兴能帮到您！");
    s_reply_destroy (&r);
    s_chat (world, "今天天气怎么样", NULL, 0, 1, &r);       //  Small talk the table lacks
    CHECK_STR (s_str (r.result, "intent"), "chitchat");
    CHECK_STR (s_str (r.result, "reply"), KF_CHITCHAT_GENERIC_REPLY);
    s_reply_destroy (&r);
    //  A bot with its own table, and the default bot's model
    s_chat_bot (world, world->models, "shop-2", "你好", NULL, 0, 0, &r);
    CHECK_STR (s_str (r.result, "reply"), "二号店欢迎您！");
    s_reply_destroy (&r);
}

//  A ticket over three turns, the draft carried in slots
static void
s_test_ticket (s_world_t *world)
{
    s_reply_t r1, r2, r3;
    s_chat (world, "我家空调坏了，要报修", NULL, 0, 1, &r1);
    CHECK_STR (s_str (r1.result, "intent"), "ticket");
    CHECK (strstr (s_str (r1.result, "reply"), "地址"));
    CHECK_STR (s_str (kf_mp_get (r1.result, "slots"), "awaiting"), "address");
    s_chat (world, "上海市浦东新区世纪大道100号2栋301室", &r1, 0, 1, &r2);
    CHECK_STR (s_str (r2.result, "intent"), "ticket");      //  The dialog decides, not the model
    CHECK (kf_mp_get_double (r2.result, "intent_confidence", 0) == 1.0);
    CHECK_STR (s_str (kf_mp_get (r2.result, "slots"), "awaiting"), "phone");
    s_chat (world, "13812345678", &r2, 0, 1, &r3);
    CHECK_STR (s_str (r3.result, "reply"), "");
    const msgpack_object *ticket = kf_mp_get (r3.result, "ticket");
    CHECK (ticket && kf_mp_str_eq (ticket, "type", "报修"));
    CHECK_STR (s_str (kf_mp_get (ticket, "fields"), "phone"), "13812345678");
    CHECK_STR (s_str (kf_mp_get (ticket, "fields"), "address"), "上海市浦东新区世纪大道100号2栋301室");
    CHECK_STR (s_str (kf_mp_get (ticket, "fields"), "description"), "我家空调坏了，要报修");
    CHECK (!kf_mp_get (kf_mp_get (r3.result, "slots"), "ticket_draft"));
    CHECK (!kf_mp_get (kf_mp_get (r3.result, "slots"), "awaiting"));
    CHECK_STR (s_str (kf_mp_get (r3.result, "slots"), "phone"), "13812345678");  //  Remembered
    s_reply_destroy (&r1);
    s_reply_destroy (&r2);
    s_reply_destroy (&r3);
    //  A question in between: answered, with a reminder; the draft waits
    s_chat (world, "我要投诉", NULL, 0, 1, &r1);
    CHECK_STR (s_str (kf_mp_get (r1.result, "slots"), "awaiting"), "phone");
    s_chat (world, "发票怎么开", &r1, 0, 1, &r2);
    CHECK_STR (s_str (r2.result, "intent"), "knowledge_qa");
    CHECK (strstr (s_str (r2.result, "reply"), "工单还未提交"));
    CHECK (!kf_mp_get (r2.result, "cache"));
    CHECK_STR (s_str (kf_mp_get (r2.result, "slots"), "awaiting"), "phone");
    s_chat (world, "算了", &r2, 0, 1, &r3);
    CHECK_STR (s_str (r3.result, "reply"), KF_TICKET_CANCELLED_REPLY);
    CHECK (!kf_mp_get (kf_mp_get (r3.result, "slots"), "awaiting"));
    s_reply_destroy (&r1);
    s_reply_destroy (&r2);
    s_reply_destroy (&r3);
}

//  The phone awaited by a complaint (15.4): an answer that holds a valid number fills it whatever
//  the model makes of its words ("电话 13800138000" reads 0.90 transfer_to_human, "电话是
//  021-12345678" 0.56 business_query); only an explicit request for a person hands over, and a
//  model's transfer_to_human that answers nothing is a request of its own
static void
s_test_dialog_answers (s_world_t *world)
{
    static const struct { const char *answer, *phone; } answers [] = {
        { "电话 13800138000", "13800138000" }, { "电话是 021-12345678", "021-12345678" },
        { "联系电话13800138000", "13800138000" }, { "13800138000", "13800138000" },
    };
    const char *complaint = "我要投诉，快递员把东西扔门口了";
    s_reply_t start, r;
    s_chat (world, complaint, NULL, 0, 1, &start);
    CHECK_STR (s_str (kf_mp_get (start.result, "slots"), "awaiting"), "phone");
    for (size_t i = 0; i < sizeof answers / sizeof answers [0]; i++) {
        s_chat (world, answers [i].answer, &start, 0, 1, &r);
        const msgpack_object *ticket = kf_mp_get (r.result, "ticket");
        if (!ticket || ticket->type != MSGPACK_OBJECT_MAP)
            fprintf (stderr, "answer %s: intent %s, reply %s\n", answers [i].answer,
                     s_str (r.result, "intent"), s_str (r.result, "reply"));
        CHECK (ticket && ticket->type == MSGPACK_OBJECT_MAP && kf_mp_str_eq (ticket, "type", "投诉"));
        CHECK_STR (s_str (kf_mp_get (ticket, "fields"), "phone"), answers [i].phone);
        CHECK_STR (s_str (kf_mp_get (ticket, "fields"), "description"), complaint);
        CHECK_STR (s_str (r.result, "intent"), "ticket");
        CHECK (kf_mp_get_double (r.result, "intent_confidence", 0) == 1.0);
        CHECK (!kf_mp_get_bool (r.result, "escalate_to_human", true));
        CHECK_INT (kf_mp_get_int (r.result, "handoff_reason", -1), 0);
        s_reply_destroy (&r);
    }
    //  Explicit: people take over, the draft is dropped
    static const char *people [] = { "转人工", "电话 13800138000，还是给我转人工吧" };
    for (size_t i = 0; i < sizeof people / sizeof people [0]; i++) {
        s_chat (world, people [i], &start, 0, 1, &r);
        CHECK_STR (s_str (r.result, "intent"), "transfer_to_human");
        CHECK (kf_mp_get_bool (r.result, "escalate_to_human", false));
        CHECK_INT (kf_mp_get_int (r.result, "handoff_reason", 0), 2);
        CHECK (!kf_mp_get (r.result, "ticket") || kf_mp_get (r.result, "ticket")->type == MSGPACK_OBJECT_NIL);
        CHECK (!kf_mp_get (kf_mp_get (r.result, "slots"), "ticket_draft"));
        CHECK (!kf_mp_get (kf_mp_get (r.result, "slots"), "awaiting"));
        s_reply_destroy (&r);
    }
    //  The model's guess that answers nothing: asking for a person in other words still hands over
    s_chat (world, "我不要跟机器人说话", &start, 0, 1, &r);
    CHECK_STR (s_str (r.result, "intent"), "transfer_to_human");
    CHECK_INT (kf_mp_get_int (r.result, "handoff_reason", 0), 2);
    CHECK (!kf_mp_get (kf_mp_get (r.result, "slots"), "ticket_draft"));
    s_reply_destroy (&r);
    //  Outside a dialog the model's transfer_to_human stands
    s_chat (world, "我不要跟机器人说话", NULL, 0, 1, &r);
    CHECK_INT (kf_mp_get_int (r.result, "handoff_reason", 0), 2);
    s_reply_destroy (&r);
    s_reply_destroy (&start);
}

//  A complaint is upset by nature and a ticket dialog never hands over for it: the empathetic
//  sentence before the dialog's question promises no transfer (15.4, 15.5)
static void
s_test_dialog_empathy (s_world_t *world)
{
    s_reply_t r;
    s_chat (world, "我要投诉，快递员态度很差", NULL, 0, 1, &r);
    CHECK (kf_mp_get_double (r.result, "emotion_score", 1) < 0.15);
    CHECK_STR (s_str (r.result, "intent"), "ticket");
    CHECK (!kf_mp_get_bool (r.result, "escalate_to_human", true));
    const char *reply = s_str (r.result, "reply");
    CHECK (strstr (reply, "抱歉") == reply + strlen ("非常"));
    CHECK (strstr (reply, "请留下您的联系电话"));
    CHECK (!strstr (reply, "转接") && !strstr (reply, "专人") && !strstr (reply, "稍等"));
    CHECK_STR (s_str (kf_mp_get (r.result, "slots"), "awaiting"), "phone");
    s_reply_destroy (&r);
    //  With the emotion handoff off, an upset question is not handed over: no promise either
    s_chat_json (world, "{\"params\": {\"message\": \"你们这什么破服务，气死我了，退款多久到账\"},"
                 " \"context\": {\"handoff\": {\"emotion_below\": 0}}}", &r);
    CHECK (kf_mp_get_double (r.result, "emotion_score", 1) < 0.15);
    CHECK_STR (s_str (r.result, "intent"), "emotion_sensitive");
    CHECK (!kf_mp_get_bool (r.result, "escalate_to_human", true));
    reply = s_str (r.result, "reply");
    CHECK (strstr (reply, "抱歉"));
    CHECK (!strstr (reply, "转接") && !strstr (reply, "专人"));
    s_reply_destroy (&r);
}

//  The order number of one turn is remembered for the next
static void
s_test_business_entities (s_world_t *world)
{
    s_reply_t r1, r2;
    s_chat (world, "订单号是 ORD-2024-001", NULL, 0, 1, &r1);
    CHECK_STR (s_str (r1.result, "intent"), "business_query");
    CHECK_STR (s_str (kf_mp_get (r1.result, "slots"), "order_no"), "ORD-2024-001");
    //  No business API and no knowledge answer: says it cannot look the order up and how to
    //  reach a person, no "did you mean" guesses; an unanswered turn
    CHECK_STR (s_str (r1.result, "reply"), "抱歉，我这里暂时查不到订单 ORD-2024-001 的实时信息。"
                                           "如需查询，请输入“转人工”，人工客服会为您处理。");
    CHECK_INT (kf_mp_get (r1.result, "suggestions")->via.array.size, 0);
    CHECK_INT (kf_mp_get_int (r1.result, "failed_attempts", -1), 1);
    s_chat (world, "那它的物流到哪了？", &r1, 0, 1, &r2);
    CHECK_STR (s_str (r2.result, "intent"), "business_query");
    CHECK_STR (s_str (kf_mp_get (r2.result, "slots"), "order_no"), "ORD-2024-001");
    //  No business API configured: the knowledge base helps instead
    CHECK (*s_str (r2.result, "reply"));
    s_reply_destroy (&r1);
    s_reply_destroy (&r2);
}

static void
s_test_handoff (s_world_t *world)
{
    s_reply_t r;
    s_chat (world, "别废话了，转人工", NULL, 0, 1, &r);
    CHECK_STR (s_str (r.result, "intent"), "transfer_to_human");
    CHECK (kf_mp_get_bool (r.result, "escalate_to_human", false));
    CHECK_INT (kf_mp_get_int (r.result, "handoff_reason", 0), 2);
    s_reply_destroy (&r);
    s_chat (world, "你们这帮骗子，垃圾服务，我要去12315投诉！！！", NULL, 0, 1, &r);
    CHECK_INT (kf_mp_get_int (r.result, "handoff_reason", 0), 4);
    CHECK (kf_mp_get_double (r.result, "emotion_score", 1) < 0.30);
    CHECK (strstr (s_str (r.result, "reply"), "人工客服"));
    s_reply_destroy (&r);
    s_chat (world, "怎么申请退货？", NULL, 0, 3, &r);      //  The third time in a row
    CHECK_INT (kf_mp_get_int (r.result, "handoff_reason", 0), 5);
    CHECK (!kf_mp_get (r.result, "cache"));
    CHECK_INT (kf_mp_get (r.result, "sources")->via.array.size, 0);
    s_reply_destroy (&r);
    s_chat (world, "你们支持比特币付款吗", NULL, 0, 1, &r);   //  First miss
    CHECK_INT (kf_mp_get_int (r.result, "handoff_reason", -1), 0);
    CHECK_INT (kf_mp_get_int (r.result, "failed_attempts", 0), 1);
    s_reply_destroy (&r);
    s_chat (world, "你们支持比特币付款吗", NULL, 1, 2, &r);   //  Second miss
    CHECK_INT (kf_mp_get_int (r.result, "handoff_reason", 0), 3);
    CHECK (kf_mp_get_bool (r.result, "escalate_to_human", false));
    CHECK_INT (kf_mp_get_int (r.result, "failed_attempts", 0), 2);
    s_reply_destroy (&r);
    s_chat (world, "好的", NULL, 0, 5, &r);                 //  Small talk is no repeated question
    CHECK_INT (kf_mp_get_int (r.result, "handoff_reason", -1), 0);
    s_reply_destroy (&r);
    //  Staff talked about, not asked for, are no request for a person; sent for, they are
    static const char *about [] = { "前台工作人员中午休息吗", "办完事想给窗口工作人员评价一下",
                                    "网点工作人员说审批结果会短信通知", "需要经理签字吗",
                                    "我找到了你们经理的电话", "找领导审批要多久", "有没有负责人的电话",
                                    "我让经理签过字了", "物业换了新经理之后服务变差了", NULL };
    for (int i = 0; about [i]; i++) {
        s_chat (world, about [i], NULL, 0, 1, &r);
        CHECK (!kf_mp_get_bool (r.result, "escalate_to_human", true));
        s_reply_destroy (&r);
    }
    static const char *sent_for [] = { "让你们值班经理跟我说", "叫你们领导来", NULL };
    for (int i = 0; sent_for [i]; i++) {
        s_chat (world, sent_for [i], NULL, 0, 1, &r);
        CHECK (kf_mp_get_bool (r.result, "escalate_to_human", false));
        s_reply_destroy (&r);
    }
}

//  Context the broker hands back as it was stored: wrong types, out-of-range numbers, a draft a
//  previous version wrote. Every turn answers, and nothing overflows
static void
s_test_hostile_context (s_world_t *world)
{
    static const char *jobs [] = {
        "{\"params\": {\"message\": \"怎么申请退货\"}, \"context\": {\"failed_attempts\": 9223372036854775807,"
        " \"repeat_count\": 9223372036854775807}}",
        "{\"params\": {\"message\": \"你们支持比特币吗\"}, \"context\": {\"failed_attempts\": -9223372036854775807}}",
        "{\"params\": {\"message\": \"你们支持比特币吗\"}, \"context\": {\"failed_attempts\": 9223372036854775807,"
        " \"handoff\": {\"failed_attempts\": 0}}}",
        "{\"params\": {\"message\": \"发票\"}, \"context\": {\"slots\": [1, 2, 3], \"handoff\": \"x\"}}",
        "{\"params\": {\"message\": \"13812345678\"}, \"context\": {\"slots\": {\"ticket_draft\": 5,"
        " \"awaiting\": \"phone\"}}}",
        "{\"params\": {\"message\": \"13812345678\"}, \"context\": {\"slots\": {\"ticket_draft\": {\"type\": \"报修\","
        " \"fields\": \"nope\"}, \"awaiting\": \"phone\"}}}",
        "{\"params\": {\"message\": \"好的\"}, \"context\": {\"slots\": {\"ticket_draft\": {\"type\": 7,"
        " \"fields\": {\"phone\": 1, \"address\": null, \"description\": [\"a\"]}}, \"awaiting\": \"nonsense\"}}}",
        "{\"params\": {\"message\": \"好的\"}, \"context\": {\"slots\": {\"ticket_draft\": {\"type\": \"投诉\","
        " \"fields\": {\"address\": \"上海市浦东新区世纪大道100号\"}}, \"awaiting\": \"address\"}}}",
        "{\"params\": {\"message\": \"说明一下情况\"}, \"context\": {\"slots\": {\"ticket_draft\": {\"type\": \"\"},"
        " \"awaiting\": \"description\"}}}",
        "{\"params\": {\"message\": \"那它的物流到哪了\"}, \"context\": {\"slots\": {\"order_no\": {\"a\": 1},"
        " \"phone\": 13812345678, \"other\": {\"deep\": [[[[1]]]]}, \"7\": 1}}}",
        "{\"params\": {\"message\": 42, \"bot_id\": [\"x\"]}, \"context\": 7}",
        "{\"params\": \"x\", \"context\": null}",
        "[1, 2]",
    };
    for (size_t j = 0; j < sizeof jobs / sizeof jobs [0]; j++) {
        s_reply_t r;
        s_chat_json (world, jobs [j], &r);
        int64_t failed = kf_mp_get_int (r.result, "failed_attempts", -1);
        if (!(failed >= 0 && failed < INT32_MAX))
            fprintf (stderr, "job %zu: failed_attempts %lld\n", j, (long long) failed);
        CHECK (failed >= 0 && failed < INT32_MAX);
        s_reply_destroy (&r);
    }
}

//  Repeats `unit` until `bytes` (at most) into a heap string
static char *
s_repeat (const char *unit, size_t bytes)
{
    size_t n = strlen (unit), count = bytes / n;
    char *text = malloc (count * n + 1);
    for (size_t i = 0; i < count; i++)
        memcpy (text + i * n, unit, n);
    text [count * n] = 0;
    return text;
}

//  Messages nobody writes on purpose, alone and as the answer a ticket dialog waits for: each gets
//  a well-formed result quickly (4,000 characters is the broker's default limit; 16 KB of 4-byte
//  characters)
static void
s_test_hostile_messages (s_world_t *world)
{
    static const struct { const char *unit; size_t bytes; } cases [] = {
        { "我", 12000 }, { "，", 12000 }, { "！？", 12000 }, { "😀", 16000 }, { "a ", 4000 },
        { "xbrk ", 4000 }, { "顺便", 12000 }, { "ORD-2024-001 ", 4000 }, { "1", 4000 },
        { "13812345678 ", 4000 }, { "我要我要", 12000 }, { "取消", 12000 }, { "路号", 12000 },
        { "{order_no}", 4000 }, { "转人工", 12000 }, { "。", 3 }, { " ", 1 }, { "🙂，", 7 },
        { "Where is my order ORD-2024-001, and also I want a refund! ", 4000 },
        { "我要报修，地址是上海市路1号，电话13812345678，", 12000 }
    };
    s_reply_t start;
    s_chat (world, "我要投诉", NULL, 0, 1, &start);
    CHECK_STR (s_str (kf_mp_get (start.result, "slots"), "awaiting"), "phone");
    s_reply_t address;
    s_chat (world, "我家空调坏了，要报修", NULL, 0, 1, &address);
    CHECK_STR (s_str (kf_mp_get (address.result, "slots"), "awaiting"), "address");
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        char *message = s_repeat (cases [c].unit, cases [c].bytes);
        const s_reply_t *previous [3] = { NULL, &start, &address };
        for (int p = 0; p < 3; p++) {
            int64_t begin = kf_mono_us ();
            s_reply_t r;
            s_chat (world, message, previous [p], 0, 1, &r);
            int64_t took_us = kf_mono_us () - begin;
            if (took_us > 500000)
                fprintf (stderr, "case %zu (%s x %zu), turn %d: %lld us\n", c, cases [c].unit,
                         cases [c].bytes, p, (long long) took_us);
            CHECK (took_us < 500000);
            const msgpack_object *subs = kf_mp_get (r.result, "sub_tasks");
            for (uint32_t t = 0; t < subs->via.array.size; t++) {
                const msgpack_object *text = kf_mp_get (&subs->via.array.ptr [t], "text");
                CHECK (text && kf_utf8_is_valid (text->via.str.ptr, text->via.str.size));
            }
            const msgpack_object *reply = kf_mp_get (r.result, "reply");
            CHECK (kf_utf8_is_valid (reply->via.str.ptr, reply->via.str.size));
            s_reply_destroy (&r);
        }
        free (message);
    }
    s_reply_destroy (&start);
    s_reply_destroy (&address);
}

//  A bot without intents anywhere: the rules, with the chit-chat table
static void
s_test_rules (s_world_t *world)
{
    kf_bot_models_t *models = kf_bot_models_new ();
    const char *hello [] = { "你好", "在吗" };
    kf_bot_models_add_chitchat (models, "default", hello, 2, "您好！");
    kf_bot_models_train (models, NULL);
    s_reply_t r;
    s_chat_bot (world, models, "default", "轉人工", NULL, 0, 1, &r);
    CHECK_STR (s_str (r.result, "intent"), "transfer_to_human");
    s_reply_destroy (&r);
    s_chat_bot (world, models, "default", "你好！", NULL, 0, 0, &r);
    CHECK_STR (s_str (r.result, "intent"), "chitchat");
    CHECK_STR (s_str (r.result, "reply"), "您好！");
    s_reply_destroy (&r);
    s_chat_bot (world, models, "default", "发票怎么开", NULL, 0, 1, &r);
    CHECK_STR (s_str (r.result, "intent"), "knowledge_qa");
    CHECK (kf_mp_get (r.result, "cache"));
    s_reply_destroy (&r);
    s_chat_bot (world, NULL, "default", "你好", NULL, 0, 0, &r);     //  Nothing loaded yet
    CHECK_STR (s_str (r.result, "intent"), "knowledge_qa");
    s_reply_destroy (&r);
    kf_bot_models_destroy (&models);
}

//  What the intent and emotion stages cost per message, and a whole turn
static void
s_test_cost (s_world_t *world)
{
    static const char *messages [] = {
        "怎么申请退货？", "我要退货，顺便查下物流", "你好", "订单ORD-2024-001到哪了",
        "你们这什么破服务，气死我了", "我家空调坏了，要报修", "转人工", "发票怎么开",
        "优惠券能叠加使用吗", "谢谢你，再见"
    };
    int count = sizeof messages / sizeof messages [0], rounds = 2000;
    kf_turn_t turn;
    memset (&turn, 0, sizeof turn);
    kf_bot_models_get (world->models, "default", &turn.model);
    double stage_us [2];
    for (int stage = 0; stage < 2; stage++) {
        int64_t start = kf_mono_us ();
        for (int r = 0; r < rounds; r++)
            for (int m = 0; m < count; m++) {
                turn.message = messages [m];
                turn.message_len = strlen (messages [m]);
                if (stage == 0)
                    kf_stage_intent (&turn);
                else
                    turn.emotion_score = kf_emotion_score (turn.message, turn.message_len);
            }
        stage_us [stage] = (double) (kf_mono_us () - start) / (rounds * count);
    }
    s_reply_t reply;
    int64_t start = kf_mono_us ();
    for (int r = 0; r < rounds / 10; r++)
        for (int m = 0; m < count; m++) {
            s_chat (world, messages [m], NULL, 0, 1, &reply);
            s_reply_destroy (&reply);
        }
    double turn_us = (double) (kf_mono_us () - start) / (rounds / 10 * count);
    printf ("per message: intent stage %.1f us, emotion %.1f us; a whole turn (job in, result "
            "packed, meta packed, unpacked and checked): %.1f us\n", stage_us [0], stage_us [1],
            turn_us);
}

int
main (int argc, char *argv [])
{
    s_world_t world;
    s_world_init (&world, argc > 1 ? argv [1] : ".");
    s_test_knowledge (&world);
    s_test_sub_tasks (&world);
    s_test_sub_tasks_business (&world);
    s_test_chitchat (&world);
    s_test_ticket (&world);
    s_test_dialog_answers (&world);
    s_test_dialog_empathy (&world);
    s_test_business_entities (&world);
    s_test_handoff (&world);
    s_test_rules (&world);
    s_test_hostile_context (&world);
    s_test_hostile_messages (&world);
    s_test_cost (&world);
    s_world_destroy (&world);
    TEST_PASS ("test_pipeline");
    return 0;
}
