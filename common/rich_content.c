/*  rich_content.c - shapes of rich answers, checked field by field from small tables, and the
    choice of an answer by the asker's labels. */
#include "common/rich_content.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include "common/utf8.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { S_TEXT, S_URL, S_COLOR, S_ACTION, S_LIST } s_kind_t;

typedef struct s_field_t s_field_t;
struct s_field_t {
    const char *name;
    s_kind_t kind;
    bool is_required;
    size_t max;                 //  Characters for strings, entries for lists
    const s_field_t *entry;     //  Fields of each list entry (a map)
    const char *const *actions; //  Allowed values of an action
};

static const char *const s_article_actions [] = { "url", "reply", NULL };
static const char *const s_row_actions [] = { "url", "reply", "transfer", NULL };

//  Table rows: a string of at most `max` characters, a URL, a color, an action, a list of maps
#define S_STR(n, req, m)    { .name = n, .kind = S_TEXT, .is_required = req, .max = m }
#define S_URL_(n)           { .name = n, .kind = S_URL }
#define S_COLOR_(n)         { .name = n, .kind = S_COLOR }
#define S_ACTION_(n, req, a) { .name = n, .kind = S_ACTION, .is_required = req, .actions = a }
#define S_LIST_(n, m, e)    { .name = n, .kind = S_LIST, .is_required = true, .max = m, .entry = e }
#define S_END               { .name = NULL }

static const s_field_t s_style_text [] = {
    S_STR ("text", true, 2000), S_COLOR_ ("color"), S_COLOR_ ("background"), S_URL_ ("icon"),
    S_URL_ ("link"), S_END
};
static const s_field_t s_article [] = {
    S_STR ("title", true, 128), S_STR ("description", false, 512), S_URL_ ("pic_url"),
    S_ACTION_ ("action", false, s_article_actions), S_URL_ ("link"), S_END
};
static const s_field_t s_image_text [] = { S_LIST_ ("articles", 8, s_article), S_END };
static const s_field_t s_row [] = {
    S_STR ("text", true, 128), S_ACTION_ ("action", true, s_row_actions),
    S_STR ("value", false, 2000), S_END
};
static const s_field_t s_template_card [] = {
    S_STR ("title", true, 128), S_STR ("description", false, 2000), S_LIST_ ("rows", 20, s_row),
    S_END
};
static const s_field_t s_param [] = { S_STR ("key", true, 64), S_STR ("value", true, 2000), S_END };
static const s_field_t s_form_show [] = {
    S_STR ("title", false, 128), S_LIST_ ("params", 50, s_param), S_END
};

static const struct {
    const char *name;
    const s_field_t *fields;    //  NULL: no content
} s_types [] = {
    { "text", NULL }, { "style_text", s_style_text }, { "image_text", s_image_text },
    { "template_card", s_template_card }, { "form_show", s_form_show }
};

static int
s_type_index (const char *type, size_t len)
{
    for (size_t i = 0; i < sizeof s_types / sizeof s_types [0]; i++)
        if (strlen (s_types [i].name) == len && memcmp (s_types [i].name, type, len) == 0)
            return (int) i;
    return -1;
}

bool
kf_rich_type_is_known (const char *type, size_t len)
{
    return s_type_index (type, len) >= 0;
}

static bool
s_is_url (const char *s, size_t len)
{
    return (len > 7 && memcmp (s, "http://", 7) == 0) || (len > 8 && memcmp (s, "https://", 8) == 0);
}

static bool
s_is_color (const char *s, size_t len)
{
    if ((len != 4 && len != 7) || s [0] != '#')
        return false;
    for (size_t i = 1; i < len; i++)
        if (!strchr ("0123456789abcdefABCDEF", s [i]))
            return false;
    return true;
}

static int s_check_map (const msgpack_object *map, const s_field_t *fields, const char *path,
                        kf_error_t *err);

//  Checks one field's value; `path` names it in messages
static int
s_check_field (const s_field_t *field, const msgpack_object *value, const char *path, kf_error_t *err)
{
    if (field->kind == S_LIST) {
        if (value->type != MSGPACK_OBJECT_ARRAY || value->via.array.size == 0)
            return kf_error_set (err, KF_E_INVALID_PARAM, "%s must be a non-empty list", path);
        if (value->via.array.size > field->max)
            return kf_error_set (err, KF_E_TOO_LARGE, "%s has more than %zu entries", path,
                                 field->max);
        for (uint32_t i = 0; i < value->via.array.size; i++) {
            char entry_path [256];
            snprintf (entry_path, sizeof entry_path, "%.200s[%u]", path, i);
            if (s_check_map (&value->via.array.ptr [i], field->entry, entry_path, err))
                return -1;
        }
        return 0;
    }
    if (value->type != MSGPACK_OBJECT_STR)
        return kf_error_set (err, KF_E_INVALID_PARAM, "%s must be a string", path);
    const char *s = value->via.str.ptr;
    size_t len = value->via.str.size;
    if (!kf_utf8_is_valid (s, len))
        return kf_error_set (err, KF_E_INVALID_UTF8, "%s is not valid UTF-8", path);
    switch (field->kind) {
        case S_URL:
            if (!s_is_url (s, len) || len > 2048)
                return kf_error_set (err, KF_E_INVALID_PARAM,
                                     "%s must be an http:// or https:// URL", path);
            return 0;
        case S_COLOR:
            if (!s_is_color (s, len))
                return kf_error_set (err, KF_E_INVALID_PARAM, "%s must be a color like #FF6600",
                                     path);
            return 0;
        case S_ACTION: {
            char allowed [64] = "";
            for (int i = 0; field->actions [i]; i++) {
                if (strlen (field->actions [i]) == len && memcmp (field->actions [i], s, len) == 0)
                    return 0;
                snprintf (allowed + strlen (allowed), sizeof allowed - strlen (allowed), "%s%s",
                          i ? ", " : "", field->actions [i]);
            }
            return kf_error_set (err, KF_E_INVALID_PARAM, "%s must be one of %s", path, allowed);
        }
        default:
            if (field->is_required && len == 0)
                return kf_error_set (err, KF_E_INVALID_PARAM, "%s must not be empty", path);
            if (kf_utf8_count (s, len) > field->max)
                return kf_error_set (err, KF_E_TOO_LARGE, "%s is longer than %zu characters",
                                     path, field->max);
            return 0;
    }
}

static int
s_check_map (const msgpack_object *map, const s_field_t *fields, const char *path, kf_error_t *err)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return kf_error_set (err, KF_E_INVALID_PARAM, "%s must be a map", path);
    for (const s_field_t *field = fields; field->name; field++) {
        const msgpack_object *value = kf_mp_get (map, field->name);
        char field_path [256];
        snprintf (field_path, sizeof field_path, "%.200s.%.32s", path, field->name);
        if (!value || value->type == MSGPACK_OBJECT_NIL) {
            if (field->is_required)
                return kf_error_set (err, KF_E_INVALID_PARAM, "%s is required", field_path);
            continue;
        }
        if (s_check_field (field, value, field_path, err))
            return -1;
    }
    //  Unknown keys are refused: a typo ("pic_ur1") must not pass for an image that never shows
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *key = &map->via.map.ptr [i].key;
        bool is_known = false;
        for (const s_field_t *field = fields; field->name && !is_known; field++)
            is_known = kf_mp_str_eq_key (key, field->name);
        if (!is_known)
            return kf_error_set (err, KF_E_INVALID_PARAM, "%s has an unknown field %.*s", path,
                                 key->type == MSGPACK_OBJECT_STR ? (int) key->via.str.size : 1,
                                 key->type == MSGPACK_OBJECT_STR ? key->via.str.ptr : "?");
    }
    return 0;
}

int
kf_rich_check (const msgpack_object *type, const msgpack_object *content, const char *where,
               kf_error_t *err)
{
    int index = 0;
    if (type && type->type != MSGPACK_OBJECT_NIL) {
        if (type->type != MSGPACK_OBJECT_STR
        ||  (index = s_type_index (type->via.str.ptr, type->via.str.size)) < 0)
            return kf_error_set (err, KF_E_INVALID_PARAM, "%s.response_type must be one of text,"
                                 " style_text, image_text, template_card, form_show", where);
    }
    bool has_content = content && content->type != MSGPACK_OBJECT_NIL;
    char path [64];
    snprintf (path, sizeof path, "%s.response_content", where);
    if (!s_types [index].fields)
        return has_content ? kf_error_set (err, KF_E_INVALID_PARAM, "%s must be absent for"
                                           " response_type text", path) : 0;
    if (!has_content)
        return kf_error_set (err, KF_E_INVALID_PARAM, "%s is required for response_type %s", path,
                             s_types [index].name);
    return s_check_map (content, s_types [index].fields, path, err);
}

int
kf_variants_check (const msgpack_object *variants, kf_error_t *err)
{
    if (!variants || variants->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (variants->type != MSGPACK_OBJECT_ARRAY)
        return kf_error_set (err, KF_E_INVALID_PARAM, "variants must be a list");
    if (variants->via.array.size > 20)
        return kf_error_set (err, KF_E_TOO_LARGE, "variants has more than 20 entries");
    for (uint32_t i = 0; i < variants->via.array.size; i++) {
        const msgpack_object *variant = &variants->via.array.ptr [i];
        char where [32];
        snprintf (where, sizeof where, "variants[%u]", i);
        if (variant->type != MSGPACK_OBJECT_MAP)
            return kf_error_set (err, KF_E_INVALID_PARAM, "%s must be a map", where);
        const msgpack_object *labels;
        const char *answer;
        size_t answer_len;
        if (kf_param_str_map (variant, "labels", 10, &labels, err)
        ||  kf_param_str (variant, "answer", true, 10000, &answer, &answer_len, err))
            return -1;
        if (!labels || labels->via.map.size == 0)
            return kf_error_set (err, KF_E_INVALID_PARAM, "%s.labels must name at least one label",
                                 where);
        for (uint32_t k = 0; k < labels->via.map.size; k++) {
            const msgpack_object *key = &labels->via.map.ptr [k].key, *value = &labels->via.map.ptr [k].val;
            if (key->via.str.size == 0)
                return kf_error_set (err, KF_E_INVALID_PARAM, "%s.labels has an empty name", where);
            if (kf_utf8_count (key->via.str.ptr, key->via.str.size) > 64
            ||  kf_utf8_count (value->via.str.ptr, value->via.str.size) > 256)
                return kf_error_set (err, KF_E_TOO_LARGE, "%s.labels: names hold at most 64"
                                     " characters, values 256", where);
        }
        if (answer_len == 0)
            return kf_error_set (err, KF_E_INVALID_PARAM, "%s.answer must not be empty", where);
        if (kf_rich_check (kf_mp_get (variant, "response_type"), kf_mp_get (variant,
                           "response_content"), where, err))
            return -1;
    }
    return 0;
}

//  --- Variants -------------------------------------------------------------------------------

static void
s_labels_from (kf_variant_t *variant, const msgpack_object *labels)
{
    if (!labels || labels->type != MSGPACK_OBJECT_MAP || labels->via.map.size == 0)
        return;
    variant->labels = kf_calloc (labels->via.map.size, sizeof (kf_label_t));
    for (uint32_t i = 0; i < labels->via.map.size; i++) {
        const msgpack_object *key = &labels->via.map.ptr [i].key, *value = &labels->via.map.ptr [i].val;
        if (key->type != MSGPACK_OBJECT_STR || value->type != MSGPACK_OBJECT_STR)
            continue;
        kf_label_t *label = &variant->labels [variant->label_count++];
        label->key = kf_strndup (key->via.str.ptr, key->via.str.size);
        label->value = kf_strndup (value->via.str.ptr, value->via.str.size);
    }
}

static void
s_content_from (kf_variant_t *variant, const msgpack_object *content)
{
    if (!content || content->type == MSGPACK_OBJECT_NIL)
        return;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_object (&pk, *content);
    variant->content = buffer.data;             //  Taken over from the buffer
    variant->content_size = buffer.size;
}

void
kf_variant_from_msgpack (kf_variant_t *variant, const msgpack_object *map)
{
    memset (variant, 0, sizeof *variant);
    s_labels_from (variant, kf_mp_get (map, "labels"));
    variant->answer = kf_mp_dup_str (map, "answer");
    if (!variant->answer)
        variant->answer = kf_mp_dup_str (map, "reply");
    if (!variant->answer)
        variant->answer = kf_strdup ("");
    variant->response_type = kf_mp_dup_str (map, "response_type");
    if (!variant->response_type)
        variant->response_type = kf_strdup ("text");
    s_content_from (variant, kf_mp_get (map, "response_content"));
}

//  Parses JSON text into msgpack and hands the object to `fn`
static void
s_with_json (const char *json, kf_variant_t *variant, void (*fn) (kf_variant_t *, const msgpack_object *))
{
    msgpack_unpacked unpacked;
    if (json && *json && kf_json_unpack (json, &unpacked)) {
        fn (variant, &unpacked.data);
        msgpack_unpacked_destroy (&unpacked);
    }
}

void
kf_variant_from_json (kf_variant_t *variant, const char *labels_json, const char *answer,
                      const char *response_type, const char *content_json)
{
    memset (variant, 0, sizeof *variant);
    variant->answer = kf_strdup (answer ? answer : "");
    variant->response_type = kf_strdup (response_type && *response_type ? response_type : "text");
    s_with_json (labels_json, variant, s_labels_from);
    s_with_json (content_json, variant, s_content_from);
}

void
kf_variant_free (kf_variant_t *variant)
{
    for (int i = 0; i < variant->label_count; i++) {
        free (variant->labels [i].key);
        free (variant->labels [i].value);
    }
    free (variant->labels);
    free (variant->answer);
    free (variant->response_type);
    free (variant->content);
    memset (variant, 0, sizeof *variant);
}

//  True when the asker has every label the variant names, with the same value
static bool
s_matches (const kf_variant_t *variant, const msgpack_object *labels)
{
    for (int i = 0; i < variant->label_count; i++) {
        const msgpack_object *value = kf_mp_get (labels, variant->labels [i].key);
        size_t len = strlen (variant->labels [i].value);
        if (!value || value->type != MSGPACK_OBJECT_STR || value->via.str.size != len
        ||  memcmp (value->via.str.ptr, variant->labels [i].value, len) != 0)
            return false;
    }
    return true;
}

int
kf_variant_pick (const kf_variant_t *variants, int count, const msgpack_object *labels)
{
    int best = 0;
    if (!labels || labels->type != MSGPACK_OBJECT_MAP || labels->via.map.size == 0)
        return best;
    for (int i = 1; i < count; i++)
        if (variants [i].label_count > (best ? variants [best].label_count : 0)
        &&  s_matches (&variants [i], labels))
            best = i;
    return best;
}

void
kf_variant_pack_content (const kf_variant_t *variant, msgpack_packer *pk)
{
    if (variant->content)
        pk->callback (pk->data, variant->content, variant->content_size);
    else
        msgpack_pack_nil (pk);
}
