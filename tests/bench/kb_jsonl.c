/*  kb_jsonl.c - knowledge items from JSONL files, for the retrieval test and the benches. */
#include "tests/bench/kb_jsonl.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long
kf_jsonl_each (const char *path, kf_jsonl_fn *fn, void *arg)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    long count = kf_jsonl_each_file (file, fn, arg);
    fclose (file);
    return count;
}

long
kf_jsonl_each_file (FILE *file, kf_jsonl_fn *fn, void *arg)
{
    char *line = NULL;
    size_t capacity = 0;
    ssize_t len;
    long count = 0;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    while ((len = getline (&line, &capacity, file)) > 0) {
        if (line [0] == '\n')
            continue;
        msgpack_sbuffer_clear (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        char err [128];
        msgpack_unpacked unpacked;
        if (kf_json_to_msgpack (line, len, &pk, err, sizeof err) != 0
        ||  !kf_mp_unpack_one (buffer.data, buffer.size, &unpacked)) {
            fprintf (stderr, "line %ld: not JSON: %s\n", count + 1, err);
            exit (1);
        }
        fn (arg, &unpacked.data);
        msgpack_unpacked_destroy (&unpacked);
        count++;
    }
    msgpack_sbuffer_destroy (&buffer);
    free (line);
    return count;
}

bool
kf_jsonl_item_on_shelf (const msgpack_object *obj)
{
    return kf_mp_get_int (obj, "status", 1) != 0;
}

//  A heap copy of the str under `key`, "" when missing
static char *
s_dup (const msgpack_object *obj, const char *key)
{
    char *s = kf_mp_dup_str (obj, key);
    return s ? s : kf_strdup ("");
}

//  Heap copies of the strs in the array under `key`; returns how many
static int
s_dup_array (const msgpack_object *obj, const char *key, char ***out)
{
    const msgpack_object *array = kf_mp_get (obj, key);
    int size = array && array->type == MSGPACK_OBJECT_ARRAY ? (int) array->via.array.size : 0;
    *out = kf_calloc (size ? size : 1, sizeof (char *));
    int count = 0;
    for (int i = 0; i < size; i++) {
        const char *s;
        size_t len;
        if (kf_mp_str (&array->via.array.ptr [i], &s, &len))
            (*out) [count++] = kf_strndup (s, len);
    }
    return count;
}

void
kf_jsonl_item (const msgpack_object *obj, int64_t id, const char *bot_id, kf_kb_item_t *item)
{
    *item = (kf_kb_item_t) {
        .id = id, .bot_id = kf_strdup (bot_id), .external_id = s_dup (obj, "external_id"),
        .category = s_dup (obj, "category"), .question = s_dup (obj, "question"),
        .answer = s_dup (obj, "answer")
    };
    item->similar_count = s_dup_array (obj, "similar_questions", &item->similar);
    item->keyword_count = s_dup_array (obj, "keywords", &item->keywords);
}
