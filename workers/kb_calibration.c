/*  kb_calibration.c - per-bot calibration of retrieval scores. See kb_calibration.h. */
#include "workers/kb_calibration.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/utf8.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_HOLDOUT 1500          //  Items that lose a question, at most (of one round)
#define S_SAMPLES 2400          //  Questions held out over all rounds, about
#define S_ABSENT_SHARE 8        //  One item left out whole for this many held out (OOS questions)
#define S_CAL_ITEMS 20000       //  Items in the calibration index, at most
#define S_SEED 0x6B6566756B6566ULL  //  Of the draw of held-out questions
#define S_ROUNDS 16             //  Rounds of holding out, at most (small knowledge bases)
#define S_NEWTON_ROUNDS 25
#define S_L2 1e-3               //  Keeps the fit finite when the samples separate perfectly
#define S_EXACT 0.99999         //  A score this high is a known question, word for word
#define S_WEAK 0.45             //  A similarity below this never makes a probability above itself

//  Fitted on the dev sets of tests/data/domains and the sample shop (answer_eval --fit-default)
static kf_kb_calibration_t s_default = {
    .weights = { -2.76, 6.46, 7.87 }
};

//  One question asked of the calibration index
typedef struct {
    char *text;                 //  Heap
    int64_t expect;             //  Item id that answers it, 0: none
    double score, margin;
    bool is_right;
} s_sample_t;

typedef struct {
    s_sample_t *list;
    int count, capacity;
} s_samples_t;

static uint64_t
s_random (uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void
s_add_sample (s_samples_t *samples, char *text, int64_t expect)
{
    if (samples->count == samples->capacity) {
        samples->capacity = samples->capacity ? samples->capacity * 2 : 256;
        samples->list = kf_realloc (samples->list, samples->capacity * sizeof (s_sample_t));
    }
    samples->list [samples->count++] = (s_sample_t) { text, expect, 0, 0, false };
}

static char **
s_copy_list (char *const *list, int count, int skip, int *kept)
{
    char **copy = kf_calloc (count ? count : 1, sizeof (char *));
    *kept = 0;
    for (int i = 0; i < count; i++)
        if (i != skip)
            copy [(*kept)++] = kf_strdup (list [i]);
    return copy;
}

//  Adds a copy of `item` to `index` without its similar question number `held` (-1 keeps all)
static void
s_add_copy (kf_kb_index_t *index, const kf_kb_item_t *item, int held)
{
    kf_kb_item_t copy = {
        .id = item->id, .bot_id = kf_strdup (item->bot_id), .external_id = kf_strdup (item->external_id),
        .category = kf_strdup (item->category), .question = kf_strdup (item->question),
        .answer = kf_strdup (item->answer)
    };
    copy.keywords = s_copy_list (item->keywords, item->keyword_count, -1, &copy.keyword_count);
    copy.similar = s_copy_list (item->similar, item->similar_count, held, &copy.similar_count);
    kf_kb_index_add_item (index, &copy);
}

//  Draws the samples and builds the calibration index of the items that stay
static kf_kb_index_t *
s_prepare (kf_kb_index_t *index, const char *bot_id, const int *items, int count,
           const kf_kb_synonym_group_t *synonyms, int synonym_count, int round, s_samples_t *samples)
{
    //  The same draw for every bot and worker: the same items give the same threshold, whatever
    //  the bot is called and wherever it is built
    uint64_t state = S_SEED + (uint64_t) round;
    //  0: stays whole, 1: loses a question, 2: left out, 3: not in the calibration index
    uint8_t *role = kf_calloc (count ? count : 1, 1);
    int *order = kf_malloc ((count ? count : 1) * sizeof (int));
    for (int i = 0; i < count; i++)
        order [i] = i;
    for (int i = count - 1; i > 0; i--) {
        int j = (int) (s_random (&state) % (uint64_t) (i + 1));
        int t = order [i];
        order [i] = order [j];
        order [j] = t;
    }
    int held = 0, absent = 0, kept = 0;
    for (int o = 0; o < count; o++) {
        const kf_kb_item_t *item = kf_kb_index_item (index, items [order [o]]);
        if (o % (S_ABSENT_SHARE + 1) == 0 && absent < S_HOLDOUT / S_ABSENT_SHARE)
            role [order [o]] = 2, absent++;
        else
        if (item->similar_count > 0 && held < S_HOLDOUT)
            role [order [o]] = 1, held++;
        else
        if (kept + held >= S_CAL_ITEMS)
            role [order [o]] = 3;
        else
            kept++;
    }
    kf_kb_index_t *cal = kf_kb_index_new ();
    for (int s = 0; s < synonym_count; s++)
        kf_kb_index_add_synonyms (cal, bot_id, synonyms [s].words, synonyms [s].count);
    for (int i = 0; i < count; i++) {
        const kf_kb_item_t *item = kf_kb_index_item (index, items [i]);
        if (role [i] == 0)
            s_add_copy (cal, item, -1);
        else
        if (role [i] == 1) {
            int held = (int) (s_random (&state) % (uint64_t) item->similar_count);
            s_add_sample (samples, kf_strdup (item->similar [held]), item->id);
            s_add_copy (cal, item, held);
        }
        else
        if (role [i] == 2) {
            const char *text = item->similar_count
                             ? item->similar [s_random (&state) % (uint64_t) item->similar_count]
                             : item->question;
            s_add_sample (samples, kf_strdup (text), 0);
        }
    }
    kf_kb_index_build (cal);
    free (role);
    free (order);
    return cal;
}

static double
s_sigmoid (double z)
{
    return 1 / (1 + exp (-z));
}

static double
s_predict (const double *w, double score, double margin)
{
    return s_sigmoid (w [0] + w [1] * score + w [2] * margin);
}

void
kf_kb_calibration_fit_weights (const double *score, const double *margin, const bool *is_right,
                               int count, double w [3])
{
    w [0] = w [1] = w [2] = 0;
    for (int round = 0; round < S_NEWTON_ROUNDS; round++) {
        double g [3] = { 0 }, h [3][3] = { { 0 } };
        for (int s = 0; s < count; s++) {
            double x [3] = { 1, score [s], margin [s] };
            double p = s_predict (w, score [s], margin [s]);
            double r = p - (is_right [s] ? 1 : 0), v = p * (1 - p);
            for (int i = 0; i < 3; i++) {
                g [i] += r * x [i];
                for (int j = 0; j < 3; j++)
                    h [i][j] += v * x [i] * x [j];
            }
        }
        for (int i = 0; i < 3; i++) {
            g [i] += S_L2 * w [i];
            h [i][i] += S_L2;
        }
        //  Solve h d = g (3x3, Cramer's rule)
        double det = h [0][0] * (h [1][1] * h [2][2] - h [1][2] * h [2][1])
                   - h [0][1] * (h [1][0] * h [2][2] - h [1][2] * h [2][0])
                   + h [0][2] * (h [1][0] * h [2][1] - h [1][1] * h [2][0]);
        if (fabs (det) < 1e-12)
            break;
        double d [3];
        for (int c = 0; c < 3; c++) {
            double m [3][3];
            memcpy (m, h, sizeof m);
            for (int r = 0; r < 3; r++)
                m [r][c] = g [r];
            d [c] = (m [0][0] * (m [1][1] * m [2][2] - m [1][2] * m [2][1])
                   - m [0][1] * (m [1][0] * m [2][2] - m [1][2] * m [2][0])
                   + m [0][2] * (m [1][0] * m [2][1] - m [1][1] * m [2][0])) / det;
        }
        double step = 0;
        for (int i = 0; i < 3; i++) {
            w [i] -= d [i];
            step += fabs (d [i]);
        }
        if (step < 1e-6)
            break;
    }
}

//  The margin of a score to the next one, at most half the score: a lone weak match ("谢谢你啦"
//  finding 可以指定快递公司吗 at 0.42, nothing else) is no clear winner, and the held-out questions,
//  asked of knowledge bases where something else always matches, say nothing of it
static double
s_margin (double score, double next)
{
    return score - (next > score / 2 ? next : score / 2);
}

//  The calibrated probability of a best score and its margin (s_margin). Below S_WEAK the
//  probability is at most the score: such matches are outside what calibration saw
static double
s_probability (const kf_kb_calibration_t *self, double score, double margin)
{
    if (score >= S_EXACT && margin > 0)
        return 1;
    double p = s_predict (self->weights, score, margin);
    if (self->step_count > 0) {
        int i = self->step_count - 1;
        while (i > 0 && self->step_from [i] > p)
            i--;
        p = self->step_to [i];
    }
    //  Below S_WEAK, and on the default calibration (not this bot's), never above the similarity:
    //  "多久" is half of many questions of a bot of eight items
    return (score < S_WEAK || !self->curve.is_fitted) && p > score ? score : p;
}

typedef struct {
    double p;                   //  The regression's output
    bool is_right;
} s_point_t;

static int
s_by_p (const void *a, const void *b)
{
    double x = ((const s_point_t *) a)->p, y = ((const s_point_t *) b)->p;
    return x < y ? -1 : x > y;
}

//  Fits the isotonic map: pool adjacent violators over the samples by p, then at most
//  KF_CAL_STEPS steps (neighbouring blocks merged, which keeps the order), each block's rate
//  smoothed by one right and one wrong answer more ((right + 1) / (size + 2): a block of five right
//  answers does not claim certainty) and kept from falling below the one before
static void
s_isotonic (kf_kb_calibration_t *self, const s_samples_t *samples)
{
    int n = 0;
    s_point_t *points = kf_malloc ((samples->count + 1) * sizeof *points);
    for (int s = 0; s < samples->count; s++)
        if (samples->list [s].score > 0 && !(samples->list [s].score >= S_EXACT && samples->list [s].margin > 0))
            points [n++] = (s_point_t) { s_predict (self->weights, samples->list [s].score,
                                                    samples->list [s].margin), samples->list [s].is_right };
    qsort (points, n, sizeof *points, s_by_p);
    //  Blocks: first point, count, right answers
    int *first = kf_malloc ((n + 1) * sizeof (int)), *size = kf_malloc ((n + 1) * sizeof (int));
    double *right = kf_malloc ((n + 1) * sizeof (double));
    int blocks = 0;
    for (int i = 0; i < n; i++) {
        first [blocks] = i, size [blocks] = 1, right [blocks] = points [i].is_right;
        blocks++;
        while (blocks > 1 && right [blocks - 2] / size [blocks - 2] >= right [blocks - 1] / size [blocks - 1]) {
            size [blocks - 2] += size [blocks - 1];
            right [blocks - 2] += right [blocks - 1];
            blocks--;
        }
    }
    //  Fewer steps: merge the smallest block into its smaller neighbour until they fit
    while (blocks > KF_CAL_STEPS) {
        int at = 0;
        for (int b = 1; b < blocks; b++)
            if (size [b] < size [at])
                at = b;
        int into = at == 0 ? 1 : at == blocks - 1 ? at - 1 : size [at - 1] < size [at + 1] ? at - 1 : at + 1;
        int low = at < into ? at : into;
        size [low] += size [low + 1];
        right [low] += right [low + 1];
        memmove (first + low + 1, first + low + 2, (blocks - low - 2) * sizeof (int));
        memmove (size + low + 1, size + low + 2, (blocks - low - 2) * sizeof (int));
        memmove (right + low + 1, right + low + 2, (blocks - low - 2) * sizeof (double));
        blocks--;
    }
    double floor_to = 0;
    for (int b = 0; b < blocks; b++) {
        double q = (right [b] + 1) / (size [b] + 2);
        floor_to = q > floor_to ? q : floor_to;
        self->step_from [b] = b == 0 ? 0 : points [first [b]].p;
        self->step_to [b] = floor_to;
    }
    self->step_count = blocks;
    free (points);
    free (first);
    free (size);
    free (right);
}

//  The precision and coverage curve of `self` over the samples
static void
s_curve (kf_kb_calibration_t *self, const s_samples_t *samples)
{
    for (int t = 0; t < KF_CURVE_GRID; t++) {
        double threshold = t / (double) (KF_CURVE_GRID - 1);
        int answered = 0, right = 0;
        for (int s = 0; s < samples->count; s++) {
            const s_sample_t *sample = &samples->list [s];
            double p = s_probability (self, sample->score, sample->margin);
            if (sample->score > 0 && p >= threshold) {
                answered++;
                right += sample->is_right;
            }
        }
        self->curve.answered [t] = answered;
        self->curve.right [t] = right;
    }
}

//  Asks the questions of `rounds` draws: each one's best score, margin and whether it was right.
//  Returns how many of them the knowledge base holds the answer of
static int
s_ask (kf_kb_index_t *index, const char *bot_id, const int *items, int count,
       const kf_kb_synonym_group_t *synonyms, int synonym_count, int rounds, s_samples_t *samples)
{
    int answerable = 0;
    for (int round = 0; round < rounds; round++) {
        int first = samples->count;
        kf_kb_index_t *cal = s_prepare (index, bot_id, items, count, synonyms, synonym_count, round,
                                        samples);
        for (int s = first; s < samples->count; s++) {
            s_sample_t *sample = &samples->list [s];
            kf_kb_hit_t hits [2];
            int found = kf_kb_index_search (cal, bot_id, sample->text, strlen (sample->text), hits, 2);
            sample->score = found ? hits [0].confidence : 0;
            sample->margin = found ? s_margin (hits [0].confidence, found > 1 ? hits [1].confidence : 0) : 0;
            sample->is_right = found && sample->expect && hits [0].item->id == sample->expect;
            answerable += sample->expect != 0;
        }
        kf_kb_index_destroy (&cal);
    }
    return answerable;
}

//  Fits the regression and the isotonic map of `self` to the samples
static void
s_fit (kf_kb_calibration_t *self, const s_samples_t *samples)
{
    double *score = kf_malloc ((samples->count + 1) * sizeof (double));
    double *margin = kf_malloc ((samples->count + 1) * sizeof (double));
    bool *is_right = kf_malloc ((samples->count + 1) * sizeof (bool));
    for (int s = 0; s < samples->count; s++) {
        score [s] = samples->list [s].score;
        margin [s] = samples->list [s].margin;
        is_right [s] = samples->list [s].is_right;
    }
    kf_kb_calibration_fit_weights (score, margin, is_right, samples->count, self->weights);
    s_isotonic (self, samples);
    self->curve.is_fitted = true;
    free (score);
    free (margin);
    free (is_right);
}

kf_kb_calibration_t *
kf_kb_calibration_fit (kf_kb_index_t *index, const char *bot_id, const int *items, int count,
                       const kf_kb_synonym_group_t *synonyms, int synonym_count)
{
    int64_t start = kf_mono_us ();
    kf_kb_calibration_t *self = kf_malloc (sizeof *self);
    *self = s_default;
    s_samples_t samples = { NULL, 0, 0 };
    //  A small knowledge base is sampled again with other questions held out, about S_SAMPLES
    //  questions in all: the curve of 150 items from one round is too coarse to choose from
    int rounds = count > 0 ? S_SAMPLES / count : 1;
    rounds = rounds < 1 ? 1 : rounds > S_ROUNDS ? S_ROUNDS : rounds;
    int answerable = s_ask (index, bot_id, items, count, synonyms, synonym_count, rounds, &samples);
    self->curve.samples = samples.count;
    self->curve.answerable = answerable;
    //  Rounds ask the same questions again: what counts is how many similar questions the bot
    //  has to hold out at all
    int distinct = 0;
    for (int i = 0; i < count; i++)
        distinct += kf_kb_index_item (index, items [i])->similar_count;
    if (answerable >= KF_CAL_MIN_SAMPLES && distinct >= KF_CAL_MIN_SAMPLES)
        s_fit (self, &samples);
    s_curve (self, &samples);
    for (int s = 0; s < samples.count; s++)
        free (samples.list [s].text);
    free (samples.list);
    self->fit_ms = (kf_mono_us () - start) / 1000.0;
    return self;
}

const kf_kb_calibration_t *
kf_kb_calibration_default (void)
{
    return &s_default;
}

void
kf_kb_calibration_destroy (kf_kb_calibration_t **self_p)
{
    free (*self_p);
    *self_p = NULL;
}

double
kf_kb_calibration_probability (const kf_kb_calibration_t *self, const kf_kb_hit_t *hits, int count,
                               int at)
{
    if (!self)
        self = &s_default;
    if (at >= count)
        return 0;
    double score = hits [at].confidence;
    double next = at + 1 < count ? hits [at + 1].confidence : 0;
    double previous = at > 0 ? hits [at - 1].confidence : -1;
    if (score >= S_EXACT && next < S_EXACT && previous < S_EXACT)
        return 1;
    //  Below the first, an item is as likely as its own margin says (kf_pipeline_calibrate keeps
    //  it below the one ranked before)
    double p = s_probability (self, score, s_margin (score, next));
    return p < 1 ? p : 1 - 1e-6;    //  Certainty is for exact matches
}

double
kf_kb_calibration_threshold (const kf_kb_calibration_t *self, double target)
{
    return kf_answer_curve_threshold (self ? &self->curve : NULL, target, KF_CAL_DEFAULT_THRESHOLD);
}
