/*  kb_suggest.c - standard questions sorted by (bot, normalized text) for prefix ranges, and a
    posting list per character and character pair for the questions that contain a keyword: a
    search walks the shortest list of the keyword's pairs and checks each candidate. */
#include "workers/kb_suggest.h"
#include "common/dict.h"
#include "common/log.h"
#include "common/text_norm.h"
#include "common/utf8.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    const kf_kb_item_t *item;
    char *text;                 //  Normalized standard question
} s_entry_t;

typedef struct {
    int *entries;               //  Ascending entry indexes
    int count, capacity;
} s_postings_t;

struct _kf_kb_suggest_t {
    s_entry_t *entries;
    int count;
    kf_dict_t *grams;           //  Bot id, NUL, one or two characters -> s_postings_t
    s_postings_t **lists;       //  Every posting list, to free them
    int list_count;
};

static int
s_entry_compare (const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    int rc = strcmp (x->item->bot_id, y->item->bot_id);
    return rc ? rc : strcmp (x->text, y->text);
}

static int
s_char_len (const char *s, size_t len)
{
    uint32_t cp;
    int n = kf_utf8_decode (s, len, &cp);
    return n > 0 ? n : 1;
}

//  The posting-list key of a gram in a bot: each bot has its own lists, so a search never walks
//  another bot's questions. Returns the key's length (0 when it does not fit).
static size_t
s_gram_key (char *key, size_t size, const char *bot_id, const char *gram, size_t len)
{
    size_t bot_len = strlen (bot_id);
    if (bot_len + 1 + len > size)
        return 0;
    memcpy (key, bot_id, bot_len + 1);
    memcpy (key + bot_len + 1, gram, len);
    return bot_len + 1 + len;
}

static s_postings_t *
s_find_list (kf_kb_suggest_t *self, const char *bot_id, const char *gram, size_t len)
{
    char key [320];
    size_t key_len = s_gram_key (key, sizeof key, bot_id, gram, len);
    return key_len ? kf_dict_get (self->grams, key, key_len) : NULL;
}

static void
s_post (kf_kb_suggest_t *self, const char *gram, size_t len, int entry)
{
    char key [320];
    size_t key_len = s_gram_key (key, sizeof key, self->entries [entry].item->bot_id, gram, len);
    if (!key_len)
        return;
    s_postings_t *list = kf_dict_get (self->grams, key, key_len);
    if (!list) {
        list = kf_calloc (1, sizeof *list);
        kf_dict_put (self->grams, key, key_len, list);
        self->lists = kf_realloc (self->lists, (self->list_count + 1) * sizeof (s_postings_t *));
        self->lists [self->list_count++] = list;
    }
    if (list->count && list->entries [list->count - 1] == entry)
        return;                 //  Once per question
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? list->capacity * 2 : 4;
        list->entries = kf_realloc (list->entries, list->capacity * sizeof (int));
    }
    list->entries [list->count++] = entry;
}

kf_kb_suggest_t *
kf_kb_suggest_new (kf_kb_index_t *index)
{
    kf_kb_suggest_t *self = kf_calloc (1, sizeof *self);
    self->grams = kf_dict_new ();
    size_t size = kf_kb_index_size (index);
    self->entries = kf_calloc (size ? size : 1, sizeof (s_entry_t));
    for (size_t i = 0; i < size; i++) {
        const kf_kb_item_t *item = kf_kb_index_item (index, i);
        self->entries [self->count++] = (s_entry_t) {
            item, kf_text_normalize (item->question, strlen (item->question))
        };
    }
    qsort (self->entries, self->count, sizeof (s_entry_t), s_entry_compare);
    for (int e = 0; e < self->count; e++) {
        const char *text = self->entries [e].text;
        size_t len = strlen (text);
        for (size_t at = 0; at < len; ) {
            int first = s_char_len (text + at, len - at);
            s_post (self, text + at, first, e);
            if (at + first < len)
                s_post (self, text + at, first + s_char_len (text + at + first, len - at - first), e);
            at += first;
        }
    }
    return self;
}

void
kf_kb_suggest_destroy (kf_kb_suggest_t **self_p)
{
    kf_kb_suggest_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->count; i++)
        free (self->entries [i].text);
    for (int i = 0; i < self->list_count; i++) {
        free (self->lists [i]->entries);
        free (self->lists [i]);
    }
    free (self->lists);
    free (self->entries);
    kf_dict_destroy (&self->grams);
    free (self);
    *self_p = NULL;
}

//  First entry at or after (bot, text) in the sorted entries
static int
s_lower_bound (kf_kb_suggest_t *self, const char *bot_id, const char *text)
{
    int low = 0, high = self->count;
    while (low < high) {
        int mid = (low + high) / 2;
        int rc = strcmp (self->entries [mid].item->bot_id, bot_id);
        if (rc == 0)
            rc = strcmp (self->entries [mid].text, text);
        if (rc < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

int
kf_kb_suggest_find (kf_kb_suggest_t *self, const char *bot_id, const char *keyword, size_t len,
                    const kf_kb_item_t **items, int max)
{
    char *key = kf_text_normalize (keyword, len);
    size_t key_len = strlen (key);
    int count = 0;
    if (key_len == 0 || max <= 0) {
        free (key);
        return 0;
    }
    //  Questions that start with the keyword: one range of the sorted entries
    for (int e = s_lower_bound (self, bot_id, key); e < self->count && count < max; e++) {
        const s_entry_t *entry = &self->entries [e];
        if (strcmp (entry->item->bot_id, bot_id) != 0 || strncmp (entry->text, key, key_len) != 0)
            break;
        items [count++] = entry->item;
    }
    //  Then questions that contain it: candidates from the keyword's rarest character pair
    s_postings_t *rarest = NULL;
    bool is_missing = false;
    for (size_t at = 0; at < key_len && !is_missing; ) {
        int first = s_char_len (key + at, key_len - at);
        size_t gram = (size_t) first;
        if (at + first < key_len)
            gram += (size_t) s_char_len (key + at + first, key_len - at - first);
        if (at + first >= key_len && at > 0)
            break;              //  The last character was covered by the pair before it
        s_postings_t *list = s_find_list (self, bot_id, key + at, gram);
        if (!list)
            is_missing = true;
        else
        if (!rarest || list->count < rarest->count)
            rarest = list;
        at += first;
    }
    for (int p = 0; rarest && !is_missing && p < rarest->count && count < max; p++) {
        const s_entry_t *entry = &self->entries [rarest->entries [p]];
        if (strcmp (entry->item->bot_id, bot_id) == 0 && strncmp (entry->text, key, key_len) != 0
        &&  strstr (entry->text, key))
            items [count++] = entry->item;
    }
    free (key);
    return count;
}
