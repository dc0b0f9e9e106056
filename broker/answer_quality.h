/*  answer_quality.h - what each bot's own questions say of its answers, as the workers measured
    it when they built the knowledge base (worker command QUALITY, PROTOCOL.md 9.12): the curve of
    precision and coverage by threshold per bot, for bot.get and stats. The latest knowledge-base
    version reported wins; a report of another version replaces all bots. Bounded by the bots a
    report may hold (KF_QUALITY_BOTS_MAX, common/answer_curve.h). */
#ifndef KF_ANSWER_QUALITY_H
#define KF_ANSWER_QUALITY_H
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include "common/answer_curve.h"

//  A QUALITY body's size at most: 1,000 bots of about 1 KB each (checked before decoding)
#define KF_QUALITY_BODY_MAX (4 << 20)

typedef struct _kf_answer_quality_t kf_answer_quality_t;

//  Creates an empty table. Never NULL.
kf_answer_quality_t *kf_answer_quality_new (void);

//  Frees the table; nulls *self_p. NULL is fine.
void kf_answer_quality_destroy (kf_answer_quality_t **self_p);

//  Takes a QUALITY body {kb_version, bots: [{bot_id, curve}]} (msgpack, `size` bytes). A report of
//  an older version than the one kept, or of a newer one than `current` (the database's: no worker
//  can have loaded it), is ignored. Returns the number of bot entries that were not valid (and
//  left out), or -1 when the body is not one (larger than KF_QUALITY_BODY_MAX, not such a map, an
//  ignored version: kept as it was).
int kf_answer_quality_on_report (kf_answer_quality_t *self, const char *body, size_t size,
                                 int64_t current);

//  The curve of bot `bot_id` (`len` bytes), borrowed until the next report, or NULL when none was
//  reported; *kb_version (when not NULL) is the version it was measured on.
const kf_answer_curve_t *kf_answer_quality_get (kf_answer_quality_t *self, const char *bot_id,
                                                size_t len, int64_t *kb_version);

//  Packs the quality of a curve at `target` precision: {calibrated, questions, target_precision,
//  threshold, precision, coverage, kb_version}; nil when `curve` is NULL.
void kf_answer_quality_pack (const kf_answer_curve_t *curve, double target, int64_t kb_version,
                             msgpack_packer *pk);

//  Number of bots kept.
size_t kf_answer_quality_size (kf_answer_quality_t *self);

//  Calls `fn` for each bot kept, in no particular order.
typedef void (kf_answer_quality_fn) (void *arg, const char *bot_id, const kf_answer_curve_t *curve);
void kf_answer_quality_each (kf_answer_quality_t *self, kf_answer_quality_fn *fn, void *arg);
#endif
