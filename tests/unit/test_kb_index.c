/*  test_kb_index.c - retrieval quality on the sample knowledge base and its evaluation set.
    Prints top-1 accuracy, answer precision and the false-answer rate; fails below the floors. */
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "workers/kb_index.h"
#include "workers/pipeline.h"
#include "common/text_norm.h"
#include "testutil.h"

typedef void (s_line_fn) (void *arg, const msgpack_object *obj);

static void
s_each_jsonl (const char *path, s_line_fn *fn, void *arg)
{
    FILE *file = fopen (path, "r");
    CHECK (file);
    char line [16384];
    while (fgets (line, sizeof line, file)) {
        if (line [0] == '\n')
            continue;
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        char err [128];
        CHECK_INT (kf_json_to_msgpack (line, strlen (line), &pk, err, sizeof err), 0);
        msgpack_unpacked unpacked;
        CHECK (kf_mp_unpack_one (buffer.data, buffer.size, &unpacked));
        fn (arg, &unpacked.data);
        msgpack_unpacked_destroy (&unpacked);
        msgpack_sbuffer_destroy (&buffer);
    }
    fclose (file);
}

static void
s_add_item (void *arg, const msgpack_object *obj)
{
    static int64_t id = 0;
    char *question = kf_mp_dup_str (obj, "question"), *answer = kf_mp_dup_str (obj, "answer");
    char *external_id = kf_mp_dup_str (obj, "external_id"), *category = kf_mp_dup_str (obj, "category");
    const msgpack_object *similar = kf_mp_get (obj, "similar_questions");
    const char *texts [64];
    int count = 0;
    for (uint32_t i = 0; similar && i < similar->via.array.size && count < 64; i++)
        texts [count++] = kf_strndup (similar->via.array.ptr [i].via.str.ptr,
                                      similar->via.array.ptr [i].via.str.size);
    kf_kb_index_add (arg, ++id, "default", external_id, category, question, answer, texts, count);
    for (int i = 0; i < count; i++)
        free ((char *) texts [i]);
    free (question); free (answer); free (external_id); free (category);
}

typedef struct {
    kf_kb_index_t *index;
    kf_pipeline_config_t config;
    int answerable, top1, answered_right, answered_wrong, unanswerable, false_answers;
    int verbose;
    double conf [1024];         //  Top confidence per query, for the threshold sweep
    int kind [1024];            //  0 wrong top-1, 1 right top-1, 2 unanswerable
    int n;
} s_eval_t;

static void
s_eval (void *arg, const msgpack_object *obj)
{
    s_eval_t *eval = arg;
    const char *query;
    size_t len;
    CHECK (kf_mp_str (kf_mp_get (obj, "query"), &query, &len));
    char *expect = kf_mp_dup_str (obj, "expect");
    kf_kb_hit_t hits [3];
    int count = kf_kb_index_search (eval->index, "default", query, len, hits, 3);
    bool is_answer = kf_pipeline_is_answer (&eval->config, hits, count);
    if (eval->n < 1024) {
        eval->conf [eval->n] = count ? hits [0].confidence : 0;
        eval->kind [eval->n++] = !expect ? 2 : count && strcmp (hits [0].item->external_id, expect) == 0;
    }
    if (expect) {
        eval->answerable++;
        bool is_right = count > 0 && strcmp (hits [0].item->external_id, expect) == 0;
        eval->top1 += is_right;
        eval->answered_right += is_answer && is_right;
        eval->answered_wrong += is_answer && !is_right;
        if (eval->verbose && (!is_right || !is_answer))
            printf ("%s %-40.*s want %s got %s (%.2f) %s\n", is_right ? "LOW " : "MISS", (int) len,
                    query, expect, count ? hits [0].item->external_id : "-",
                    count ? hits [0].confidence : 0, count ? hits [0].matched : "");
    }
    else {
        eval->unanswerable++;
        eval->false_answers += is_answer;
        if (eval->verbose && is_answer)
            printf ("FALSE %-40.*s got %s (%.2f) %s\n", (int) len, query,
                    hits [0].item->external_id, hits [0].confidence, hits [0].matched);
    }
    free (expect);
}

static void
s_test_normalize (void)
{
    char *s = kf_text_normalize ("你好，请问怎麼申請退貨？？😀", strlen ("你好，请问怎麼申請退貨？？😀"));
    CHECK_STR (s, "怎么申请退货");
    free (s);
    s = kf_text_normalize ("ＡＰＰ 登录不了！！", strlen ("ＡＰＰ 登录不了！！"));
    CHECK_STR (s, "app 登录不了");
    free (s);
    s = kf_text_normalize ("咋退货呢", strlen ("咋退货呢"));
    CHECK_STR (s, "怎么退货");
    free (s);
    s = kf_text_normalize ("\xff\xfe", 2);
    CHECK_STR (s, "");
    free (s);
}

int
main (int argc, char *argv [])
{
    s_test_normalize ();
    const char *root = argc > 1 ? argv [1] : ".";
    char path [512];
    s_eval_t eval = { .index = kf_kb_index_new (), .verbose = getenv ("KEFU_EVAL_VERBOSE") != NULL };
    kf_pipeline_config_defaults (&eval.config);
    snprintf (path, sizeof path, "%s/deploy/sample-kb.jsonl", root);
    s_each_jsonl (path, s_add_item, eval.index);
    kf_kb_index_build (eval.index);
    CHECK (kf_kb_index_size (eval.index) >= 80);
    //  The demo question answers exactly
    kf_kb_hit_t hit;
    CHECK_INT (kf_kb_index_search (eval.index, "default", "怎么申请退货？", strlen ("怎么申请退货？"), &hit, 1), 1);
    CHECK_STR (hit.item->external_id, "faq-001");
    CHECK (hit.confidence > 0.99);
    //  Another bot sees nothing
    CHECK_INT (kf_kb_index_search (eval.index, "other", "怎么申请退货？", strlen ("怎么申请退货？"), &hit, 1), 0);
    snprintf (path, sizeof path, "%s/tests/data/kb_eval.jsonl", root);
    s_each_jsonl (path, s_eval, &eval);
    double top1 = (double) eval.top1 / eval.answerable;
    double answer_rate = (double) eval.answered_right / eval.answerable;
    double precision = (double) eval.answered_right / (eval.answered_right + eval.answered_wrong + eval.false_answers);
    double false_rate = (double) eval.false_answers / eval.unanswerable;
    printf ("retrieval: %d answerable, top-1 %.1f%%, answered correctly %.1f%%, answer precision %.1f%%,"
            " %d unanswerable, false answers %.1f%%\n", eval.answerable, top1 * 100, answer_rate * 100,
            precision * 100, eval.unanswerable, false_rate * 100);
    for (double t = 0.2; eval.verbose && t < 0.8; t += 0.05) {
        int right = 0, wrong = 0, false_answer = 0;
        for (int i = 0; i < eval.n; i++)
            if (eval.conf [i] >= t) {
                right += eval.kind [i] == 1;
                wrong += eval.kind [i] == 0;
                false_answer += eval.kind [i] == 2;
            }
        printf ("threshold %.2f: right %d wrong %d false %d\n", t, right, wrong, false_answer);
    }
    CHECK (top1 >= 0.78);
    CHECK (precision >= 0.88);
    CHECK (false_rate <= 0.10);
    kf_kb_index_destroy (&eval.index);
    TEST_PASS ("test_kb_index");
    return 0;
}
