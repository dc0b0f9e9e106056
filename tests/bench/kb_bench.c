/*  kb_bench.c - speed of the retrieval index at scale: build time, memory and search latency over a
    generated knowledge base (kb_gen.h) on one core.
    kb_bench [--items N] [--queries N] [--seed S] [--max-p99-us U] [--check N [--show]]
             [ITEMS.jsonl QUERIES.jsonl]
    Without files it generates N items (default 100,000) and the queries itself. Loads the items
    (parsed before the clock starts), adds them to a kf_kb_index_t and builds it, then runs every
    query once unmeasured and once measured; prints build time, the resident-memory growth, latency
    percentiles, and top-1 accuracy (for information). With --max-p99-us it fails above that p99.
    --check N compares the hits of the first N queries with an exhaustive search (slow), and fails
    when more than 1% of them would get another reply; --show prints those. */
#include "tests/bench/kb_gen.h"
#include "tests/bench/kb_jsonl.h"
#include "workers/kb_index.h"
#include "workers/pipeline.h"
#include "common/log.h"
#include "common/mpack.h"
#include <malloc.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    kf_kb_item_t *items;
    int count, capacity;
} s_items_t;

typedef struct {
    char **text;
    char **expect;              //  NULL entries for queries nothing should answer
    int count, capacity;
} s_queries_t;

static void
s_read_item (void *arg, const msgpack_object *obj)
{
    s_items_t *items = arg;
    if (!kf_jsonl_item_on_shelf (obj))
        return;
    if (items->count == items->capacity) {
        items->capacity = items->capacity ? items->capacity * 2 : 1024;
        items->items = kf_realloc (items->items, items->capacity * sizeof (kf_kb_item_t));
    }
    kf_jsonl_item (obj, items->count + 1, "default", &items->items [items->count]);
    items->count++;
}

static void
s_read_query (void *arg, const msgpack_object *obj)
{
    s_queries_t *queries = arg;
    if (queries->count == queries->capacity) {
        queries->capacity = queries->capacity ? queries->capacity * 2 : 1024;
        queries->text = kf_realloc (queries->text, queries->capacity * sizeof (char *));
        queries->expect = kf_realloc (queries->expect, queries->capacity * sizeof (char *));
    }
    queries->text [queries->count] = kf_mp_dup_str (obj, "query");
    queries->expect [queries->count] = kf_mp_dup_str (obj, "expect");
    if (queries->text [queries->count])
        queries->count++;
}

//  CPU time of this thread in seconds
static double
s_cpu (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

//  Resident set size in bytes
static long
s_rss (void)
{
    long pages = 0, resident = 0;
    FILE *file = fopen ("/proc/self/statm", "r");
    if (file) {
        if (fscanf (file, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose (file);
    }
    return resident * sysconf (_SC_PAGESIZE);
}

static int
s_compare_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  True when the pipeline makes the same reply from both hit lists: the same item answered, or
//  the same suggestions (the top three at suggest_threshold or above)
static bool
s_same_reply (const kf_pipeline_config_t *config, const kf_kb_hit_t *a, int a_count,
              const kf_kb_hit_t *b, int b_count)
{
    kf_kb_hit_t pa [KF_TOP_K_MAX], pb [KF_TOP_K_MAX];
    memcpy (pa, a, a_count * sizeof *a);
    memcpy (pb, b, b_count * sizeof *b);
    kf_pipeline_calibrate (NULL, pa, a_count);
    kf_pipeline_calibrate (NULL, pb, b_count);
    bool a_answers = kf_pipeline_is_answer (KF_CAL_DEFAULT_THRESHOLD, pa, a_count);
    if (a_answers != kf_pipeline_is_answer (KF_CAL_DEFAULT_THRESHOLD, pb, b_count))
        return false;
    if (a_answers)
        return a [0].item == b [0].item;
    for (int h = 0; h < KF_SUGGESTIONS_MAX; h++) {
        bool a_suggests = h < a_count && a [h].confidence >= config->suggest_threshold;
        bool b_suggests = h < b_count && b [h].confidence >= config->suggest_threshold;
        if (a_suggests != b_suggests || (a_suggests && a [h].item != b [h].item))
            return false;
    }
    return true;
}

//  Compares the fast search with the exhaustive one over the first `count` queries; returns the
//  share of them that get the same reply
static double
s_check (kf_kb_index_t *index, const s_queries_t *queries, int count, bool show)
{
    if (count > queries->count)
        count = queries->count;
    kf_pipeline_config_t config;
    kf_pipeline_config_defaults (&config);
    int same_top = 0, same_hits = 0, same_reply = 0, fast_right = 0, full_right = 0;
    int relevant = 0, same_relevant_top = 0;    //  Queries whose exhaustive top hit could be shown
    for (int q = 0; q < count; q++) {
        kf_kb_hit_t fast [KF_PIPELINE_HITS], full [KF_PIPELINE_HITS];
        const char *text = queries->text [q];
        int fast_count = kf_kb_index_search (index, "default", text, strlen (text), fast,
                                             KF_PIPELINE_HITS);
        kf_kb_index_set_exhaustive (index, true);
        int full_count = kf_kb_index_search (index, "default", text, strlen (text), full,
                                             KF_PIPELINE_HITS);
        kf_kb_index_set_exhaustive (index, false);
        bool is_same_top = (fast_count == 0 && full_count == 0)
                        || (fast_count > 0 && full_count > 0 && fast [0].item == full [0].item
                            && fabs (fast [0].confidence - full [0].confidence) < 1e-9);
        same_top += is_same_top;
        if (full_count > 0 && full [0].confidence >= config.suggest_threshold) {
            relevant++;
            same_relevant_top += is_same_top;
        }
        bool is_same = fast_count == full_count;
        for (int h = 0; h < full_count && is_same; h++)
            is_same = fast [h].item == full [h].item
                   && fabs (fast [h].confidence - full [h].confidence) < 1e-9;
        same_hits += is_same;
        bool is_same_reply = s_same_reply (&config, fast, fast_count, full, full_count);
        same_reply += is_same_reply;
        if (show && !is_same_reply) {
            printf ("differs: %s\n", text);
            for (int h = 0; h < full_count || h < fast_count; h++)
                printf ("  exhaustive %s %.3f | fast %s %.3f\n",
                        h < full_count ? full [h].item->external_id : "-",
                        h < full_count ? full [h].confidence : 0,
                        h < fast_count ? fast [h].item->external_id : "-",
                        h < fast_count ? fast [h].confidence : 0);
        }
        const char *expect = queries->expect [q];
        fast_right += expect && fast_count && strcmp (fast [0].item->external_id, expect) == 0;
        full_right += expect && full_count && strcmp (full [0].item->external_id, expect) == 0;
    }
    printf ("against exhaustive search, %d queries: same top hit %.2f%% (%.2f%% of the %d whose"
            " top hit reaches suggest_threshold), same reply %.2f%%, same %d hits %.2f%%;"
            " right top hit %d (exhaustive %d)\n", count, 100.0 * same_top / count,
            relevant ? 100.0 * same_relevant_top / relevant : 100.0, relevant,
            100.0 * same_reply / count, KF_PIPELINE_HITS, 100.0 * same_hits / count, fast_right,
            full_right);
    return (double) same_reply / count;
}

static FILE *
s_open_or_generate (const char *path, int items, int queries, uint64_t seed, bool is_queries)
{
    if (path)
        return fopen (path, "r");
    FILE *file = tmpfile ();
    if (!file)
        return NULL;
    if (is_queries)
        kf_kb_gen_queries (file, items, queries, seed);
    else
    if (kf_kb_gen_items (file, items, seed) != 0) {
        fclose (file);
        return NULL;
    }
    rewind (file);
    return file;
}

int
main (int argc, char *argv [])
{
    int item_count = 100000, query_count = 20000;
    uint64_t seed = 1;
    double max_p99_us = 0;
    int check = 0;
    bool show = false;
    const char *paths [2] = { NULL, NULL };
    int path_count = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--items") == 0 && i + 1 < argc)
            item_count = atoi (argv [++i]);
        else
        if (strcmp (argv [i], "--queries") == 0 && i + 1 < argc)
            query_count = atoi (argv [++i]);
        else
        if (strcmp (argv [i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull (argv [++i], NULL, 10);
        else
        if (strcmp (argv [i], "--max-p99-us") == 0 && i + 1 < argc)
            max_p99_us = atof (argv [++i]);
        else
        if (strcmp (argv [i], "--check") == 0 && i + 1 < argc)
            check = atoi (argv [++i]);
        else
        if (strcmp (argv [i], "--show") == 0)
            show = true;
        else
        if (argv [i][0] != '-' && path_count < 2)
            paths [path_count++] = argv [i];
        else {
            fprintf (stderr, "usage: kb_bench [--items N] [--queries N] [--seed S] [--max-p99-us U]"
                     " [--check N [--show]] [ITEMS.jsonl QUERIES.jsonl]\n");
            return 2;
        }
    }
    if (path_count == 1) {
        fprintf (stderr, "kb_bench: give both the items and the queries, or neither\n");
        return 2;
    }
    //  One core: the last one, away from whatever runs on the first
    cpu_set_t cpus;
    CPU_ZERO (&cpus);
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    CPU_SET (cores > 1 ? cores - 1 : 0, &cpus);
    bool is_pinned = sched_setaffinity (0, sizeof cpus, &cpus) == 0;

    long rss_start = s_rss ();
    FILE *file = s_open_or_generate (paths [0], item_count, query_count, seed, false);
    s_items_t items = { 0 };
    if (!file || kf_jsonl_each_file (file, s_read_item, &items) <= 0) {
        fprintf (stderr, "kb_bench: no items\n");
        return 1;
    }
    fclose (file);
    file = s_open_or_generate (paths [1], item_count, query_count, seed, true);
    s_queries_t queries = { 0 };
    if (!file || kf_jsonl_each_file (file, s_read_query, &queries) <= 0) {
        fprintf (stderr, "kb_bench: no queries\n");
        return 1;
    }
    fclose (file);

    malloc_trim (0);            //  Resident memory counts what is in use, not what the heap keeps
    long rss_before = s_rss ();
    double start = s_now ();
    kf_kb_index_t *index = kf_kb_index_new ();
    for (int i = 0; i < items.count; i++)
        kf_kb_index_add_item (index, &items.items [i]);    //  Takes over the strings
    double added = s_now ();
    kf_kb_index_build (index);
    double built = s_now ();
    malloc_trim (0);
    long rss_after = s_rss ();
    free (items.items);

    kf_pipeline_config_t config;
    kf_pipeline_config_defaults (&config);
    double *latency = kf_calloc (queries.count, sizeof (double));
    int answerable = 0, top1 = 0, answered_right = 0, answered_wrong = 0, false_answers = 0;
    double cpu_start = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            cpu_start = s_cpu ();
        for (int q = 0; q < queries.count; q++) {
            kf_kb_hit_t hits [KF_PIPELINE_HITS];
            const char *text = queries.text [q];
            double t0 = s_now ();
            int count = kf_kb_index_search (index, "default", text, strlen (text), hits,
                                            KF_PIPELINE_HITS);
            double t1 = s_now ();
            if (pass == 0)
                continue;       //  Warm-up: caches and the allocator, as a running worker has them
            latency [q] = (t1 - t0) * 1e6;
            kf_pipeline_calibrate (NULL, hits, count);
            bool is_answer = kf_pipeline_is_answer (KF_CAL_DEFAULT_THRESHOLD, hits, count);
            const char *expect = queries.expect [q];
            bool is_right = expect && count > 0 && strcmp (hits [0].item->external_id, expect) == 0;
            answerable += expect != NULL;
            top1 += is_right;
            answered_right += is_answer && is_right;
            answered_wrong += is_answer && expect && !is_right;
            false_answers += is_answer && !expect;
        }
    }
    double cpu = (s_cpu () - cpu_start) * 1e6 / queries.count;
    double total = 0;
    for (int q = 0; q < queries.count; q++)
        total += latency [q];
    qsort (latency, queries.count, sizeof (double), s_compare_double);
    double p50 = latency [queries.count / 2], p90 = latency [queries.count * 9 / 10];
    double p99 = latency [queries.count * 99 / 100], max = latency [queries.count - 1];
    printf ("kb_bench: %d items, %d queries, one core%s\n", items.count, queries.count,
            is_pinned ? " (pinned)" : "");
    printf ("build: add %.2f s + build %.2f s = %.2f s; resident memory: items as parsed %.1f MB,"
            " index on top of them +%.1f MB\n", added - start, built - added, built - start,
            (rss_before - rss_start) / 1048576.0, (rss_after - rss_before) / 1048576.0);
    printf ("search latency: mean %.1f us, p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us;"
            " CPU %.1f us a search\n", total / queries.count, p50, p90, p99, max, cpu);
    printf ("quality (information): top-1 %.1f%% of %d, answered correctly %.1f%%,"
            " wrong answers %d, false answers %d of %d\n", answerable ? 100.0 * top1 / answerable : 0, answerable,
            answerable ? 100.0 * answered_right / answerable : 0, answered_wrong, false_answers,
            queries.count - answerable);
    double same_reply = check > 0 ? s_check (index, &queries, check, show) : 1;
    for (int q = 0; q < queries.count; q++) {
        free (queries.text [q]);
        free (queries.expect [q]);
    }
    free (queries.text);
    free (queries.expect);
    free (latency);
    kf_kb_index_destroy (&index);
    if (max_p99_us > 0 && p99 > max_p99_us) {
        fprintf (stderr, "kb_bench: p99 %.1f us is above %.1f us\n", p99, max_p99_us);
        return 1;
    }
    if (same_reply < 0.99) {
        fprintf (stderr, "kb_bench: the bounded search changes more than 1%% of replies\n");
        return 1;
    }
    return 0;
}
