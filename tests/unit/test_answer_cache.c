/*  test_answer_cache.c - the hot-answer cache: keyed by bot, question and version (another version
    or bot never hits), labels pick the variant as a worker would, LRU eviction within the byte
    bound, invalidation per bot, hit and miss counts; and the rich-content checks it relies on. */
#include "broker/answer_cache.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/rich_content.h"
#include "testutil.h"
#include <string.h>

//  Unpacks JSON text into `unpacked` (through `buffer`, which the caller destroys)
static const msgpack_object *
s_json (msgpack_sbuffer *buffer, msgpack_unpacked *unpacked, const char *json)
{
    msgpack_sbuffer_init (buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, buffer, msgpack_sbuffer_write);
    CHECK_INT (kf_json_to_msgpack (json, strlen (json), &pk, NULL, 0), 0);
    CHECK (kf_mp_unpack_one (buffer->data, buffer->size, unpacked));
    return &unpacked->data;
}

//  Looks up and returns the reply text ("" on a miss)
static const char *
s_get (kf_answer_cache_t *cache, const char *bot, const char *question, int64_t version,
       const char *labels_json)
{
    static char reply [256];
    msgpack_sbuffer lb, out;
    msgpack_unpacked labels, result;
    const msgpack_object *l = labels_json ? s_json (&lb, &labels, labels_json) : NULL;
    msgpack_sbuffer_init (&out);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &out, msgpack_sbuffer_write);
    *reply = 0;
    const kf_answer_entry_t *entry = kf_answer_cache_find (cache, bot, question, strlen (question),
                                                           version);
    if (entry) {
        kf_answer_cache_pack (entry, l, &pk);
        CHECK (kf_mp_unpack_one (out.data, out.size, &result));
        CHECK (kf_mp_get_bool (&result.data, "cached", false));
        CHECK (kf_mp_str_eq (&result.data, "intent", "knowledge_qa"));
        const char *text;
        size_t len;
        CHECK (kf_mp_str (kf_mp_get (&result.data, "reply"), &text, &len));
        snprintf (reply, sizeof reply, "%.*s", (int) len, text);
        msgpack_unpacked_destroy (&result);
    }
    msgpack_sbuffer_destroy (&out);
    if (labels_json) {
        msgpack_unpacked_destroy (&labels);
        msgpack_sbuffer_destroy (&lb);
    }
    return reply;
}

//  Offers the answers of `question` as the worker's answer to `asked`
static void
s_put_asked (kf_answer_cache_t *cache, const char *bot, const char *question, int64_t version,
             const char *asked)
{
    char json [1024];
    snprintf (json, sizeof json,
              "{\"question\":\"%s\",\"kb_version\":%lld,\"answers\":["
              "{\"labels\":{},\"answer\":\"默认\",\"response_type\":\"text\",\"response_content\":null},"
              "{\"labels\":{\"vip\":\"true\"},\"answer\":\"会员\",\"response_type\":\"text\"},"
              "{\"labels\":{\"vip\":\"true\",\"city\":\"beijing\"},\"answer\":\"北京会员\","
              "\"response_type\":\"style_text\",\"response_content\":{\"text\":\"北京\"}}]}",
              question, (long long) version);
    msgpack_sbuffer cb, rb;
    msgpack_unpacked c, r;
    s_json (&rb, &r, "{\"intent\":\"knowledge_qa\",\"confidence\":1.0,\"sources\":[{\"id\":1}]}");
    kf_wp_result_t result;
    kf_wp_result_decode (&r.data, &result);
    result.cache = s_json (&cb, &c, json);
    kf_answer_cache_put (cache, bot, &result, asked, strlen (asked));
    msgpack_unpacked_destroy (&c);
    msgpack_unpacked_destroy (&r);
    msgpack_sbuffer_destroy (&cb);
    msgpack_sbuffer_destroy (&rb);
}

static void
s_put (kf_answer_cache_t *cache, const char *bot, const char *question, int64_t version)
{
    s_put_asked (cache, bot, question, version, question);
}

int
main (void)
{
    kf_answer_cache_t *cache = kf_answer_cache_new (1 << 20);
    s_put (cache, "shop", "怎么退货", 7);
    CHECK_STR (s_get (cache, "shop", "怎么退货", 7, NULL), "默认");
    CHECK_STR (s_get (cache, "shop", "怎么退货", 7, "{\"vip\":\"true\"}"), "会员");
    CHECK_STR (s_get (cache, "shop", "怎么退货", 7, "{\"city\":\"beijing\",\"vip\":\"true\"}"), "北京会员");
    CHECK_STR (s_get (cache, "shop", "怎么退货", 7, "{\"city\":\"beijing\"}"), "默认");
    CHECK_STR (s_get (cache, "shop", "怎么退货", 7, "{\"vip\":\"false\"}"), "默认");
    //  Another version, bot or question never hits
    CHECK_STR (s_get (cache, "shop", "怎么退货", 8, NULL), "");
    CHECK_STR (s_get (cache, "bank", "怎么退货", 7, NULL), "");
    CHECK_STR (s_get (cache, "shop", "怎么退", 7, NULL), "");
    //  A worker asked one question cannot plant answers for another; asked with punctuation, it can
    s_put_asked (cache, "shop", "发票怎么开", 7, "你好");
    CHECK_STR (s_get (cache, "shop", "发票怎么开", 7, NULL), "");
    s_put_asked (cache, "shop", "发票怎么开", 7, "发票怎么开？");
    CHECK_STR (s_get (cache, "shop", "发票怎么开", 7, NULL), "默认");
    //  Invalidation by bot
    s_put (cache, "bank", "怎么开户", 7);
    CHECK_INT (kf_answer_cache_invalidate (cache, "shop"), 2);
    CHECK_STR (s_get (cache, "shop", "怎么退货", 7, NULL), "");
    CHECK_STR (s_get (cache, "bank", "怎么开户", 7, NULL), "默认");
    CHECK_INT (kf_answer_cache_invalidate (cache, NULL), 1);
    kf_answer_cache_destroy (&cache);
    //  LRU within the bound: a recently used entry survives, the oldest goes
    cache = kf_answer_cache_new (8 * 1024);
    char question [32];
    for (int i = 0; i < 200; i++) {
        snprintf (question, sizeof question, "问题%d", i);
        s_put (cache, "shop", question, 1);
        CHECK_STR (s_get (cache, "shop", "问题0", 1, NULL), "默认");     //  Kept hot
    }
    CHECK_STR (s_get (cache, "shop", "问题1", 1, NULL), "");
    CHECK_STR (s_get (cache, "shop", "问题199", 1, NULL), "默认");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    kf_answer_cache_stats_pack (cache, &pk);
    msgpack_unpacked stats;
    CHECK (kf_mp_unpack_one (sb.data, sb.size, &stats));
    CHECK (kf_mp_get_int (&stats.data, "bytes", 0) <= 8 * 1024);
    CHECK (kf_mp_get_int (&stats.data, "entries", 0) > 1);
    CHECK (kf_mp_get_int (&stats.data, "misses", 0) >= 1);
    CHECK (kf_mp_get_double (&stats.data, "hit_rate", 0) > 0.9);
    msgpack_unpacked_destroy (&stats);
    msgpack_sbuffer_destroy (&sb);
    kf_answer_cache_destroy (&cache);
    //  A cache of size 0 keeps nothing
    cache = kf_answer_cache_new (0);
    s_put (cache, "shop", "怎么退货", 7);
    CHECK_STR (s_get (cache, "shop", "怎么退货", 7, NULL), "");
    kf_answer_cache_destroy (&cache);

    //  Rich content checks: each type's shape, unknown fields, text without content
    msgpack_sbuffer tb, cb;
    msgpack_unpacked t, c;
    kf_error_t err;
    CHECK_INT (kf_rich_check (s_json (&tb, &t, "\"form_show\""), s_json (&cb, &c,
               "{\"title\":\"营业时间\",\"params\":[{\"key\":\"工作日\",\"value\":\"9:00-21:00\"}]}"), "item", &err), 0);
    msgpack_unpacked_destroy (&c);
    msgpack_sbuffer_destroy (&cb);
    CHECK_INT (kf_rich_check (&t.data, s_json (&cb, &c, "{\"params\":[{\"key\":\"k\"}]}"), "item", &err), -1);
    CHECK (strstr (err.message, "item.response_content.params[0].value is required"));
    msgpack_unpacked_destroy (&c);
    msgpack_sbuffer_destroy (&cb);
    msgpack_unpacked_destroy (&t);
    msgpack_sbuffer_destroy (&tb);
    CHECK_INT (kf_rich_check (s_json (&tb, &t, "\"template_card\""), s_json (&cb, &c,
               "{\"title\":\"t\",\"rows\":[{\"text\":\"r\",\"action\":\"call\"}]}"), "item", &err), -1);
    CHECK (strstr (err.message, "url, reply, transfer"));
    msgpack_unpacked_destroy (&c);
    msgpack_sbuffer_destroy (&cb);
    CHECK_INT (kf_rich_check (&t.data, s_json (&cb, &c, "{\"title\":\"t\",\"rows\":[{\"text\":\"r\","
               "\"action\":\"url\"}],\"colour\":\"#fff\"}"), "item", &err), -1);
    CHECK (strstr (err.message, "unknown field colour"));
    msgpack_unpacked_destroy (&c);
    msgpack_sbuffer_destroy (&cb);
    msgpack_unpacked_destroy (&t);
    msgpack_sbuffer_destroy (&tb);
    CHECK_INT (kf_rich_check (NULL, NULL, "item", &err), 0);
    CHECK_INT (kf_rich_check (s_json (&tb, &t, "\"style_text\""), s_json (&cb, &c,
               "{\"text\":\"t\",\"color\":\"#12345\"}"), "item", &err), -1);
    msgpack_unpacked_destroy (&c);
    msgpack_sbuffer_destroy (&cb);
    msgpack_unpacked_destroy (&t);
    msgpack_sbuffer_destroy (&tb);
    printf ("test_answer_cache: all checks passed\n");
    return 0;
}
