/*  answer_curve.h - what a bot's own questions say of its answers: at each threshold of the
    calibrated probability (0.00, 0.01 .. 1.00), how many of its calibration questions would be
    answered, how many of those rightly, and so the precision and the coverage; and the threshold
    that reaches a target precision. A worker measures it whenever it builds a knowledge base
    (workers/kb_calibration.c) and reports it to the broker (worker command QUALITY), which shows
    it in bot.get and stats; both choose the threshold with the same function. No allocation. */
#ifndef KF_ANSWER_CURVE_H
#define KF_ANSWER_CURVE_H
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#define KF_CURVE_GRID 101               //  Thresholds 0.00, 0.01 .. 1.00
#define KF_QUALITY_BOTS_MAX 1000        //  Bots one QUALITY report holds, at most (about 1 KB each)
#define KF_CURVE_MIN_ANSWERED 20        //  A threshold answering fewer says nothing of precision
#define KF_CURVE_THRESHOLD_MIN 0.5      //  No threshold below: an answer at least as likely right
                                        //  as wrong, however easy the bot's own questions were
#define KF_CURVE_DEFAULT_TARGET 0.9     //  Target precision of a bot that sets none
//  The answer threshold of a bot whose own questions are too few to calibrate (fewer than 40
//  similar questions to hold out): on the default calibration, fitted on our evaluation sets, it
//  answered 96% right (BENCHMARKS.md, "Answer decision"), stricter than most bots' own
#define KF_CURVE_DEFAULT_THRESHOLD 0.85

typedef struct {
    bool is_fitted;                     //  From the bot's own questions; false: too few to tell
    int32_t samples;                    //  Calibration questions asked
    int32_t answerable;                 //  ... of which the knowledge base holds the answer
    int32_t answered [KF_CURVE_GRID];   //  Answered at threshold i / 100 ...
    int32_t right [KF_CURVE_GRID];      //  ... and rightly
} kf_answer_curve_t;

//  The lowest threshold from KF_CURVE_THRESHOLD_MIN up whose answers reached `target` precision
//  (with at least KF_CURVE_MIN_ANSWERED answered); when none did, `fallback` (only answers whose
//  own probability is that high), or `target` when it asks for more than the default target;
//  `fallback` when the curve is not fitted.
double kf_answer_curve_threshold (const kf_answer_curve_t *self, double target, double fallback);

//  The precision and coverage (answered / samples) at `threshold` (the grid point at or below).
//  Precision is 1 where nothing is answered.
void kf_answer_curve_estimate (const kf_answer_curve_t *self, double threshold, double *precision,
                               double *coverage);

//  Packs the curve as {fitted, samples, answerable, answered: [101 ints], right: [101 ints]}.
void kf_answer_curve_pack (const kf_answer_curve_t *self, msgpack_packer *pk);

//  Reads a packed curve; false (and *self zeroed) when `obj` is not one: a missing field, lists
//  of another length, counts out of order or negative.
bool kf_answer_curve_unpack (const msgpack_object *obj, kf_answer_curve_t *self);
#endif
