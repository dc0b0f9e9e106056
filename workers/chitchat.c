/*  chitchat.c - the small-talk table of one bot and its matching. See chitchat.h. */
#include "workers/chitchat.h"
#include "common/hash.h"
#include "common/log.h"
#include "workers/intent_classifier.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_BIGRAMS KF_CHITCHAT_MAX_UNITS

typedef struct {
    char *normal;               //  Normalized phrasing
    uint64_t *bigrams;          //  Distinct bigram hashes, sorted
    int bigram_count;
    int row;                    //  Index of its row
} s_phrasing_t;

struct _kf_chitchat_t {
    char **replies;             //  One per row
    int row_count;
    s_phrasing_t *phrasings;
    int phrasing_count, phrasing_capacity;
};

kf_chitchat_t *
kf_chitchat_new (void)
{
    return kf_calloc (1, sizeof (kf_chitchat_t));
}

void
kf_chitchat_destroy (kf_chitchat_t **self_p)
{
    kf_chitchat_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->row_count; i++)
        free (self->replies [i]);
    for (int i = 0; i < self->phrasing_count; i++) {
        free (self->phrasings [i].normal);
        free (self->phrasings [i].bigrams);
    }
    free (self->replies);
    free (self->phrasings);
    free (self);
    *self_p = NULL;
}

static int
s_compare (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

//  The distinct bigram hashes of `normal`, sorted, into `out` (S_MAX_BIGRAMS); returns the count.
//  Units are CJK characters and latin/digit words; a text of one unit has that unit as its bigram.
static int
s_bigrams (const char *normal, uint64_t *out)
{
    const char *units [KF_CHITCHAT_MAX_UNITS];
    size_t lens [KF_CHITCHAT_MAX_UNITS];
    int unit_count = 0;
    for (const char *p = normal; *p && unit_count < KF_CHITCHAT_MAX_UNITS; ) {
        unsigned char c = *p;
        if (c == ' ') {
            p++;
            continue;
        }
        size_t n = 1;
        if (c < 0x80)
            while (p [n] && p [n] != ' ' && (unsigned char) p [n] < 0x80)
                n++;
        else
            while (p [n] && ((unsigned char) p [n] & 0xC0) == 0x80)
                n++;
        units [unit_count] = p;
        lens [unit_count++] = n;
        p += n;
    }
    int count = 0;
    if (unit_count == 1)
        out [count++] = kf_fnv1a (KF_FNV1A_BASIS, units [0], lens [0]);
    for (int u = 0; u + 1 < unit_count && count < S_MAX_BIGRAMS; u++) {
        uint64_t hash = kf_fnv1a (KF_FNV1A_BASIS, units [u], lens [u]);
        hash = kf_fnv1a (hash, "|", 1);
        out [count++] = kf_fnv1a (hash, units [u + 1], lens [u + 1]);
    }
    qsort (out, count, sizeof *out, s_compare);
    int unique = 0;
    for (int i = 0; i < count; i++)
        if (unique == 0 || out [unique - 1] != out [i])
            out [unique++] = out [i];
    return unique;
}

void
kf_chitchat_add (kf_chitchat_t *self, const char *const *questions, int count, const char *reply)
{
    if (!reply || !*reply)
        return;
    int row = self->row_count, added = 0;
    for (int q = 0; q < count; q++) {
        if (!questions [q])
            continue;
        char *normal = kf_intent_text_normalize (questions [q], strlen (questions [q]));
        if (!*normal) {
            free (normal);
            continue;
        }
        if (self->phrasing_count == self->phrasing_capacity) {
            self->phrasing_capacity = self->phrasing_capacity ? self->phrasing_capacity * 2 : 32;
            self->phrasings = kf_realloc (self->phrasings,
                                          self->phrasing_capacity * sizeof *self->phrasings);
        }
        uint64_t bigrams [S_MAX_BIGRAMS];
        s_phrasing_t *phrasing = &self->phrasings [self->phrasing_count++];
        phrasing->normal = normal;
        phrasing->bigram_count = s_bigrams (normal, bigrams);
        phrasing->bigrams = kf_malloc (sizeof (uint64_t) * (phrasing->bigram_count + 1));
        memcpy (phrasing->bigrams, bigrams, sizeof (uint64_t) * phrasing->bigram_count);
        phrasing->row = row;
        added++;
    }
    if (!added)
        return;
    self->replies = kf_realloc (self->replies, (self->row_count + 1) * sizeof *self->replies);
    self->replies [self->row_count++] = kf_strdup (reply);
}

int
kf_chitchat_size (const kf_chitchat_t *self)
{
    return self->row_count;
}

//  Dice coefficient of two sorted sets
static double
s_dice (const uint64_t *a, int a_count, const uint64_t *b, int b_count)
{
    if (a_count + b_count == 0)
        return 0;
    int common = 0;
    for (int i = 0, j = 0; i < a_count && j < b_count; )
        if (a [i] == b [j])
            common++, i++, j++;
        else
        if (a [i] < b [j])
            i++;
        else
            j++;
    return 2.0 * common / (a_count + b_count);
}

const char *
kf_chitchat_match (const kf_chitchat_t *self, const char *normal, double *score)
{
    if (score)
        *score = 0;
    if (!self || !normal || !*normal)
        return NULL;
    for (int i = 0; i < self->phrasing_count; i++)
        if (strcmp (self->phrasings [i].normal, normal) == 0) {
            if (score)
                *score = 1;
            return self->replies [self->phrasings [i].row];
        }
    uint64_t bigrams [S_MAX_BIGRAMS];
    int count = s_bigrams (normal, bigrams);
    double best = 0;
    int best_row = -1;
    for (int i = 0; i < self->phrasing_count; i++) {
        double dice = s_dice (bigrams, count, self->phrasings [i].bigrams,
                              self->phrasings [i].bigram_count);
        if (dice > best)
            best = dice, best_row = self->phrasings [i].row;
    }
    if (score)
        *score = best;
    return best >= KF_CHITCHAT_NEAR && best_row >= 0 ? self->replies [best_row] : NULL;
}
