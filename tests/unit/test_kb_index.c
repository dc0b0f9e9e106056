/*  test_kb_index.c - retrieval quality on the sample knowledge base and its evaluation set, against
    a plain BM25 baseline measured in the same run. Prints top-1 and top-5 accuracy of both, answer
    precision and the false-answer rate; fails below the floors or when kefu does not beat BM25, and
    when the bounded search finds other hits than scoring every item would.
    KEFU_EVAL_VERBOSE=1 lists every miss, the threshold sweep and the two halves of the set. */
#include "common/log.h"
#include "common/mpack.h"
#include "workers/kb_calibration.h"
#include "workers/kb_index.h"
#include "workers/pipeline.h"
#include "common/text_norm.h"
#include "tests/bench/bm25_baseline.h"
#include "tests/bench/kb_jsonl.h"
#include "testutil.h"
#include <math.h>

#define S_HITS KF_PIPELINE_HITS    //  As many hits as the pipeline asks for; top-5 counts them all
#define S_MAX_QUERIES 2048
#define S_MAX_ITEMS 1024

//  One system's counts over the evaluation set
typedef struct {
    int answerable, top1, top5, answered_right, answered_wrong, unanswerable, false_answers;
} s_score_t;

typedef struct {
    kf_kb_index_t *index;
    kf_bm25_t *bm25;
    const char *external_ids [S_MAX_ITEMS];    //  Baseline item number -> external id
    int item_count;
    kf_pipeline_config_t config;
    kf_kb_calibration_t *calibration;   //  Fitted on the sample knowledge base, as a worker does
    double threshold;                   //  Its answer threshold at the default target precision
    s_score_t kefu, baseline, half [2];        //  half: kefu on even and odd query numbers
    int verbose;
    //  Per query, for the threshold sweeps: top confidence (kefu), top score (BM25), and kind:
    //  0 wrong top-1, 1 right top-1, 2 unanswerable
    double conf [S_MAX_QUERIES], bm25_score [S_MAX_QUERIES];
    int kind [S_MAX_QUERIES], bm25_kind [S_MAX_QUERIES];
    int n;
} s_eval_t;

static void
s_add_item (void *arg, const msgpack_object *obj)
{
    s_eval_t *eval = arg;
    if (!kf_jsonl_item_on_shelf (obj))
        return;                 //  Off-shelf items are never indexed in production
    CHECK (eval->item_count < S_MAX_ITEMS);
    kf_kb_item_t item;
    kf_jsonl_item (obj, eval->item_count + 1, "default", &item);
    kf_bm25_add (eval->bm25, eval->item_count, item.question);
    for (int s = 0; s < item.similar_count; s++)
        kf_bm25_add (eval->bm25, eval->item_count, item.similar [s]);
    eval->external_ids [eval->item_count++] = item.external_id;  //  Owned by the index from here
    kf_kb_index_add_item (eval->index, &item);
}

//  Counts one query's outcome for one system: `ranked` are the external ids, best first
static void
s_count (s_score_t *score, const char *expect, const char **ranked, int count, bool is_answer)
{
    if (expect) {
        score->answerable++;
        bool is_right = count > 0 && strcmp (ranked [0], expect) == 0;
        score->top1 += is_right;
        for (int i = 0; i < count; i++)
            if (strcmp (ranked [i], expect) == 0) {
                score->top5++;
                break;
            }
        score->answered_right += is_answer && is_right;
        score->answered_wrong += is_answer && !is_right;
    }
    else {
        score->unanswerable++;
        score->false_answers += is_answer;
    }
}

//  The bounded search finds what scoring every item finds, down to the floor of 0.1 (the sample
//  knowledge base is small)
static void
s_check_exhaustive (kf_kb_index_t *index, const char *query, size_t len, const kf_kb_hit_t *hits,
                    int count)
{
    kf_kb_hit_t full [S_HITS];
    kf_kb_index_set_exhaustive (index, true);
    int full_count = kf_kb_index_search (index, "default", query, len, full, S_HITS);
    kf_kb_index_set_exhaustive (index, false);
    for (int h = 0; h < full_count && full [h].confidence >= 0.1; h++) {
        CHECK (h < count);
        CHECK (hits [h].item == full [h].item);
        CHECK (fabs (hits [h].confidence - full [h].confidence) < 1e-9);
    }
}

static void
s_eval (void *arg, const msgpack_object *obj)
{
    s_eval_t *eval = arg;
    const char *query;
    size_t len;
    CHECK (kf_mp_str (kf_mp_get (obj, "query"), &query, &len));
    CHECK (eval->n < S_MAX_QUERIES);
    char *expect = kf_mp_dup_str (obj, "expect");
    //  kefu
    kf_kb_hit_t hits [S_HITS];
    int count = kf_kb_index_search (eval->index, "default", query, len, hits, S_HITS);
    kf_pipeline_calibrate (eval->calibration, hits, count);
    bool is_answer = kf_pipeline_is_answer (eval->threshold, hits, count);
    const char *ranked [S_HITS];
    for (int i = 0; i < count; i++)
        ranked [i] = hits [i].item->external_id;
    s_check_exhaustive (eval->index, query, len, hits, count);
    s_count (&eval->kefu, expect, ranked, count, is_answer);
    s_count (&eval->half [eval->n % 2], expect, ranked, count, is_answer);
    eval->conf [eval->n] = count ? hits [0].confidence : 0;
    eval->kind [eval->n] = !expect ? 2 : count && strcmp (ranked [0], expect) == 0;
    //  Plain BM25: no confidence, so it answers nothing here (see s_bm25_best_threshold)
    int items [S_HITS];
    double scores [S_HITS];
    int bm25_count = kf_bm25_search (eval->bm25, query, len, items, scores, S_HITS);
    const char *bm25_top = bm25_count ? eval->external_ids [items [0]] : "-";
    if (eval->verbose && expect && (count == 0 || strcmp (ranked [0], expect) != 0 || !is_answer))
        printf ("%s %-40.*s want %s got %s (%.2f) %s | BM25 %s\n",
                count && !strcmp (ranked [0], expect) ? "LOW " : "MISS", (int) len, query, expect,
                count ? ranked [0] : "-",
                count ? hits [0].confidence : 0, count ? hits [0].matched : "", bm25_top);
    if (eval->verbose && !expect && is_answer)
        printf ("FALSE %-40.*s got %s (%.2f) %s\n", (int) len, query, ranked [0],
                hits [0].confidence, hits [0].matched);
    count = bm25_count;
    for (int i = 0; i < count; i++)
        ranked [i] = eval->external_ids [items [i]];
    s_count (&eval->baseline, expect, ranked, count, false);
    eval->bm25_score [eval->n] = count ? scores [0] : 0;
    eval->bm25_kind [eval->n++] = !expect ? 2 : count && strcmp (ranked [0], expect) == 0;
    free (expect);
}

//  Plain BM25 has no calibrated confidence. To compare answering at all, give it the threshold on
//  its raw top score that answers the most queries right at answer precision >= 95%, chosen on
//  this very set (in its favour); fills its answered and false-answer counts.
static void
s_bm25_best_threshold (s_eval_t *eval, double *threshold)
{
    *threshold = INFINITY;
    for (int c = 0; c < eval->n; c++) {
        double t = eval->bm25_score [c];
        int right = 0, wrong = 0, false_answer = 0;
        for (int i = 0; i < eval->n; i++)
            if (eval->bm25_score [i] >= t) {
                right += eval->bm25_kind [i] == 1;
                wrong += eval->bm25_kind [i] == 0;
                false_answer += eval->bm25_kind [i] == 2;
            }
        if (t > 0 && right >= 0.95 * (right + wrong + false_answer)
        &&  (right > eval->baseline.answered_right
          || (right == eval->baseline.answered_right && t < *threshold))) {
            *threshold = t;
            eval->baseline.answered_right = right;
            eval->baseline.answered_wrong = wrong;
            eval->baseline.false_answers = false_answer;
        }
    }
}

static void
s_print (const char *name, const s_score_t *s)
{
    int answers = s->answered_right + s->answered_wrong + s->false_answers;
    printf ("%-10s %d answerable: top-1 %.1f%%, top-5 %.1f%%, answered correctly %.1f%%,"
            " answer precision %.1f%%; %d unanswerable, false answers %.1f%%\n", name,
            s->answerable, 100.0 * s->top1 / s->answerable, 100.0 * s->top5 / s->answerable,
            100.0 * s->answered_right / s->answerable,
            answers ? 100.0 * s->answered_right / answers : 100.0, s->unanswerable,
            s->unanswerable ? 100.0 * s->false_answers / s->unanswerable : 0);
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

//  Each bot has its own statistics: another bot's items change nothing in a bot's confidences
static void
s_test_bots (void)
{
    const char *similar [] = { "如何退货", "退货流程是什么" };
    kf_kb_index_t *alone = kf_kb_index_new (), *shared = kf_kb_index_new ();
    for (int i = 0; i < 2; i++) {
        kf_kb_index_t *index = i ? shared : alone;
        kf_kb_index_add (index, 1, "a", "a-1", "", "怎么申请退货？", "在订单页申请售后。", similar, 2);
        kf_kb_index_add (index, 2, "a", "a-2", "", "退款多久到账？", "1-3个工作日。", NULL, 0);
    }
    for (int n = 0; n < 50; n++) {
        char question [64];
        snprintf (question, sizeof question, "退货运费险第%d条怎么理赔", n);
        kf_kb_index_add (shared, 100 + n, "b", "", "", question, "请联系保险公司。", NULL, 0);
    }
    kf_kb_index_build (alone);
    kf_kb_index_build (shared);
    kf_kb_hit_t a [2], b [2];
    const char *query = "退货运费怎么退";
    int count = kf_kb_index_search (alone, "a", query, strlen (query), a, 2);
    CHECK (count >= 1);
    CHECK_INT (kf_kb_index_search (shared, "a", query, strlen (query), b, 2), count);
    CHECK_STR (a [0].item->external_id, "a-1");
    for (int h = 0; h < count; h++) {
        CHECK_STR (a [h].item->external_id, b [h].item->external_id);
        CHECK (fabs (a [h].confidence - b [h].confidence) < 1e-12);
    }
    query = "退货运费险第3条怎么理赔";
    CHECK (kf_kb_index_search (shared, "b", query, strlen (query), b, 2) > 0);
    CHECK_STR (b [0].item->question, query);
    kf_kb_index_destroy (&alone);
    kf_kb_index_destroy (&shared);
}

int
main (int argc, char *argv [])
{
    s_test_normalize ();
    s_test_bots ();
    const char *root = argc > 1 ? argv [1] : ".";
    char path [512];
    s_eval_t *eval = kf_calloc (1, sizeof *eval);
    eval->index = kf_kb_index_new ();
    eval->bm25 = kf_bm25_new ();
    eval->verbose = getenv ("KEFU_EVAL_VERBOSE") != NULL;
    kf_pipeline_config_defaults (&eval->config);
    snprintf (path, sizeof path, "%s/deploy/sample-kb.jsonl", root);
    CHECK (kf_jsonl_each (path, s_add_item, eval) > 0);
    kf_kb_index_build (eval->index);
    kf_bm25_build (eval->bm25);
    CHECK (kf_kb_index_size (eval->index) >= 80);
    CHECK_INT (kf_kb_index_size (eval->index), eval->item_count);
    int *all = kf_malloc (eval->item_count * sizeof (int));
    for (int i = 0; i < eval->item_count; i++)
        all [i] = i;
    eval->calibration = kf_kb_calibration_fit (eval->index, "default", all, eval->item_count, NULL, 0);
    free (all);
    CHECK (eval->calibration->curve.is_fitted);
    eval->threshold = kf_kb_calibration_threshold (eval->calibration, KF_CAL_DEFAULT_TARGET);
    printf ("calibration: %d questions (%d answerable) in %.1f ms, weights %.2f %.2f %.2f,"
            " threshold %.2f\n", eval->calibration->curve.samples, eval->calibration->curve.answerable,
            eval->calibration->fit_ms, eval->calibration->weights [0], eval->calibration->weights [1],
            eval->calibration->weights [2], eval->threshold);
    //  The demo question answers exactly
    kf_kb_hit_t hit;
    CHECK_INT (kf_kb_index_search (eval->index, "default", "怎么申请退货？", strlen ("怎么申请退货？"), &hit, 1), 1);
    CHECK_STR (hit.item->external_id, "faq-001");
    CHECK (hit.confidence > 0.99);
    //  Another bot sees nothing
    CHECK_INT (kf_kb_index_search (eval->index, "other", "怎么申请退货？", strlen ("怎么申请退货？"), &hit, 1), 0);
    //  Off-shelf items are not there: their own question finds something else, or nothing sure
    int count = kf_kb_index_search (eval->index, "default", "双十一活动什么时候开始？",
                                    strlen ("双十一活动什么时候开始？"), &hit, 1);
    CHECK (count == 0 || strcmp (hit.item->external_id, "faq-act-002") != 0);
    snprintf (path, sizeof path, "%s/tests/data/kb_eval.jsonl", root);
    CHECK (kf_jsonl_each (path, s_eval, eval) > 0);
    double bm25_threshold;
    s_bm25_best_threshold (eval, &bm25_threshold);

    const s_score_t *k = &eval->kefu, *b = &eval->baseline;
    printf ("retrieval: kefu top-1 %.1f%% top-5 %.1f%% | plain BM25 top-1 %.1f%% top-5 %.1f%%\n",
            100.0 * k->top1 / k->answerable, 100.0 * k->top5 / k->answerable,
            100.0 * b->top1 / b->answerable, 100.0 * b->top5 / b->answerable);
    s_print ("kefu", k);
    s_print ("plain BM25", b);
    printf ("(plain BM25 answers when its top score >= %.2f, the best threshold for it on this"
            " set)\n", bm25_threshold);
    if (eval->verbose) {
        s_print ("even half", &eval->half [0]);
        s_print ("odd half", &eval->half [1]);
        for (double t = 0.2; t < 0.8; t += 0.05) {
            int right = 0, wrong = 0, false_answer = 0;
            for (int i = 0; i < eval->n; i++)
                if (eval->conf [i] >= t) {
                    right += eval->kind [i] == 1;
                    wrong += eval->kind [i] == 0;
                    false_answer += eval->kind [i] == 2;
                }
            printf ("threshold %.2f: right %d wrong %d false %d\n", t, right, wrong, false_answer);
        }
    }
    double top1 = (double) k->top1 / k->answerable;
    double precision = (double) k->answered_right
                     / (k->answered_right + k->answered_wrong + k->false_answers);
    double false_rate = (double) k->false_answers / k->unanswerable;
    CHECK (top1 >= 0.78);
    CHECK (precision >= 0.88);
    CHECK (false_rate <= 0.10);
    CHECK (k->top1 > b->top1);
    kf_kb_calibration_destroy (&eval->calibration);
    kf_kb_index_destroy (&eval->index);
    kf_bm25_destroy (&eval->bm25);
    free (eval);
    TEST_PASS ("test_kb_index");
    return 0;
}
