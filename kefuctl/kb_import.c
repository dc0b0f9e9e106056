/*  kb_import.c - `kefuctl kb import FILE.jsonl`: streams a JSONL file to kb.item.create in batches of
    500, idempotent by external_id; a bad line is reported with its reason and never stops the rest. */
#include "kefuctl/kefuctl.h"
#include "common/json_codec.h"
#include "common/log.h"
#include "common/mpack.h"
#include <errno.h>
#include <zmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BATCH 500

typedef struct {
    kf_client_t *client;
    const char *bot_id;
    msgpack_sbuffer items;      //  Packed items of the batch being built
    int lines [S_BATCH];        //  File line of each item in the batch
    int count;
    int created, updated, rejected;
    bool is_broken;             //  The broker stopped answering
} s_import_t;

static void
s_flush (s_import_t *import)
{
    if (import->count == 0 || import->is_broken)
        return;
    msgpack_sbuffer params;
    msgpack_sbuffer_init (&params);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, import->bot_id ? 2 : 1);
    if (import->bot_id)
        kf_mp_pack_kv_str (&pk, "bot_id", import->bot_id);
    kf_mp_pack_cstr (&pk, "items");
    msgpack_pack_array (&pk, import->count);
    pk.callback (pk.data, import->items.data, import->items.size);
    kf_reply_t *reply = NULL;
    if (kf_client_call (import->client, "kb.item.create", params.data, params.size, &reply)) {
        fprintf (stderr, "kefuctl: no reply from the broker (%s)\n", zmq_strerror (errno));
        import->is_broken = true;
    }
    else
    if (!reply->ok) {
        fprintf (stderr, "kefuctl: batch rejected: %s\n", reply->error.message);
        import->rejected += import->count;
    }
    else {
        const msgpack_object *data = kf_mp_get (reply->result, "data");
        for (uint32_t i = 0; data && i < data->via.array.size && i < (uint32_t) import->count; i++) {
            const msgpack_object *entry = &data->via.array.ptr [i];
            if (kf_mp_str_eq (entry, "status", "created"))
                import->created++;
            else
            if (kf_mp_str_eq (entry, "status", "updated"))
                import->updated++;
            else {
                kf_error_t err;
                kf_error_unpack (kf_mp_get (entry, "error"), &err);
                fprintf (stderr, "line %d: rejected: %s\n", import->lines [i], err.message);
                import->rejected++;
            }
        }
    }
    kf_reply_destroy (&reply);
    msgpack_sbuffer_destroy (&params);
    msgpack_sbuffer_clear (&import->items);
    import->count = 0;
}

int
kefuctl_kb_import (kf_client_t *client, int argc, char **argv)
{
    if (argc < 1) {
        fprintf (stderr, "usage: kefuctl kb import FILE.jsonl [--bot ID]\n");
        return 2;
    }
    s_import_t import = { .client = client };
    if (argc >= 3 && strcmp (argv [1], "--bot") == 0)
        import.bot_id = argv [2];
    FILE *file = strcmp (argv [0], "-") == 0 ? stdin : fopen (argv [0], "r");
    if (!file) {
        fprintf (stderr, "kefuctl: cannot open %s: %s\n", argv [0], strerror (errno));
        return 2;
    }
    msgpack_sbuffer_init (&import.items);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &import.items, msgpack_sbuffer_write);
    char *line = NULL;
    size_t capacity = 0;
    ssize_t len;
    int number = 0;
    while ((len = getline (&line, &capacity, file)) != -1 && !import.is_broken) {
        number++;
        while (len > 0 && (line [len - 1] == '\n' || line [len - 1] == '\r'))
            line [--len] = 0;
        if (len == 0)
            continue;
        size_t before = import.items.size;
        char err [256];
        if (kf_json_to_msgpack (line, len, &pk, err, sizeof err)) {
            import.items.size = before;         //  Drop the partial value
            fprintf (stderr, "line %d: rejected: invalid JSON: %s\n", number, err);
            import.rejected++;
            continue;
        }
        import.lines [import.count++] = number;
        if (import.count == S_BATCH)
            s_flush (&import);
    }
    s_flush (&import);
    free (line);
    if (file != stdin)
        fclose (file);
    msgpack_sbuffer_destroy (&import.items);
    printf ("imported %s: %d created, %d updated, %d rejected\n", argv [0], import.created,
            import.updated, import.rejected);
    return import.is_broken ? 3 : import.rejected ? 1 : 0;
}
