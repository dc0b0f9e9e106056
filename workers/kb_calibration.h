/*  kb_calibration.h - what a retrieval score means on one bot's knowledge base: the probability
    that the best item is the right answer, fitted from the bot's own data whenever its knowledge
    base is built, and the answer threshold that gives a target precision.

    Fitting. Some of the bot's items with similar questions each lose one of them (held out: the
    standard question is the business's canonical wording, often built on the same template as
    its neighbours' - "个人用户注册流程？" / "法人用户注册流程？" - where customers write as the similar
    questions do), a few items are left out whole; a calibration index of the rest is built, and every held-out
    question is asked, and one question of every left-out item (no right answer exists: the
    knowledge base cannot answer it). Questions with a character dropped were tried as typos and
    left out: a dropped character is usually half of the word that matters (发票 -> 发), which real
    typos are not, and they made every bot far more cautious than its customers' questions showed.
    A small knowledge base is held out again with other questions, about S_SAMPLES in all. Each search
    gives its best score, the margin to the runner-up and whether the best item is the right one;
    a logistic regression on those (Platt scaling) orders them, an isotonic regression of the
    outcomes on its output (pool adjacent violators) makes that order a probability that never
    falls as the evidence grows, and the samples give the precision and coverage at every
    threshold, which then never falls as the threshold rises. Large knowledge bases are sampled (at most
    S_CAL_ITEMS items in the calibration index, S_HOLDOUT items held out): a bot of 100,000 items
    is calibrated in about a second on the loader thread.

    A bot with too few items with similar questions to fit (fewer than KF_CAL_MIN_SAMPLES held-out
    questions) gets the default: coefficients fitted once on our evaluation sets (BENCHMARKS.md,
    "Answer decision"), with a threshold of KF_CAL_DEFAULT_THRESHOLD, higher than the fitted ones
    usually are. An exact match of a known question (score 1, no other item scoring 1) is 1.0.

    Threads: fitted on the loader thread, then read-only. */
#ifndef KF_KB_CALIBRATION_H
#define KF_KB_CALIBRATION_H
#include <stdbool.h>
#include <stddef.h>
#include "common/answer_curve.h"
#include "workers/kb_index.h"

#define KF_CAL_MIN_SAMPLES 40           //  Held-out questions needed to fit a bot's own curve
#define KF_CAL_DEFAULT_THRESHOLD KF_CURVE_DEFAULT_THRESHOLD
#define KF_CAL_DEFAULT_TARGET KF_CURVE_DEFAULT_TARGET
#define KF_CAL_STEPS 32                 //  Steps of the isotonic map, at most

typedef struct {
    kf_answer_curve_t curve;            //  What the bot's questions say (is_fitted: from its own
                                        //  data; false: the default)
    double weights [3];                 //  Bias, score, margin to the runner-up
    double step_from [KF_CAL_STEPS];    //  The isotonic map of the regression's output p: from
    double step_to [KF_CAL_STEPS];      //  step_from [i] on, the probability is step_to [i]
    int step_count;                     //  (0: p itself, the default)
    double fit_ms;                      //  Time it took
} kf_kb_calibration_t;

//  The synonym groups of the bot, as the index was given them (borrowed for the call).
typedef struct {
    const char *const *words;
    int count;
} kf_kb_synonym_group_t;

//  Fits the calibration of bot `bot_id` from its items in `index` (`items`: their positions in the
//  index, `count` of them) and its synonym groups. Returns a heap calibration (the default when the
//  bot has too little to fit); never NULL.
kf_kb_calibration_t *kf_kb_calibration_fit (kf_kb_index_t *index, const char *bot_id,
                                            const int *items, int count,
                                            const kf_kb_synonym_group_t *synonyms,
                                            int synonym_count);

//  Fits the weights (bias, score, margin) of a logistic regression to `count` samples: each a
//  best score, its margin to the runner-up and whether that item was right. For the default's
//  coefficients (tests/bench/answer_eval --fit-default) and the per-bot fit.
void kf_kb_calibration_fit_weights (const double *score, const double *margin, const bool *is_right,
                                    int count, double weights [3]);

//  The default calibration (static, never freed).
const kf_kb_calibration_t *kf_kb_calibration_default (void);

//  Destroys a calibration made by kf_kb_calibration_fit; nulls *self_p. NULL is fine.
void kf_kb_calibration_destroy (kf_kb_calibration_t **self_p);

//  The probability that `hits [at]` of `count` (best first, as kf_kb_index_search gives them) is
//  the right answer. `self` NULL: the default.
double kf_kb_calibration_probability (const kf_kb_calibration_t *self, const kf_kb_hit_t *hits,
                                      int count, int at);

//  The lowest threshold whose answers reached `target` precision on the calibration samples; 1.0
//  when none did (only exact matches answer). `self` NULL or not fitted: KF_CAL_DEFAULT_THRESHOLD.
double kf_kb_calibration_threshold (const kf_kb_calibration_t *self, double target);
#endif
