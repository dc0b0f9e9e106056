/*  answer_eval.c - the answer decision measured on knowledge bases of other domains, as a new
    customer meets it: each domain's items go into a fresh SQLite database through the broker's
    own code (kb_items.c, with the migrations' default rows), a worker's knowledge base is built
    from it as a worker builds one (snapshot, index, models, calibration), and every question is
    one first message of a fresh session through the whole pipeline. Plain BM25 over the same
    items is measured in the same run (bm25_baseline.c).

        answer_eval ROOT [--set dev|test] [--bot ID] [--verbose] [--check] [--fit-default]
                    [--ask TEXT]... DOMAIN...

    DOMAIN is a folder under tests/data/domains (kb.jsonl, dev.jsonl, test.jsonl) or "shop" (the
    sample knowledge base and tests/data/kb_eval.jsonl, into the default bot with the sample
    intents). --bot puts a domain's items into that bot instead of one named after the domain
    ("default": the sample shop's intents over another domain's knowledge base). --check exits 1
    when a domain misses the floors of the answer decision (ctest runs it so on the test sets).
    --ask shows how each TEXT is answered (intent, route, hits with score/probability, reply)
    instead of running the questions. --fit-default fits the default calibration (kb_calibration.c) to every question asked (run on
    the dev sets only).
    Prints one Markdown row per domain and the precision/coverage curve. */
#include "broker/kb_catalog.h"
#include "broker/kb_items.h"
#include "broker/store.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "tests/bench/bm25_baseline.h"
#include "tests/bench/kb_jsonl.h"
#include "workers/kb_source.h"
#include "workers/pipeline.h"
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MAX_ITEMS 4096
#define S_CURVE 15              //  Thresholds 0.30, 0.35 .. 1.00

typedef struct {
    const char *bot_id;
    kf_kb_items_t *items;
    kf_bm25_t *bm25;
    char *external_ids [S_MAX_ITEMS];
    int item_count;
} s_load_t;

//  Counts over one domain's questions
typedef struct {
    int questions, answerable, top1, top5, bm25_top1, bm25_top5;
    int plain;                  //  Neither asking for a person nor upset
    int routed_away;            //  Answerable plain questions whose reply is not the knowledge
                                //  base's (another route, or a lookup the bot cannot make)
    int handoffs;               //  Plain questions handed to a person
    int answered, answered_right, oos, oos_answered;
    int transfer, transfer_escalated, negated, negated_escalated, upset, upset_escalated;
    int curve_answered [S_CURVE], curve_right [S_CURVE];
    double threshold;
} s_stats_t;

//  Samples pooled over the domains for --fit-default: each question's best score and margin
#define S_POOL_MAX 16384
static double s_pool_score [S_POOL_MAX], s_pool_margin [S_POOL_MAX];
static bool s_pool_right [S_POOL_MAX];
static int s_pool_count;

typedef struct {
    kf_kb_index_t *index;
    kf_bot_models_t *models;
    kf_pipeline_config_t config;
    s_load_t *load;
    s_stats_t stats;
    bool verbose;
    bool is_tagged;             //  The set tags requests for a person (not the shop's kb_eval)
} s_eval_t;

static void
s_put (void *arg, const msgpack_object *obj)
{
    s_load_t *load = arg;
    int64_t id;
    kf_error_t err;
    if (kf_kb_items_put (load->items, load->bot_id, obj, false, &id, &err) < 0) {
        fprintf (stderr, "answer_eval: an item was refused: %s\n", err.message);
        exit (2);
    }
    if (!kf_jsonl_item_on_shelf (obj) || load->item_count == S_MAX_ITEMS)
        return;
    kf_kb_item_t item;
    kf_jsonl_item (obj, load->item_count, load->bot_id, &item);
    kf_bm25_add (load->bm25, load->item_count, item.question);
    for (int s = 0; s < item.similar_count; s++)
        kf_bm25_add (load->bm25, load->item_count, item.similar [s]);
    load->external_ids [load->item_count++] = kf_strdup (item.external_id);
    kf_kb_index_t *scratch = kf_kb_index_new ();     //  Frees the item's strings
    kf_kb_index_add_item (scratch, &item);
    kf_kb_index_destroy (&scratch);
}

//  Builds the worker's knowledge base from a fresh database holding `kb_path` in bot `bot_id`
static kf_kb_index_t *
s_build (const char *kb_path, s_load_t *load, kf_bot_models_t **models)
{
    char dir [] = "/tmp/kefu-answer-eval-XXXXXX", path [256], err [256];
    if (!mkdtemp (dir))
        return NULL;
    snprintf (path, sizeof path, "%s/kefu.db", dir);
    kf_store_t *store = kf_store_open (path, false, err, sizeof err);
    if (!store) {
        fprintf (stderr, "answer_eval: %s\n", err);
        exit (2);
    }
    kf_kb_catalog_t *catalog = kf_kb_catalog_new (store);
    load->items = kf_kb_items_new (store, catalog);
    if (kf_jsonl_each (kb_path, s_put, load) <= 0) {
        fprintf (stderr, "answer_eval: cannot read %s\n", kb_path);
        exit (2);
    }
    kf_store_kb_bump_version (store);
    kf_store_flush (store);
    kf_kb_items_destroy (&load->items);
    kf_kb_catalog_destroy (&catalog);
    kf_store_destroy (&store);
    kf_bm25_build (load->bm25);
    sqlite3 *db;
    sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL);
    kf_kb_snapshot_t *snapshot = kf_kb_snapshot_read (db, err, sizeof err);
    kf_kb_index_t *index = snapshot ? kf_kb_source_build (snapshot, models) : NULL;
    kf_kb_snapshot_destroy (&snapshot);
    sqlite3_close (db);
    char command [512];
    snprintf (command, sizeof command, "rm -rf %s", dir);
    if (system (command) != 0)
        fprintf (stderr, "answer_eval: could not remove %s\n", dir);
    return index;
}

//  One first message of a fresh session through the pipeline
static void
s_turn (s_eval_t *eval, const char *message, kf_turn_t *turn)
{
    msgpack_sbuffer job;
    msgpack_sbuffer_init (&job);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &job, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_cstr (&pk, "params");
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "message", message);
    kf_mp_pack_kv_str (&pk, "bot_id", eval->load->bot_id);
    kf_mp_pack_cstr (&pk, "context");
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_int (&pk, "failed_attempts", 0);
    kf_mp_pack_kv_int (&pk, "repeat_count", 0);
    msgpack_unpacked unpacked;
    if (!kf_mp_unpack_one (job.data, job.size, &unpacked))
        exit (2);
    kf_pipeline_env_t env = { eval->index, eval->models, NULL };
    kf_wp_job_t decoded;
    kf_wp_job_decode (&unpacked.data, &decoded);
    kf_pipeline_prepare (turn, &eval->config, &env, &decoded);
    turn->kb_version = 1;
    kf_pipeline_answer (turn, &eval->config);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&job);
}

static bool
s_tag_is (const msgpack_object *obj, const char *tag)
{
    return kf_mp_str_eq (obj, "tag", tag);
}

static void
s_question (void *arg, const msgpack_object *obj)
{
    s_eval_t *eval = arg;
    s_stats_t *stats = &eval->stats;
    char *query = kf_mp_dup_str (obj, "query");
    char *expect = kf_mp_dup_str (obj, "expect");
    if (!query)
        exit (2);
    //  An untagged set (the shop's) asks for a person in so many words too: such a message is a
    //  request, whatever its expected item
    bool is_transfer = s_tag_is (obj, "transfer")
                    || (!eval->is_tagged && kf_intent_is_transfer (query, strlen (query)));
    bool is_upset = s_tag_is (obj, "upset");
    bool is_plain = !is_transfer && !is_upset;
    kf_turn_t turn;
    s_turn (eval, query, &turn);
    stats->threshold = turn.answer_threshold;
    stats->questions++;
    stats->plain += is_plain;
    stats->handoffs += is_plain && turn.escalate_to_human;
    if (s_tag_is (obj, "transfer")) {
        stats->transfer++;
        stats->transfer_escalated += turn.escalate_to_human;
        if (eval->verbose && !turn.escalate_to_human)
            printf ("KEPT  %s -> %s (%.2f)\n", query, turn.intent, turn.intent_confidence);
    }
    if (is_upset) {
        stats->upset++;
        stats->upset_escalated += turn.escalate_to_human;
    }
    if (s_tag_is (obj, "negated_transfer")) {
        stats->negated++;
        stats->negated_escalated += turn.escalate_to_human;
        if (eval->verbose && turn.escalate_to_human)
            printf ("NEGD  %s (reason %d)\n", query, turn.handoff_reason);
    }
    const char *top = turn.hit_count ? turn.hits [0].item->external_id : "-";
    bool is_answered = turn.source != NULL && !is_transfer;
    bool is_right = expect && is_answered && strcmp (turn.source->external_id, expect) == 0;
    if (expect && !is_transfer) {
        stats->answerable++;
        stats->top1 += turn.hit_count && strcmp (top, expect) == 0;
        for (int h = 0; h < turn.hit_count && h < 5; h++)
            if (strcmp (turn.hits [h].item->external_id, expect) == 0) {
                stats->top5++;
                break;
            }
        int items [5];
        double scores [5];
        int found = kf_bm25_search (eval->load->bm25, query, strlen (query), items, scores, 5);
        stats->bm25_top1 += found && strcmp (eval->load->external_ids [items [0]], expect) == 0;
        for (int h = 0; h < found; h++)
            if (strcmp (eval->load->external_ids [items [h]], expect) == 0) {
                stats->bm25_top5++;
                break;
            }
        //  Away: the reply does not come from the knowledge base (another route, or a lookup
        //  the bot cannot make); an answer or a "did you mean" does, whatever the intent says
        bool is_kb = (turn.route == KF_ROUTE_KNOWLEDGE || turn.route == KF_ROUTE_EMPATHY)
                  && (turn.source || turn.suggestion_count || strcmp (turn.intent, KF_INTENT_BUSINESS) != 0);
        bool is_away = !is_kb;
        stats->routed_away += is_plain && is_away;
        if (eval->verbose && is_plain && is_away)
            printf ("AWAY  %s -> %s (%.2f) route %d\n", query, turn.intent, turn.intent_confidence,
                    turn.route);
    }
    if (!expect && !is_transfer) {
        stats->oos++;
        stats->oos_answered += is_answered;
    }
    if (!is_transfer && turn.hit_count && s_pool_count < S_POOL_MAX) {
        s_pool_score [s_pool_count] = turn.hits [0].confidence;
        s_pool_margin [s_pool_count] = turn.hits [0].confidence
                                     - (turn.hit_count > 1 ? turn.hits [1].confidence : 0);
        s_pool_right [s_pool_count++] = expect && strcmp (top, expect) == 0;
    }
    if (!is_transfer) {
        stats->answered += is_answered;
        stats->answered_right += is_right;
        double p = turn.hit_count ? turn.hits [0].probability : 0;
        bool top_right = expect && turn.hit_count && strcmp (top, expect) == 0;
        for (int c = 0; c < S_CURVE; c++)
            if (turn.hit_count && p >= 0.30 + 0.05 * c - 1e-9) {
                stats->curve_answered [c]++;
                stats->curve_right [c] += top_right;
            }
    }
    if (eval->verbose && is_plain && turn.escalate_to_human)
        printf ("HAND  %s (reason %d, emotion %.2f)\n", query, turn.handoff_reason, turn.emotion_score);
    if (eval->verbose && is_answered && !is_right)
        printf ("WRONG %s -> %s %s (p %.2f) want %s\n", query, top, turn.hits [0].matched,
                turn.hits [0].probability, expect ? expect : "none");
    kf_turn_release (&turn);
    free (query);
    free (expect);
}

static double
s_share (int part, int whole)
{
    return whole ? (double) part / whole : 0;
}

int
main (int argc, char *argv [])
{
    if (argc < 3) {
        fprintf (stderr, "usage: answer_eval ROOT [--set dev|test] [--bot ID] [--verbose] [--check]"
                         " DOMAIN...\n");
        return 2;
    }
    kf_log_set_level (KF_LOG_WARN);
    const char *root = argv [1], *set = "test", *bot = NULL;
    bool verbose = false, check = false, fit_default = false;
    const char *asks [64];
    int ask_count = 0;
    int failures = 0;
    printf ("| data | items | questions | BM25 top-1 / top-5 | kefu top-1 / top-5 | ratio | routed away"
            " | first-message handoffs | answered: precision / coverage | out of scope answered"
            " | threshold |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int a = 2; a < argc; a++) {
        if (strcmp (argv [a], "--set") == 0 && a + 1 < argc) {
            set = argv [++a];
            continue;
        }
        if (strcmp (argv [a], "--bot") == 0 && a + 1 < argc) {
            bot = argv [++a];
            continue;
        }
        if (strcmp (argv [a], "--ask") == 0 && a + 1 < argc && ask_count < 64) {
            asks [ask_count++] = argv [++a];
            continue;
        }
        if (strcmp (argv [a], "--fit-default") == 0) {
            fit_default = true;
            continue;
        }
        if (strcmp (argv [a], "--verbose") == 0 || strcmp (argv [a], "--check") == 0) {
            verbose |= argv [a][2] == 'v';
            check |= argv [a][2] == 'c';
            continue;
        }
        const char *domain = argv [a];
        bool is_shop = strcmp (domain, "shop") == 0;
        char kb [512], questions [512];
        if (is_shop) {
            snprintf (kb, sizeof kb, "%s/deploy/sample-kb.jsonl", root);
            snprintf (questions, sizeof questions, "%s/tests/data/kb_eval.jsonl", root);
        }
        else {
            snprintf (kb, sizeof kb, "%s/tests/data/domains/%s/kb.jsonl", root, domain);
            snprintf (questions, sizeof questions, "%s/tests/data/domains/%s/%s.jsonl", root, domain, set);
        }
        s_load_t load = { is_shop ? "default" : bot ? bot : domain, NULL, kf_bm25_new (), { 0 }, 0 };
        s_eval_t eval = { .load = &load, .verbose = verbose, .is_tagged = !is_shop };
        kf_pipeline_config_defaults (&eval.config);
        eval.index = s_build (kb, &load, &eval.models);
        if (!eval.index)
            return 2;
        if (verbose) {
            kf_bot_model_t model;
            kf_bot_models_get (eval.models, load.bot_id, &model);
            const kf_kb_calibration_t *c = model.calibration;
            if (c) {
                printf ("calibration of %s: %s, %d questions (%d answerable), weights %.2f %.2f %.2f,"
                        " %.1f ms\n", load.bot_id, c->curve.is_fitted ? "fitted" : "default",
                        c->curve.samples, c->curve.answerable, c->weights [0], c->weights [1],
                        c->weights [2], c->fit_ms);
                for (int t = 30; t <= 100; t += 10) {
                    double precision, coverage;
                    kf_answer_curve_estimate (&c->curve, t / 100.0, &precision, &coverage);
                    printf ("  at %.2f: precision %.3f coverage %.3f (%d)\n", t / 100.0, precision,
                            coverage, c->curve.answered [t]);
                }
            }
        }
        for (int q = 0; q < ask_count; q++) {
            kf_turn_t turn;
            s_turn (&eval, asks [q], &turn);
            printf ("%s -> intent %s (%.2f) route %d%s, threshold %.2f:", asks [q], turn.intent,
                    turn.intent_confidence, turn.route, turn.escalate_to_human ? " escalates" : "",
                    turn.answer_threshold);
            for (int h = 0; h < turn.hit_count; h++)
                printf (" %s %.2f/%.2f", turn.hits [h].item->external_id, turn.hits [h].confidence,
                        turn.hits [h].probability);
            for (int t = 0; t < turn.sub_task_count; t++)
                printf (" | sub_task %s %.*s", turn.sub_tasks [t].intent, (int) turn.sub_tasks [t].text_len,
                        turn.sub_tasks [t].text);
            printf (" | sources %s", turn.source ? turn.source->external_id : "-");
            for (int a = 0; a < turn.also_count; a++)
                printf (" %s", turn.also [a].item->external_id);
            printf ("\n    %s\n", turn.reply ? turn.reply : "");
            kf_turn_release (&turn);
        }
        if (!ask_count)
            kf_jsonl_each (questions, s_question, &eval);
        if (ask_count) {
            kf_kb_index_destroy (&eval.index);
            kf_bot_models_destroy (&eval.models);
            kf_bm25_destroy (&load.bm25);
            for (int i = 0; i < load.item_count; i++)
                free (load.external_ids [i]);
            continue;
        }
        s_stats_t *s = &eval.stats;
        printf ("| %s%s%s | %d | %d | %.3f / %.3f | %.3f / %.3f | %.2f× | %.1f%% | %.2f%% | %.1f%% / %.1f%% |"
                " %.1f%% | %.2f |\n", domain, bot && !is_shop ? " in bot " : "", bot && !is_shop ? bot : "",
                load.item_count, s->questions, s_share (s->bm25_top1, s->answerable),
                s_share (s->bm25_top5, s->answerable), s_share (s->top1, s->answerable),
                s_share (s->top5, s->answerable), s_share (s->top1, s->bm25_top1),
                100 * s_share (s->routed_away, s->answerable), 100 * s_share (s->handoffs, s->plain),
                100 * s_share (s->answered_right, s->answered),
                100 * s_share (s->answered, s->answerable + s->oos),
                100 * s_share (s->oos_answered, s->oos), s->threshold);
        printf ("|   curve of %s | threshold: precision / coverage |", domain);
        for (int c = 0; c < S_CURVE; c += 2)
            printf (" %.2f%s: %.2f / %.2f |", 0.30 + 0.05 * c,
                    fabs (0.30 + 0.05 * c - s->threshold) < 0.05 ? "*" : "",
                    s_share (s->curve_right [c], s->curve_answered [c]),
                    s_share (s->curve_answered [c], s->answerable + s->oos));
        printf ("\n|   people | explicit requests handed over: %d of %d; negated requests handed over:"
                " %d of %d; upset customers handed over: %d of %d |\n", s->transfer_escalated,
                s->transfer, s->negated_escalated, s->negated, s->upset_escalated, s->upset);
        if (check) {
            //  The floors, plus the people rules: no negated request handed over, nine
            //  explicit ones in ten at least (the rest ask in words no rule knows)
            bool ok = s->routed_away <= 0.02 * s->answerable && s->handoffs <= 0.003 * s->plain
                   && (s->answered == 0 || s_share (s->answered_right, s->answered) >= 0.85)
                   && s->top1 >= s->bm25_top1 && s->negated_escalated == 0
                   && s->transfer_escalated >= 0.9 * s->transfer;
            if (!ok) {
                printf ("answer_eval: %s misses a floor of the answer decision\n", domain);
                failures++;
            }
        }
        kf_kb_index_destroy (&eval.index);
        kf_bot_models_destroy (&eval.models);
        kf_bm25_destroy (&load.bm25);
        for (int i = 0; i < load.item_count; i++)
            free (load.external_ids [i]);
    }
    if (fit_default) {
        double w [3];
        kf_kb_calibration_fit_weights (s_pool_score, s_pool_margin, s_pool_right, s_pool_count, w);
        printf ("default calibration from %d questions: weights { %.2f, %.2f, %.2f }\n", s_pool_count,
                w [0], w [1], w [2]);
        for (int t = 50; t <= 95; t += 5) {
            int answered = 0, right = 0;
            for (int q = 0; q < s_pool_count; q++) {
                double p = 1 / (1 + exp (-(w [0] + w [1] * s_pool_score [q] + w [2] * s_pool_margin [q])));
                if (p >= t / 100.0) {
                    answered++;
                    right += s_pool_right [q];
                }
            }
            printf ("  at %.2f: precision %.3f, answers %.3f of the questions\n", t / 100.0,
                    s_share (right, answered), s_share (answered, s_pool_count));
        }
    }
    return failures ? 1 : 0;
}
