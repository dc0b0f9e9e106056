/*  test_kb_import.c - `kefuctl kb import` and `kb export` over a real broker: CSV (BOM, CRLF, quoted
    line breaks) and JSONL files of Chinese items with bad rows, each reported with its line and
    reason while the rest import; a second import only updates; a bad header refuses the file; an
    export in either format, on shelf and off, imports into a fresh broker as the same items; the
    export pages past 100 items; --bot keeps knowledge bases apart. */
#include "harness.h"
#include "common/json_codec.h"
#include "common/log.h"

#define S_HEADER "external_id,category,question,similar_questions,answer,status,keywords,response_type," \
                 "response_content,variants"

//  The CSV rows after the header; the expectations below name them by index
static const char *s_csv_rows [] = {
    //  0: ok - a quoted CRLF between similar questions, quotes and a comma in the answer
    "c-1,售后/退货退款,怎么申请退货？,\"如何退货\r\n我想退货怎么操作\","
    "\"在「我的订单」点击\"\"申请售后\"\"，选择退货退款，再寄回商品。\",1,\"退货\n售后\",text,,",
    //  1: ok - off shelf, a style_text answer
    "c-2,会员/权益,会员有什么权益？,,\"金卡会员包邮,生日有礼\",0,,style_text,"
    "\"{\"\"text\"\":\"\"查看会员权益\"\",\"\"color\"\":\"\"#FF6600\"\"}\",",
    //  2: ok - a variant for gold members
    "c-3,售后/发票,发票怎么开？,\"开发票\n电子发票怎么开\",在订单详情页申请开票。,,,,,"
    "\"[{\"\"labels\"\":{\"\"member_level\"\":\"\"gold\"\"},\"\"answer\"\":\"\"金卡会员可开增值税专票。\"\"}]\"",
    //  3: bad JSON in variants
    "c-4,,坏的变体,,答案,,,,,\"[{\"\"labels\"\":\"",
    //  4: a status that is no integer
    "c-5,,状态不对,,答案,abc,,,,",
    //  5: an unknown response type (the broker's judgement)
    "c-6,,未知类型,,答案,,,video,,",
    //  6: no question (the broker's judgement)
    "c-7,,,,没有问题的答案,,,,,",
    //  7: too few fields
    "c-8,只有两列",
    //  8: skipped: a row of empty cells, then a blank line
    ",,,,,,,,,",
    "",
    //  9: ok - an image_text answer, spaces around the status
    "c-9,物流,多久发货？,什么时候发货,\"付款后48小时内发货。\n预售商品以页面为准。\", 1 ,发货,image_text,"
    "\"{\"\"articles\"\":[{\"\"title\"\":\"\"发货说明\"\",\"\"pic_url\"\":\"\"https://img.example.com/ship.png\"\"}]}\",",
};
#define S_CSV_ROWS ((int) (sizeof s_csv_rows / sizeof s_csv_rows [0]))

//  JSONL lines (line n is index n - 1)
static const char *s_jsonl_lines [] = {
    //  1: ok - id and updated_at as an export writes them, to be ignored
    "{\"id\":12345,\"updated_at\":1700000000000,\"external_id\":\"j-1\",\"category\":\"售后/退货退款\","
    "\"question\":\"退款多久到账？\",\"similar_questions\":[\"钱什么时候退回来\"],\"answer\":\"验货后1-3个工作日原路退回。\","
    "\"response_type\":\"template_card\",\"response_content\":{\"title\":\"退款进度\",\"rows\":[{\"text\":\"查看退款\","
    "\"action\":\"url\",\"value\":\"https://shop.example.com/refund\"}]},\"keywords\":[\"退款\",\"到账\"]}",
    //  2: not JSON
    "{\"external_id\":\"j-2\",\"question\":\"坏的",
    //  3: a status that is no integer
    "{\"external_id\":\"j-3\",\"question\":\"状态\",\"answer\":\"答\",\"status\":\"abc\"}",
    //  4: an unknown response type
    "{\"external_id\":\"j-4\",\"question\":\"类型\",\"answer\":\"答\",\"response_type\":\"video\"}",
    //  5: no question
    "{\"external_id\":\"j-5\",\"answer\":\"没有问题\"}",
    //  6: blank
    "",
    //  7: ok - off shelf, a form
    "{\"external_id\":\"j-6\",\"category\":\"会员/权益\",\"question\":\"怎么修改收货地址？\",\"answer\":\"请填写新地址。\","
    "\"status\":0,\"response_type\":\"form_show\",\"response_content\":{\"title\":\"修改地址\","
    "\"params\":[{\"key\":\"address\",\"value\":\"新地址\"}]}}",
    //  8: ok - a variant with its own rich answer
    "{\"external_id\":\"j-7\",\"question\":\"有优惠券吗？\",\"answer\":\"关注店铺领券。\",\"variants\":[{\"labels\":"
    "{\"member_level\":\"gold\",\"channel\":\"app\"},\"answer\":\"金卡会员每月可领50元券。\",\"response_type\":"
    "\"style_text\",\"response_content\":{\"text\":\"去领券\",\"link\":\"https://shop.example.com/coupon\"}}]}",
    //  9: a variant without labels
    "{\"external_id\":\"j-8\",\"question\":\"变体缺标签\",\"answer\":\"答\",\"variants\":[{\"answer\":\"没有标签\"}]}",
};
#define S_JSONL_LINES ((int) (sizeof s_jsonl_lines / sizeof s_jsonl_lines [0]))

static void
s_write (const char *path, const char *text, size_t len)
{
    FILE *file = fopen (path, "w");
    CHECK (file);
    CHECK_INT (fwrite (text, 1, len, file), len);
    CHECK_INT (fclose (file), 0);
}

static char *
s_read (const char *path)
{
    FILE *file = fopen (path, "r");
    CHECK (file);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    char buffer [4096];
    size_t n;
    while ((n = fread (buffer, 1, sizeof buffer, file)) > 0)
        fwrite (buffer, 1, n, out);
    fclose (out);
    fclose (file);
    return text;
}

//  Writes the CSV file (BOM, CRLF) and fills the line each row starts on
static void
s_write_csv (const char *path, int *lines)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    fprintf (out, "\xEF\xBB\xBF" S_HEADER "\r\n");
    int line = 2;
    for (int i = 0; i < S_CSV_ROWS; i++) {
        lines [i] = line;
        fprintf (out, "%s\r\n", s_csv_rows [i]);
        for (const char *c = s_csv_rows [i]; *c; c++)
            line += *c == '\n';
        line++;
    }
    fclose (out);
    s_write (path, text, size);
    free (text);
}

static void
s_write_jsonl (const char *path)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    for (int i = 0; i < S_JSONL_LINES; i++)
        fprintf (out, "%s\n", s_jsonl_lines [i]);
    fclose (out);
    s_write (path, text, size);
    free (text);
}

static int
s_count (const char *text, const char *what)
{
    int count = 0;
    for (const char *at = text; (at = strstr (at, what)); at += strlen (what))
        count++;
    return count;
}

//  Checks that exactly the `lines` were rejected, each once, with a reason holding `reasons`
//  (NULL: any reason; they depend on the broker's wording)
static void
s_expect_rejected (const char *errors, const int *lines, const char *const *reasons, int count)
{
    if (s_count (errors, ": rejected: ") != count) {
        fprintf (stderr, "expected %d rejections, kefuctl said:\n%s", count, errors);
        exit (1);
    }
    for (int i = 0; i < count; i++) {
        char prefix [64];
        snprintf (prefix, sizeof prefix, "line %d: rejected: ", lines [i]);
        const char *at = strstr (errors, prefix);
        if (!at || (reasons [i] && !strstr (at, reasons [i]))) {
            fprintf (stderr, "no \"%s%s\" in:\n%s", prefix, reasons [i] ? reasons [i] : "", errors);
            exit (1);
        }
        if (reasons [i]) {              //  On that line, not a later one
            const char *end = strchr (at, '\n');
            CHECK (strstr (at, reasons [i]) < end);
        }
    }
}

static char *
s_kefuctl (kf_harness_t *h, const char *const *args, int expect_status, char **errors)
{
    int status;
    char *out = h_kefuctl_outputs (h, args, &status, errors);
    if (status != expect_status) {
        fprintf (stderr, "kefuctl %s %s exited %d, not %d; stdout:\n%s\nstderr:\n%s\n", args [0],
                 args [1], status, expect_status, out, errors ? *errors : "(not captured)");
        exit (1);
    }
    return out;
}

//  Runs kb import and checks its summary line
static void
s_import (kf_harness_t *h, const char *path, const char *bot, int created, int updated, int rejected,
          char **errors)
{
    const char *args [] = { "kb", "import", path, "--bot", bot, NULL };
    if (!bot)
        args [3] = NULL;
    char *out = s_kefuctl (h, args, rejected ? 1 : 0, errors);
    char expect [512];
    snprintf (expect, sizeof expect, "imported %s: %d created, %d updated, %d rejected\n", path,
              created, updated, rejected);
    CHECK_STR (out, expect);
    free (out);
}

//  The item with `external_id` among every item of the default bot (NULL when missing); the
//  reply holding it goes in *reply (caller destroys)
static const msgpack_object *
s_find (kf_client_t *client, const char *external_id, kf_reply_t **reply)
{
    *reply = h_call (client, "kb.item.query", "{\"page_size\":100}");
    CHECK ((*reply)->ok);
    const msgpack_object *data = kf_mp_get ((*reply)->result, "data");
    for (uint32_t i = 0; i < data->via.array.size; i++)
        if (kf_mp_str_eq (&data->via.array.ptr [i], "external_id", external_id))
            return &data->via.array.ptr [i];
    return NULL;
}

static int64_t
s_total (kf_client_t *client, const char *json)
{
    kf_reply_t *reply = h_call (client, "kb.item.query", "%s", json);
    CHECK (reply->ok);
    int64_t total = kf_mp_get_int (reply->result, "total", -1);
    kf_reply_destroy (&reply);
    return total;
}

static int
s_compare_lines (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

//  An export in JSONL without what differs between databases (id, updated_at), its lines sorted
static char *
s_canonical (const char *jsonl, int *count)
{
    char *copy = kf_strdup (jsonl);
    char **lines = NULL;
    *count = 0;
    for (char *line = strtok (copy, "\n"); line; line = strtok (NULL, "\n")) {
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        CHECK_INT (kf_json_to_msgpack (line, strlen (line), &pk, NULL, 0), 0);
        msgpack_unpacked item;
        CHECK (kf_mp_unpack_one (buffer.data, buffer.size, &item));
        CHECK (item.data.type == MSGPACK_OBJECT_MAP);
        CHECK (kf_mp_get (&item.data, "id"));   //  Written for reference
        CHECK (!kf_mp_get (&item.data, "category_id"));
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream (&text, &size);
        for (uint32_t i = 0; i < item.data.via.map.size; i++) {
            const msgpack_object_kv *kv = &item.data.via.map.ptr [i];
            if (kf_mp_str_eq_key (&kv->key, "id") || kf_mp_str_eq_key (&kv->key, "updated_at"))
                continue;
            char *key = kf_json_from_msgpack (&kv->key), *value = kf_json_from_msgpack (&kv->val);
            fprintf (out, "%s:%s,", key, value);
            free (key);
            free (value);
        }
        fclose (out);
        lines = kf_realloc (lines, (*count + 1) * sizeof (char *));
        lines [(*count)++] = text;
        msgpack_unpacked_destroy (&item);
        msgpack_sbuffer_destroy (&buffer);
    }
    qsort (lines, *count, sizeof (char *), s_compare_lines);
    char *joined = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&joined, &size);
    for (int i = 0; i < *count; i++) {
        fprintf (out, "%s\n", lines [i]);
        free (lines [i]);
    }
    fclose (out);
    free (lines);
    free (copy);
    return joined;
}

//  Exports the default bot as JSONL to stdout and returns it canonical
static char *
s_export_canonical (kf_harness_t *h, int *count)
{
    const char *args [] = { "kb", "export", NULL };
    char *errors;
    char *out = s_kefuctl (h, args, 0, &errors);
    CHECK_STR (errors, "");
    char *canonical = s_canonical (out, count);
    free (out);
    free (errors);
    return canonical;
}

static void
s_test_import (kf_harness_t *h, kf_client_t *client)
{
    char csv [320], jsonl [320];
    snprintf (csv, sizeof csv, "%s/kb.csv", h->dir);
    snprintf (jsonl, sizeof jsonl, "%s/kb.jsonl", h->dir);
    int csv_lines [S_CSV_ROWS];
    s_write_csv (csv, csv_lines);
    s_write_jsonl (jsonl);
    CHECK_INT (csv_lines [1], 5);               //  Row 0 spans lines 2 to 4

    //  CSV: 4 items, 5 rows rejected with their lines and reasons
    char *errors;
    s_import (h, csv, NULL, 4, 0, 5, &errors);
    int bad_csv [] = { csv_lines [3], csv_lines [4], csv_lines [5], csv_lines [6], csv_lines [7] };
    const char *csv_reasons [] = { "variants is not valid JSON", "status is not an integer: \"abc\"",
                                   "response_type", "question", "the row has 2 fields, the header 10" };
    s_expect_rejected (errors, bad_csv, csv_reasons, 5);
    //  In line order
    CHECK (strstr (errors, "variants is not valid JSON") < strstr (errors, "the row has 2 fields"));
    free (errors);

    //  JSONL: 3 items, 5 lines rejected
    s_import (h, jsonl, NULL, 3, 0, 5, &errors);
    int bad_jsonl [] = { 2, 3, 4, 5, 9 };
    const char *jsonl_reasons [] = { "invalid JSON", "status", "response_type", "question", NULL };
    s_expect_rejected (errors, bad_jsonl, jsonl_reasons, 5);
    free (errors);

    //  What the broker holds
    CHECK_INT (s_total (client, "{}"), 7);
    CHECK_INT (s_total (client, "{\"status\":0}"), 2);
    kf_reply_t *reply;
    const msgpack_object *item = s_find (client, "c-1", &reply);
    CHECK (item);
    CHECK_STR (h_str (item, "question"), "怎么申请退货？");
    CHECK_STR (h_str (item, "answer"), "在「我的订单」点击\"申请售后\"，选择退货退款，再寄回商品。");
    const msgpack_object *similar = kf_mp_get (item, "similar_questions");
    CHECK_INT (similar->via.array.size, 2);
    CHECK (kf_mp_str_eq_key (&similar->via.array.ptr [0], "如何退货"));    //  No CR left
    CHECK (kf_mp_str_eq_key (&similar->via.array.ptr [1], "我想退货怎么操作"));
    CHECK_INT (kf_mp_get (item, "keywords")->via.array.size, 2);
    int64_t return_category = kf_mp_get_int (item, "category_id", 0);
    CHECK (return_category > 0);
    kf_reply_destroy (&reply);
    item = s_find (client, "j-1", &reply);
    CHECK (item);
    CHECK (kf_mp_get_int (item, "id", 0) != 12345);
    CHECK_INT (kf_mp_get_int (item, "category_id", 0), return_category);  //  The same path
    CHECK_STR (h_str (item, "response_type"), "template_card");
    kf_reply_destroy (&reply);
    item = s_find (client, "c-2", &reply);
    CHECK_INT (kf_mp_get_int (item, "status", -1), 0);
    CHECK_STR (h_str (kf_mp_get (item, "response_content"), "color"), "#FF6600");
    kf_reply_destroy (&reply);
    item = s_find (client, "c-3", &reply);
    CHECK_STR (h_str (&kf_mp_get (item, "variants")->via.array.ptr [0], "answer"), "金卡会员可开增值税专票。");
    kf_reply_destroy (&reply);
    item = s_find (client, "c-9", &reply);
    CHECK_INT (kf_mp_get_int (item, "status", -1), 1);
    CHECK_STR (h_str (item, "answer"), "付款后48小时内发货。\n预售商品以页面为准。");
    kf_reply_destroy (&reply);

    //  Again: every item updated, the same rejections, nothing new
    s_import (h, csv, NULL, 0, 4, 5, &errors);
    s_expect_rejected (errors, bad_csv, csv_reasons, 5);
    free (errors);
    s_import (h, jsonl, NULL, 0, 3, 5, &errors);
    free (errors);
    CHECK_INT (s_total (client, "{}"), 7);

    //  The format from --format, whatever the name; a CSV under another bot stays there
    char other [320];
    snprintf (other, sizeof other, "%s/kb-copy.txt", h->dir);
    char *text = s_read (csv);
    s_write (other, text, strlen (text));
    free (text);
    const char *args [] = { "kb", "import", other, "--format", "csv", "--bot", "other", NULL };
    free (s_kefuctl (h, args, 1, &errors));
    CHECK_INT (s_count (errors, ": rejected: "), 5);
    free (errors);
    CHECK_INT (s_total (client, "{\"bot_id\":\"other\"}"), 4);
    CHECK_INT (s_total (client, "{}"), 7);
    const char *export_other [] = { "kb", "export", "--bot", "other", NULL };
    char *out = s_kefuctl (h, export_other, 0, NULL);
    CHECK_INT (s_count (out, "\n"), 4);
    free (out);

    //  A bad header refuses the whole file before anything is sent
    const char *headers [] = { "question,answr\n怎么退货,这样退\n", "question,answer,question\nq,a,q\n",
                               "external_id,answer\nx,y\n", "" };
    const char *header_errors [] = { "unknown: \"answr\"", "repeated: \"question\"", "no question column",
                                     "no header row" };
    for (int i = 0; i < 4; i++) {
        char path [320];
        snprintf (path, sizeof path, "%s/bad-%d.csv", h->dir, i);
        s_write (path, headers [i], strlen (headers [i]));
        const char *bad_args [] = { "kb", "import", path, NULL };
        out = s_kefuctl (h, bad_args, 2, &errors);
        CHECK_STR (out, "");
        if (!strstr (errors, header_errors [i])) {
            fprintf (stderr, "no \"%s\" in: %s\n", header_errors [i], errors);
            exit (1);
        }
        free (out);
        free (errors);
    }
    CHECK_INT (s_total (client, "{}"), 7);
}

//  Exports in both formats; *jsonl and *csv get the files' text
static void
s_test_export (kf_harness_t *h, char **jsonl, char **csv)
{
    char jsonl_path [320], csv_path [320], expect [400];
    snprintf (jsonl_path, sizeof jsonl_path, "%s/export.jsonl", h->dir);
    snprintf (csv_path, sizeof csv_path, "%s/export.csv", h->dir);
    const char *to_jsonl [] = { "kb", "export", "--output", jsonl_path, NULL };
    char *errors;
    char *out = s_kefuctl (h, to_jsonl, 0, &errors);
    snprintf (expect, sizeof expect, "exported 7 items to %s\n", jsonl_path);
    CHECK_STR (out, expect);
    CHECK_STR (errors, "");
    free (out);
    free (errors);
    const char *to_csv [] = { "kb", "export", "--format", "csv", "--output", csv_path, NULL };
    out = s_kefuctl (h, to_csv, 0, NULL);
    free (out);
    *jsonl = s_read (jsonl_path);
    *csv = s_read (csv_path);
    //  stdout holds the same
    const char *jsonl_out [] = { "kb", "export", NULL };
    out = s_kefuctl (h, jsonl_out, 0, NULL);
    CHECK_STR (out, *jsonl);
    free (out);
    const char *csv_out [] = { "kb", "export", "--format", "csv", NULL };
    out = s_kefuctl (h, csv_out, 0, NULL);
    CHECK_STR (out, *csv);
    free (out);

    //  Every item, off shelf too; categories as paths
    CHECK_INT (s_count (*jsonl, "\n"), 7);
    CHECK_INT (s_count (*jsonl, "\"status\":0"), 2);
    CHECK_INT (s_count (*jsonl, "\"category\":\"售后/退货退款\""), 2);
    CHECK_INT (s_count (*jsonl, "\"category_id\""), 0);
    CHECK (strstr (*jsonl, "\"question\":\"怎么申请退货？\""));
    CHECK (strncmp (*csv, "\xEF\xBB\xBF" S_HEADER "\r\n", strlen (S_HEADER) + 5) == 0);
    CHECK (strstr (*csv, "\"如何退货\n我想退货怎么操作\""));
    CHECK (strstr (*csv, "售后/发票"));
    snprintf (expect, sizeof expect, "%s/none/export.jsonl", h->dir);
    const char *nowhere [] = { "kb", "export", "--output", expect, NULL };
    free (s_kefuctl (h, nowhere, 2, &errors));
    free (errors);
}

int
main (void)
{
    kf_harness_t h;
    h_init (&h, "kb_import");
    h_start_broker (&h, 1, NULL);
    kf_client_t *client = h_client (&h);
    s_test_import (&h, client);
    char *jsonl, *csv;
    s_test_export (&h, &jsonl, &csv);
    int count;
    char *expect = s_export_canonical (&h, &count);
    CHECK_INT (count, 7);
    kf_client_destroy (&client);
    h_cleanup (&h);

    //  The JSONL export into an empty database: the same items
    h_init (&h, "kb_import_jsonl");
    h_start_broker (&h, 1, NULL);
    char path [320];
    snprintf (path, sizeof path, "%s/export.jsonl", h.dir);
    s_write (path, jsonl, strlen (jsonl));
    s_import (&h, path, NULL, 7, 0, 0, NULL);
    char *got = s_export_canonical (&h, &count);
    CHECK_STR (got, expect);
    free (got);
    //  Past one page: 230 more items, each exported once
    snprintf (path, sizeof path, "%s/bulk.jsonl", h.dir);
    FILE *bulk = fopen (path, "w");
    for (int i = 0; i < 230; i++)
        fprintf (bulk, "{\"external_id\":\"bulk-%03d\",\"category\":\"批量/第%d组\",\"question\":\"批量问题%d\","
                 "\"answer\":\"批量答案%d\",\"status\":%d}\n", i, i % 7, i, i, i % 2);
    fclose (bulk);
    s_import (&h, path, NULL, 230, 0, 0, NULL);
    const char *all [] = { "kb", "export", NULL };
    char *out = s_kefuctl (&h, all, 0, NULL);
    CHECK_INT (s_count (out, "\n"), 237);
    for (int i = 0; i < 230; i++) {
        char id [64];
        snprintf (id, sizeof id, "\"external_id\":\"bulk-%03d\"", i);
        CHECK_INT (s_count (out, id), 1);
    }
    free (out);
    const char *all_csv [] = { "kb", "export", "--format", "csv", NULL };
    out = s_kefuctl (&h, all_csv, 0, NULL);
    CHECK_INT (s_count (out, "批量答案"), 230);
    free (out);
    h_cleanup (&h);

    //  The CSV export into an empty database: the same items again
    h_init (&h, "kb_import_csv");
    h_start_broker (&h, 1, NULL);
    snprintf (path, sizeof path, "%s/export.csv", h.dir);
    s_write (path, csv, strlen (csv));
    s_import (&h, path, NULL, 7, 0, 0, NULL);
    got = s_export_canonical (&h, &count);
    CHECK_STR (got, expect);
    free (got);
    h_cleanup (&h);

    free (expect);
    free (jsonl);
    free (csv);
    TEST_PASS ("test_kb_import");
    return 0;
}
