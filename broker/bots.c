/*  bots.c - bot profiles, input definitions, handoff thresholds and answer settings: SQLite rows
    of JSON, cached as msgpack (thresholds and settings as numbers). */
#include "broker/bots.h"
#include "common/clock.h"
#include "common/dict.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CACHE_MAX 10000       //  Bots (and known absences) kept in memory

static const char *s_text_fields [] = { "name", "avatar_url", "description", "welcome", NULL };
static const size_t s_text_limits [] = { 32, 1024, 500, 500 };
static const char *s_switches [] = { "suggestions", "satisfaction_survey", "predictive_input", NULL };
static const char *s_types [] = { "text", "number", "select", "boolean", NULL };

typedef struct {
    bool exists;                //  False: a known absence
    msgpack_unpacked profile;   //  Map
    msgpack_unpacked parameters;    //  Array
    kf_handoff_limits_t handoff;    //  Thresholds, defaults filled in
    kf_answer_settings_t answer;    //  Settings, defaults filled in
    int64_t updated_at;
} s_bot_t;

struct _kf_bots_t {
    kf_store_t *store;          //  Borrowed
    sqlite3_stmt *load, *save;
    kf_dict_t *cache;           //  bot_id -> s_bot_t
};

kf_bots_t *
kf_bots_new (kf_store_t *store)
{
    kf_bots_t *self = kf_calloc (1, sizeof *self);
    self->store = store;
    self->cache = kf_dict_new ();
    sqlite3 *db = kf_store_db (store);
    if (sqlite3_prepare_v2 (db, "SELECT profile, parameters, updated_at, handoff, answer FROM bots"
                            " WHERE bot_id = ?", -1, &self->load, NULL) != SQLITE_OK
    ||  sqlite3_prepare_v2 (db, "INSERT INTO bots (bot_id, profile, parameters, updated_at, handoff,"
                            " answer) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (bot_id) DO UPDATE"
                            " SET profile = ?2, parameters = ?3, updated_at = ?4, handoff = ?5,"
                            " answer = ?6", -1, &self->save, NULL) != SQLITE_OK) {
        kf_error ("bots: prepare failed: %s", sqlite3_errmsg (db));
        kf_bots_destroy (&self);
    }
    return self;
}

static void
s_bot_free (s_bot_t *bot)
{
    msgpack_unpacked_destroy (&bot->profile);
    msgpack_unpacked_destroy (&bot->parameters);
    free (bot);
}

void
kf_bots_destroy (kf_bots_t **self_p)
{
    kf_bots_t *self = *self_p;
    if (!self)
        return;
    size_t cursor = 0;
    void *value;
    while (kf_dict_next (self->cache, &cursor, NULL, &value))
        s_bot_free (value);
    kf_dict_destroy (&self->cache);
    sqlite3_finalize (self->load);
    sqlite3_finalize (self->save);
    free (self);
    *self_p = NULL;
}

#define S_HANDOFF_DEFAULTS \
    { KF_HANDOFF_FAILED_ATTEMPTS, KF_HANDOFF_EMOTION_BELOW, KF_HANDOFF_REPEATED_QUESTION }
static const kf_handoff_limits_t s_handoff_defaults = S_HANDOFF_DEFAULTS;

//  Thresholds from a map (stored JSON or an update): the values it has (numbers in range) replace
//  those of `limits`
static void
s_handoff_apply (kf_handoff_limits_t *limits, const msgpack_object *map)
{
    int64_t value;
    if (kf_mp_int (kf_mp_get (map, "failed_attempts"), &value) && value >= 0 && value <= 100)
        limits->failed_attempts = value;
    double below = kf_mp_get_double (map, "emotion_below", -1);
    if (below >= 0 && below <= 1)
        limits->emotion_below = below;
    if (kf_mp_int (kf_mp_get (map, "repeated_question"), &value) && value >= 0 && value <= 100
    &&  value != 1)
        limits->repeated_question = value;
}

#define S_ANSWER_DEFAULTS { KF_ANSWER_TARGET_PRECISION, KF_ANSWER_SUGGESTIONS }
static const kf_answer_settings_t s_answer_defaults = S_ANSWER_DEFAULTS;

//  Settings from a map (stored JSON or an update): the values it has (in range) replace those of
//  `settings`
static void
s_answer_apply (kf_answer_settings_t *settings, const msgpack_object *map)
{
    int64_t value;
    double target = kf_mp_get_double (map, "target_precision", -1);
    if (target >= 0.5 && target <= 0.99 + 1e-6)
        settings->target_precision = target;
    if (kf_mp_int (kf_mp_get (map, "suggestions"), &value) && value >= 0 && value <= 10)
        settings->suggestions = value;
}

//  The cached bot, loaded on a miss. NULL only on a database error.
static s_bot_t *
s_get (kf_bots_t *self, const char *bot_id, size_t len)
{
    s_bot_t *bot = kf_dict_get (self->cache, bot_id, len);
    if (bot)
        return bot;
    bot = kf_calloc (1, sizeof *bot);
    msgpack_unpacked_init (&bot->profile);
    msgpack_unpacked_init (&bot->parameters);
    bot->handoff = s_handoff_defaults;
    bot->answer = s_answer_defaults;
    sqlite3_bind_text (self->load, 1, bot_id, (int) len, SQLITE_TRANSIENT);
    int rc = sqlite3_step (self->load);
    if (rc == SQLITE_ROW) {
        bot->exists = kf_json_unpack ((const char *) sqlite3_column_text (self->load, 0), &bot->profile)
                   && kf_json_unpack ((const char *) sqlite3_column_text (self->load, 1), &bot->parameters);
        bot->updated_at = sqlite3_column_int64 (self->load, 2);
        msgpack_unpacked handoff;
        if (kf_json_unpack ((const char *) sqlite3_column_text (self->load, 3), &handoff)) {
            s_handoff_apply (&bot->handoff, &handoff.data);
            msgpack_unpacked_destroy (&handoff);
        }
        msgpack_unpacked answer;
        if (kf_json_unpack ((const char *) sqlite3_column_text (self->load, 4), &answer)) {
            s_answer_apply (&bot->answer, &answer.data);
            msgpack_unpacked_destroy (&answer);
        }
    }
    sqlite3_reset (self->load);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        s_bot_free (bot);
        return NULL;
    }
    if (!bot->exists && kf_dict_size (self->cache) >= S_CACHE_MAX) {
        //  Absences are cached too (chat checks inputs on every message, and a bot without a
        //  profile must not cost a query each time), but clients choose bot ids freely: past the
        //  bound an absence is answered without being remembered
        s_bot_free (bot);
        static s_bot_t absent = { .exists = false, .handoff = S_HANDOFF_DEFAULTS,
                                  .answer = S_ANSWER_DEFAULTS };
        return &absent;
    }
    kf_dict_put (self->cache, bot_id, len, bot);
    return bot;
}

int
kf_bots_pack_profile (kf_bots_t *self, const char *bot_id, size_t len, int extra, msgpack_packer *pk)
{
    s_bot_t *bot = s_get (self, bot_id, len);
    if (!bot || !bot->exists)
        return bot ? 0 : -1;
    const msgpack_object *profile = &bot->profile.data;
    msgpack_pack_map (pk, 10 + extra);
    kf_mp_pack_cstr (pk, "bot_id");
    kf_mp_pack_str (pk, bot_id, len);
    for (int i = 0; s_text_fields [i]; i++) {
        const msgpack_object *value = kf_mp_get (profile, s_text_fields [i]);
        kf_mp_pack_cstr (pk, s_text_fields [i]);
        if (value)
            msgpack_pack_object (pk, *value);
        else
            kf_mp_pack_cstr (pk, "");
    }
    const msgpack_object *questions = kf_mp_get (profile, "common_questions");
    kf_mp_pack_cstr (pk, "common_questions");
    if (questions)
        msgpack_pack_object (pk, *questions);
    else
        msgpack_pack_array (pk, 0);
    const msgpack_object *switches = kf_mp_get (profile, "switches");
    kf_mp_pack_cstr (pk, "switches");
    msgpack_pack_map (pk, 3);
    for (int i = 0; s_switches [i]; i++)
        kf_mp_pack_kv_bool (pk, s_switches [i], kf_mp_get_bool (switches, s_switches [i], true));
    kf_mp_pack_cstr (pk, "handoff");
    kf_handoff_limits_pack (&bot->handoff, pk);
    kf_mp_pack_cstr (pk, "answer");
    kf_answer_settings_pack (&bot->answer, pk);
    kf_mp_pack_kv_int (pk, "updated_at", bot->updated_at);
    return 1;
}

void
kf_answer_settings_pack (const kf_answer_settings_t *settings, msgpack_packer *pk)
{
    msgpack_pack_map (pk, 2);
    kf_mp_pack_kv_double (pk, "target_precision", settings->target_precision);
    kf_mp_pack_kv_int (pk, "suggestions", settings->suggestions);
}

void
kf_bots_answer (kf_bots_t *self, const char *bot_id, size_t len, kf_answer_settings_t *settings)
{
    s_bot_t *bot = s_get (self, bot_id, len);
    *settings = bot ? bot->answer : s_answer_defaults;
}

//  Checks params.answer: a map of known settings, each in its range (nil: keep)
static int
s_check_answer (const msgpack_object *answer, kf_error_t *err)
{
    if (!answer || answer->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (answer->type != MSGPACK_OBJECT_MAP)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.answer must be a map");
    for (uint32_t i = 0; i < answer->via.map.size; i++) {
        const msgpack_object *key = &answer->via.map.ptr [i].key;
        const msgpack_object *value = &answer->via.map.ptr [i].val;
        int64_t n;
        //  An unknown key is refused even with nil: it is a mistake, not "keep"
        if (!kf_mp_str_eq_key (key, "target_precision") && !kf_mp_str_eq_key (key, "suggestions"))
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.answer holds target_precision and"
                                 " suggestions only");
        if (value->type == MSGPACK_OBJECT_NIL)
            continue;
        if (kf_mp_str_eq_key (key, "target_precision")) {
            double target = value->type == MSGPACK_OBJECT_FLOAT32 || value->type == MSGPACK_OBJECT_FLOAT64
                          ? value->via.f64 : -1;
            //  (a float32 0.99 is 0.9900000095)
            if (!(target >= 0.5 && target <= 0.99 + 1e-6))
                return kf_error_set (err, KF_E_INVALID_PARAM, "params.answer.target_precision must"
                                     " be a number between 0.5 and 0.99");
        }
        else
        if (!kf_mp_int (value, &n) || n < 0 || n > 10)
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.answer.suggestions must be an"
                                 " integer between 0 and 10");
    }
    return 0;
}

void
kf_handoff_limits_pack (const kf_handoff_limits_t *limits, msgpack_packer *pk)
{
    msgpack_pack_map (pk, 3);
    kf_mp_pack_kv_int (pk, "failed_attempts", limits->failed_attempts);
    kf_mp_pack_kv_double (pk, "emotion_below", limits->emotion_below);
    kf_mp_pack_kv_int (pk, "repeated_question", limits->repeated_question);
}

void
kf_bots_handoff (kf_bots_t *self, const char *bot_id, size_t len, kf_handoff_limits_t *limits)
{
    s_bot_t *bot = s_get (self, bot_id, len);
    *limits = bot ? bot->handoff : s_handoff_defaults;
}

//  Checks params.handoff: a map of known thresholds, each a number in its range (nil: keep)
static int
s_check_handoff (const msgpack_object *handoff, kf_error_t *err)
{
    if (!handoff || handoff->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (handoff->type != MSGPACK_OBJECT_MAP)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.handoff must be a map");
    for (uint32_t i = 0; i < handoff->via.map.size; i++) {
        const msgpack_object *key = &handoff->via.map.ptr [i].key;
        const msgpack_object *value = &handoff->via.map.ptr [i].val;
        int64_t n;
        if (value->type == MSGPACK_OBJECT_NIL)
            continue;
        if (kf_mp_str_eq_key (key, "failed_attempts")) {
            if (!kf_mp_int (value, &n) || n < 0 || n > 100)
                return kf_error_set (err, KF_E_INVALID_PARAM, "params.handoff.failed_attempts must"
                                     " be an integer between 0 and 100 (0: never)");
        }
        else
        if (kf_mp_str_eq_key (key, "emotion_below")) {
            double below = value->type == MSGPACK_OBJECT_FLOAT32 || value->type == MSGPACK_OBJECT_FLOAT64
                         ? value->via.f64 : kf_mp_int (value, &n) ? (double) n : -1;
            if (below < 0 || below > 1)
                return kf_error_set (err, KF_E_INVALID_PARAM, "params.handoff.emotion_below must"
                                     " be a number between 0 and 1 (0: never)");
        }
        else
        if (kf_mp_str_eq_key (key, "repeated_question")) {
            if (!kf_mp_int (value, &n) || n < 0 || n > 100 || n == 1)
                return kf_error_set (err, KF_E_INVALID_PARAM, "params.handoff.repeated_question"
                                     " must be 0 (never) or an integer between 2 and 100");
        }
        else
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.handoff holds failed_attempts,"
                                 " emotion_below and repeated_question only");
    }
    return 0;
}

int
kf_bots_pack_parameters (kf_bots_t *self, const char *bot_id, size_t len, msgpack_packer *pk)
{
    s_bot_t *bot = s_get (self, bot_id, len);
    if (!bot || !bot->exists)
        return bot ? 0 : -1;
    const msgpack_object *list = &bot->parameters.data;
    msgpack_pack_map (pk, 3);
    kf_mp_pack_cstr (pk, "data");
    msgpack_pack_object (pk, *list);
    kf_mp_pack_kv_bool (pk, "has_more", false);
    kf_mp_pack_kv_int (pk, "total", list->type == MSGPACK_OBJECT_ARRAY ? list->via.array.size : 0);
    return 1;
}

static bool
s_is_one_of (const char *s, size_t len, const char *const *names)
{
    for (int i = 0; names [i]; i++)
        if (strlen (names [i]) == len && memcmp (names [i], s, len) == 0)
            return true;
    return false;
}

//  Checks one input definition (see PROTOCOL.md 4.15)
static int
s_check_definition (const msgpack_object *def, uint32_t index, kf_error_t *err)
{
    const char *name, *label, *type;
    size_t name_len, label_len, type_len;
    bool is_required;
    int64_t max_length;
    if (!def || def->type != MSGPACK_OBJECT_MAP)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.parameters[%u] must be a map", index);
    if (kf_param_str (def, "name", true, 32, &name, &name_len, err)
    ||  kf_param_str (def, "label", false, 32, &label, &label_len, err)
    ||  kf_param_str (def, "type", true, 16, &type, &type_len, err)
    ||  kf_param_bool (def, "required", false, &is_required, err)
    ||  kf_param_int (def, "max_length", 1, 1000, 256, &max_length, err))
        return -1;
    for (size_t i = 0; i < name_len; i++)
        if (!((name [i] >= 'a' && name [i] <= 'z') || (name [i] >= '0' && name [i] <= '9') || name [i] == '_'))
            return kf_error_set (err, KF_E_INVALID_PARAM,
                                 "params.parameters[%u].name may hold only a-z, 0-9 and _", index);
    if (!s_is_one_of (type, type_len, s_types))
        return kf_error_set (err, KF_E_INVALID_PARAM,
                             "params.parameters[%u].type must be text, number, select or boolean", index);
    const msgpack_object *options = kf_mp_get (def, "options");
    bool is_select = type_len == 6 && memcmp (type, "select", 6) == 0;
    if (is_select && (!options || options->type != MSGPACK_OBJECT_ARRAY || options->via.array.size == 0
                      || options->via.array.size > 50))
        return kf_error_set (err, KF_E_INVALID_PARAM,
                             "params.parameters[%u].options must list 1 to 50 choices", index);
    for (uint32_t i = 0; is_select && i < options->via.array.size; i++) {
        const msgpack_object *option = &options->via.array.ptr [i];
        if (option->type != MSGPACK_OBJECT_STR || option->via.str.size == 0
        ||  !kf_utf8_is_valid (option->via.str.ptr, option->via.str.size)
        ||  kf_utf8_count (option->via.str.ptr, option->via.str.size) > 50)
            return kf_error_set (err, KF_E_INVALID_PARAM,
                                 "params.parameters[%u].options[%u] must be a string of 1 to 50 characters",
                                 index, i);
    }
    return 0;
}

//  Checks one value against its definition
static int
s_check_value (const msgpack_object *def, const char *name, size_t name_len,
               const msgpack_object *value, kf_error_t *err)
{
    const char *type;
    size_t type_len;
    kf_mp_str (kf_mp_get (def, "type"), &type, &type_len);
    int64_t max_length = kf_mp_get_int (def, "max_length", 256);
    bool is_ok = true;
    if (type_len == 4 && memcmp (type, "text", 4) == 0)
        is_ok = value->type == MSGPACK_OBJECT_STR && kf_utf8_is_valid (value->via.str.ptr, value->via.str.size)
             && (int64_t) kf_utf8_count (value->via.str.ptr, value->via.str.size) <= max_length;
    else
    if (type_len == 6 && memcmp (type, "number", 6) == 0)
        is_ok = value->type == MSGPACK_OBJECT_POSITIVE_INTEGER || value->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
             || value->type == MSGPACK_OBJECT_FLOAT32 || value->type == MSGPACK_OBJECT_FLOAT64;
    else
    if (type_len == 7 && memcmp (type, "boolean", 7) == 0)
        is_ok = value->type == MSGPACK_OBJECT_BOOLEAN;
    else {
        const msgpack_object *options = kf_mp_get (def, "options");
        is_ok = false;
        for (uint32_t i = 0; value->type == MSGPACK_OBJECT_STR && options && i < options->via.array.size; i++)
            is_ok |= options->via.array.ptr [i].via.str.size == value->via.str.size
                  && memcmp (options->via.array.ptr [i].via.str.ptr, value->via.str.ptr, value->via.str.size) == 0;
    }
    if (!is_ok)
        return kf_error_set (err, KF_E_INVALID_PARAM, "params.inputs.%.*s must be a %.*s%s", (int) name_len,
                             name, (int) type_len, type, type_len == 4 ? " within max_length" :
                             type_len == 6 && *type == 's' ? " option" : "");
    return 0;
}

int
kf_bots_check_inputs (kf_bots_t *self, const char *bot_id, size_t len, const msgpack_object *inputs,
                      kf_error_t *err)
{
    s_bot_t *bot = s_get (self, bot_id, len);
    if (!bot || !bot->exists)
        return 0;
    const msgpack_object *list = &bot->parameters.data;
    uint32_t count = list->type == MSGPACK_OBJECT_ARRAY ? list->via.array.size : 0;
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *def = &list->via.array.ptr [i];
        const char *name;
        size_t name_len;
        kf_mp_str (kf_mp_get (def, "name"), &name, &name_len);
        const msgpack_object *value = NULL;
        for (uint32_t j = 0; inputs && j < inputs->via.map.size; j++)
            if (inputs->via.map.ptr [j].key.type == MSGPACK_OBJECT_STR
            &&  inputs->via.map.ptr [j].key.via.str.size == name_len
            &&  memcmp (inputs->via.map.ptr [j].key.via.str.ptr, name, name_len) == 0)
                value = &inputs->via.map.ptr [j].val;
        if (!value || value->type == MSGPACK_OBJECT_NIL) {
            if (kf_mp_get_bool (def, "required", false))
                return kf_error_set (err, KF_E_MISSING_ARGUMENT, "params.inputs.%.*s is required",
                                     (int) name_len, name);
            continue;
        }
        if (s_check_value (def, name, name_len, value, err))
            return -1;
    }
    //  Names the bot does not define pass through untouched: integrations send context there
    return 0;
}

//  Validates the profile fields of an update that are present
static int
s_check_update (const msgpack_object *params, kf_error_t *err)
{
    const char *s;
    size_t len;
    for (int i = 0; s_text_fields [i]; i++)
        if (kf_param_str (params, s_text_fields [i], false, s_text_limits [i], &s, &len, err))
            return -1;
    const msgpack_object *questions = kf_mp_get (params, "common_questions");
    if (questions && questions->type != MSGPACK_OBJECT_NIL) {
        if (questions->type != MSGPACK_OBJECT_ARRAY || questions->via.array.size > 10)
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.common_questions must be a list of at most 10");
        for (uint32_t i = 0; i < questions->via.array.size; i++) {
            const msgpack_object *q = &questions->via.array.ptr [i];
            if (q->type != MSGPACK_OBJECT_STR || q->via.str.size == 0
            ||  !kf_utf8_is_valid (q->via.str.ptr, q->via.str.size)
            ||  kf_utf8_count (q->via.str.ptr, q->via.str.size) > 100)
                return kf_error_set (err, KF_E_INVALID_PARAM,
                                     "params.common_questions[%u] must be a string of 1 to 100 characters", i);
        }
    }
    const msgpack_object *switches = kf_mp_get (params, "switches");
    if (switches && switches->type != MSGPACK_OBJECT_NIL) {
        if (switches->type != MSGPACK_OBJECT_MAP)
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.switches must be a map");
        for (uint32_t i = 0; i < switches->via.map.size; i++) {
            const msgpack_object *key = &switches->via.map.ptr [i].key;
            if (key->type != MSGPACK_OBJECT_STR || !s_is_one_of (key->via.str.ptr, key->via.str.size, s_switches)
            ||  switches->via.map.ptr [i].val.type != MSGPACK_OBJECT_BOOLEAN)
                return kf_error_set (err, KF_E_INVALID_PARAM, "params.switches holds suggestions,"
                                     " satisfaction_survey and predictive_input, each a boolean");
        }
    }
    if (s_check_handoff (kf_mp_get (params, "handoff"), err)
    ||  s_check_answer (kf_mp_get (params, "answer"), err))
        return -1;
    const msgpack_object *list = kf_mp_get (params, "parameters");
    if (list && list->type != MSGPACK_OBJECT_NIL) {
        if (list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > 20)
            return kf_error_set (err, KF_E_INVALID_PARAM, "params.parameters must be a list of at most 20");
        for (uint32_t i = 0; i < list->via.array.size; i++) {
            if (s_check_definition (&list->via.array.ptr [i], i, err))
                return -1;
            for (uint32_t j = 0; j < i; j++) {
                const msgpack_object *a = kf_mp_get (&list->via.array.ptr [i], "name");
                const msgpack_object *b = kf_mp_get (&list->via.array.ptr [j], "name");
                if (a->via.str.size == b->via.str.size && memcmp (a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0)
                    return kf_error_set (err, KF_E_INVALID_PARAM, "params.parameters[%u].name repeats an"
                                         " earlier name", i);
            }
        }
    }
    return 0;
}

//  The update's value for `key` when given (not nil), else the stored one, else NULL
static const msgpack_object *
s_pick (const msgpack_object *params, const msgpack_object *current, const char *key)
{
    const msgpack_object *value = kf_mp_get (params, key);
    if (value && value->type != MSGPACK_OBJECT_NIL)
        return value;
    return kf_mp_get (current, key);
}

int
kf_bots_update (kf_bots_t *self, const char *bot_id, size_t len, const msgpack_object *params,
                kf_error_t *err)
{
    if (s_check_update (params, err))
        return -1;
    s_bot_t *bot = s_get (self, bot_id, len);
    if (!bot)
        return kf_error_set (err, KF_E_INTERNAL, "could not read the bot");
    const msgpack_object *current = bot->exists ? &bot->profile.data : NULL;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 6);
    for (int i = 0; s_text_fields [i]; i++) {
        const msgpack_object *value = s_pick (params, current, s_text_fields [i]);
        kf_mp_pack_cstr (&pk, s_text_fields [i]);
        if (value)
            msgpack_pack_object (&pk, *value);
        else
            kf_mp_pack_cstr (&pk, "");
    }
    const msgpack_object *questions = s_pick (params, current, "common_questions");
    kf_mp_pack_cstr (&pk, "common_questions");
    if (questions)
        msgpack_pack_object (&pk, *questions);
    else
        msgpack_pack_array (&pk, 0);
    kf_mp_pack_cstr (&pk, "switches");
    msgpack_pack_map (&pk, 3);
    for (int i = 0; s_switches [i]; i++) {
        bool fallback = kf_mp_get_bool (kf_mp_get (current, "switches"), s_switches [i], true);
        kf_mp_pack_kv_bool (&pk, s_switches [i], kf_mp_get_bool (kf_mp_get (params, "switches"),
                                                                 s_switches [i], fallback));
    }
    msgpack_unpacked profile;
    char *profile_json = NULL, *parameters_json = NULL;
    if (kf_mp_unpack_one (buffer.data, buffer.size, &profile)) {
        profile_json = kf_json_from_msgpack (&profile.data);
        msgpack_unpacked_destroy (&profile);
    }
    msgpack_sbuffer_destroy (&buffer);
    const msgpack_object *list = kf_mp_get (params, "parameters");
    if (!list || list->type == MSGPACK_OBJECT_NIL)
        list = bot->exists ? &bot->parameters.data : NULL;
    parameters_json = list ? kf_json_from_msgpack (list) : kf_strdup ("[]");
    kf_handoff_limits_t limits = bot->handoff;
    s_handoff_apply (&limits, kf_mp_get (params, "handoff"));
    char handoff_json [128];
    snprintf (handoff_json, sizeof handoff_json, "{\"failed_attempts\":%lld,\"emotion_below\":%.6g,"
              "\"repeated_question\":%lld}", (long long) limits.failed_attempts, limits.emotion_below,
              (long long) limits.repeated_question);
    sqlite3_bind_text (self->save, 1, bot_id, (int) len, SQLITE_TRANSIENT);
    sqlite3_bind_text (self->save, 2, profile_json ? profile_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text (self->save, 3, parameters_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (self->save, 4, kf_now_ms ());
    sqlite3_bind_text (self->save, 5, handoff_json, -1, SQLITE_TRANSIENT);
    kf_answer_settings_t settings = bot->answer;
    s_answer_apply (&settings, kf_mp_get (params, "answer"));
    char answer_json [96];
    snprintf (answer_json, sizeof answer_json, "{\"target_precision\":%.6g,\"suggestions\":%lld}",
              settings.target_precision, (long long) settings.suggestions);
    sqlite3_bind_text (self->save, 6, answer_json, -1, SQLITE_TRANSIENT);
    int rc = kf_store_write_step (self->store, self->save);
    free (profile_json);
    free (parameters_json);
    //  The next read loads what was written (the same connection sees its open batch)
    if (kf_dict_get (self->cache, bot_id, len) == bot) {
        kf_dict_remove (self->cache, bot_id, len);
        s_bot_free (bot);
    }
    return rc ? kf_error_set (err, KF_E_INTERNAL, "could not store the bot") : 0;
}
