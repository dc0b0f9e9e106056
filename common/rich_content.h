/*  rich_content.h - rich answers and label variants, shared by the broker (which checks them on
    write and serves them from its answer cache) and the workers (which answer with them).
    A rich answer is a response_type (text, style_text, image_text, template_card, form_show) and a
    response_content map whose shape the type fixes; PROTOCOL.md section 12.4 documents each shape.
    A variant is an answer for askers whose labels include all of the variant's labels. */
#ifndef KF_RICH_CONTENT_H
#define KF_RICH_CONTENT_H
#include <msgpack.h>
#include <stdbool.h>
#include "common/wire.h"

//  True for one of the five response types.
bool kf_rich_type_is_known (const char *type, size_t len);

//  Checks `type` (a str or NULL for text) and `content` (NULL or nil for none) of the answer
//  named `where` ("item", "variants[2]"). Text takes no content; every other type requires it in
//  its shape. Returns 0, or -1 with `err` set to a message naming the first wrong field.
int kf_rich_check (const msgpack_object *type, const msgpack_object *content, const char *where,
                   kf_error_t *err);

//  Checks a variants list (NULL or nil: none): at most 20 maps with labels (1-10 string pairs),
//  answer (1-10000 characters) and an optional rich answer. Returns 0 or -1 with `err` set.
int kf_variants_check (const msgpack_object *variants, kf_error_t *err);

//  One label a variant requires; strings owned by whoever built the variant.
typedef struct {
    char *key;
    char *value;
} kf_label_t;

//  One answer with the labels it applies to (none for the default answer).
typedef struct {
    kf_label_t *labels;
    int label_count;
    char *answer;
    char *response_type;        //  "text" when plain
    char *content;              //  response_content as msgpack bytes, NULL for none
    size_t content_size;
} kf_variant_t;

//  Fills `variant` with copies from a map {labels?, answer|reply, response_type?,
//  response_content?} (already checked). Free with kf_variant_free.
void kf_variant_from_msgpack (kf_variant_t *variant, const msgpack_object *map);

//  Fills `variant` from stored JSON: labels and content as JSON text (either may be NULL).
void kf_variant_from_json (kf_variant_t *variant, const char *labels_json, const char *answer,
                           const char *response_type, const char *content_json);

//  Frees the strings of a variant.
void kf_variant_free (kf_variant_t *variant);

//  Picks the answer for an asker with `labels` (a string map, or NULL): among variants[1..count)
//  whose labels all match, the one with most labels (the earliest on ties); else variants[0], the
//  default. Returns the index.
int kf_variant_pick (const kf_variant_t *variants, int count, const msgpack_object *labels);

//  Packs response_content of a variant (nil when it has none).
void kf_variant_pack_content (const kf_variant_t *variant, msgpack_packer *pk);
#endif
