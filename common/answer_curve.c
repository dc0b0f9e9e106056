/*  answer_curve.c - precision and coverage by threshold. See answer_curve.h. */
#include "common/answer_curve.h"
#include "common/mpack.h"
#include <math.h>
#include <string.h>

double
kf_answer_curve_threshold (const kf_answer_curve_t *self, double target, double fallback)
{
    if (!self || !self->is_fitted)
        return fallback;
    for (int t = (int) (KF_CURVE_THRESHOLD_MIN * (KF_CURVE_GRID - 1)); t < KF_CURVE_GRID; t++)
        if (self->answered [t] >= KF_CURVE_MIN_ANSWERED
        &&  self->right [t] >= target * self->answered [t])
            return t / (double) (KF_CURVE_GRID - 1);
    //  Not reached on the bot's own questions: only answers whose calibrated probability is
    //  itself at the default threshold or above (or the target, when a bot asks for more than
    //  the default precision)
    return target > KF_CURVE_DEFAULT_TARGET && target > fallback ? target : fallback;
}

void
kf_answer_curve_estimate (const kf_answer_curve_t *self, double threshold, double *precision,
                          double *coverage)
{
    int t = (int) floor (threshold * (KF_CURVE_GRID - 1) + 1e-9);
    t = t < 0 ? 0 : t >= KF_CURVE_GRID ? KF_CURVE_GRID - 1 : t;
    *precision = self->answered [t] ? self->right [t] / (double) self->answered [t] : 1;
    *coverage = self->samples ? self->answered [t] / (double) self->samples : 0;
}

static void
s_pack_counts (msgpack_packer *pk, const char *key, const int32_t *counts)
{
    kf_mp_pack_cstr (pk, key);
    msgpack_pack_array (pk, KF_CURVE_GRID);
    for (int t = 0; t < KF_CURVE_GRID; t++)
        msgpack_pack_int32 (pk, counts [t]);
}

void
kf_answer_curve_pack (const kf_answer_curve_t *self, msgpack_packer *pk)
{
    msgpack_pack_map (pk, 5);
    kf_mp_pack_kv_bool (pk, "fitted", self->is_fitted);
    kf_mp_pack_kv_int (pk, "samples", self->samples);
    kf_mp_pack_kv_int (pk, "answerable", self->answerable);
    s_pack_counts (pk, "answered", self->answered);
    s_pack_counts (pk, "right", self->right);
}

//  Reads a list of KF_CURVE_GRID counts in [0, max], never rising; false otherwise
static bool
s_unpack_counts (const msgpack_object *list, int64_t max, int32_t *counts)
{
    if (!list || list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size != KF_CURVE_GRID)
        return false;
    for (int t = 0; t < KF_CURVE_GRID; t++) {
        int64_t value;
        if (!kf_mp_int (&list->via.array.ptr [t], &value) || value < 0 || value > max
        ||  (t > 0 && value > counts [t - 1]))
            return false;
        counts [t] = (int32_t) value;
    }
    return true;
}

bool
kf_answer_curve_unpack (const msgpack_object *obj, kf_answer_curve_t *self)
{
    memset (self, 0, sizeof *self);
    int64_t samples, answerable;
    const msgpack_object *fitted = kf_mp_get (obj, "fitted");
    bool is_ok = fitted && fitted->type == MSGPACK_OBJECT_BOOLEAN
              && kf_mp_int (kf_mp_get (obj, "samples"), &samples) && samples >= 0 && samples <= INT32_MAX
              && kf_mp_int (kf_mp_get (obj, "answerable"), &answerable) && answerable >= 0
              && answerable <= samples
              && s_unpack_counts (kf_mp_get (obj, "answered"), samples, self->answered)
              && s_unpack_counts (kf_mp_get (obj, "right"), samples, self->right);
    for (int t = 0; is_ok && t < KF_CURVE_GRID; t++)
        is_ok = self->right [t] <= self->answered [t];
    if (!is_ok) {
        memset (self, 0, sizeof *self);
        return false;
    }
    self->is_fitted = fitted->via.boolean;
    self->samples = (int32_t) samples;
    self->answerable = (int32_t) answerable;
    return true;
}
