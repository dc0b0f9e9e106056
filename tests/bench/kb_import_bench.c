/*  kb_import_bench.c - import speed: sends knowledge items to a running broker's kb.item.create in
    batches, one request in flight, as kefuctl kb import does, and reports items per second.
    kb_import_bench [--requests ENDPOINT] [--bot BOT] [--batch N] [--items N] [--seed S]
                    [ITEMS.jsonl]
    Without a file it generates the items (kb_gen.h, default 100,000). The requests are packed
    before the clock starts, so the time is the broker's: checking, writing and committing. */
#include "tests/bench/kb_gen.h"
#include "tests/bench/kb_jsonl.h"
#include "common/kefu_client.h"
#include "common/log.h"
#include "common/mpack.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  The requests: packed params of up to `batch` items each
typedef struct {
    const char *bot_id;
    int batch;
    msgpack_sbuffer items;      //  The items of the batch being packed, one after another
    msgpack_packer items_pk;
    int in_batch;
    msgpack_sbuffer *requests;
    int *sizes;                 //  Items per request
    int count, capacity;
    long total;
} s_requests_t;

//  Closes the batch being packed into a request
static void
s_flush (s_requests_t *self)
{
    if (self->in_batch == 0)
        return;
    if (self->count == self->capacity) {
        self->capacity = self->capacity ? self->capacity * 2 : 256;
        self->requests = kf_realloc (self->requests, self->capacity * sizeof (msgpack_sbuffer));
        self->sizes = kf_realloc (self->sizes, self->capacity * sizeof (int));
    }
    msgpack_sbuffer *params = &self->requests [self->count];
    msgpack_sbuffer_init (params);
    msgpack_packer pk;
    msgpack_packer_init (&pk, params, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_str (&pk, "bot_id", self->bot_id);
    kf_mp_pack_cstr (&pk, "items");
    msgpack_pack_array (&pk, self->in_batch);
    msgpack_sbuffer_write (params, self->items.data, self->items.size);
    self->sizes [self->count++] = self->in_batch;
    msgpack_sbuffer_clear (&self->items);
    self->in_batch = 0;
}

//  Adds an item line as it is (its keys are item fields)
static void
s_add_line (void *arg, const msgpack_object *obj)
{
    s_requests_t *self = arg;
    msgpack_pack_object (&self->items_pk, *obj);
    self->total++;
    if (++self->in_batch == self->batch)
        s_flush (self);
}

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
s_compare_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

int
main (int argc, char *argv [])
{
    const char *endpoint = "ipc:///tmp/kbbench-req", *path = NULL;
    s_requests_t requests = { .bot_id = "bench", .batch = 500 };
    int item_count = 100000;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--requests") == 0 && i + 1 < argc)
            endpoint = argv [++i];
        else
        if (strcmp (argv [i], "--bot") == 0 && i + 1 < argc)
            requests.bot_id = argv [++i];
        else
        if (strcmp (argv [i], "--batch") == 0 && i + 1 < argc)
            requests.batch = atoi (argv [++i]);
        else
        if (strcmp (argv [i], "--items") == 0 && i + 1 < argc)
            item_count = atoi (argv [++i]);
        else
        if (strcmp (argv [i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull (argv [++i], NULL, 10);
        else
        if (argv [i][0] != '-' && !path)
            path = argv [i];
        else {
            fprintf (stderr, "usage: kb_import_bench [--requests ENDPOINT] [--bot BOT] [--batch N]"
                     " [--items N] [--seed S] [ITEMS.jsonl]\n");
            return 2;
        }
    }
    if (requests.batch < 1 || requests.batch > 500) {
        fprintf (stderr, "kb_import_bench: --batch must be 1 to 500\n");
        return 2;
    }
    FILE *file = path ? fopen (path, "r") : tmpfile ();
    if (!file || (!path && kf_kb_gen_items (file, item_count, seed) != 0)) {
        fprintf (stderr, "kb_import_bench: no items\n");
        return 1;
    }
    rewind (file);
    msgpack_sbuffer_init (&requests.items);
    msgpack_packer_init (&requests.items_pk, &requests.items, msgpack_sbuffer_write);
    kf_jsonl_each_file (file, s_add_line, &requests);
    s_flush (&requests);
    fclose (file);

    kf_client_t *client = kf_client_new (endpoint, NULL);
    if (!client) {
        fprintf (stderr, "kb_import_bench: bad endpoint %s\n", endpoint);
        return 1;
    }
    kf_client_set_timeout (client, 60000);
    double *latency = kf_calloc (requests.count ? requests.count : 1, sizeof (double));
    long created = 0, updated = 0, rejected = 0;
    double start = s_now ();
    for (int r = 0; r < requests.count; r++) {
        kf_reply_t *reply;
        double t0 = s_now ();
        if (kf_client_call (client, "kb.item.create", requests.requests [r].data,
                            requests.requests [r].size, &reply)) {
            fprintf (stderr, "kb_import_bench: no reply to request %d (is the broker at %s?)\n",
                     r, endpoint);
            return 1;
        }
        latency [r] = (s_now () - t0) * 1000;
        if (!reply->ok) {
            fprintf (stderr, "kb_import_bench: request %d failed: %s\n", r, reply->error.message);
            return 1;
        }
        long c = kf_mp_get_int (reply->result, "created", 0);
        long u = kf_mp_get_int (reply->result, "updated", 0);
        created += c;
        updated += u;
        rejected += requests.sizes [r] - c - u;
        kf_reply_destroy (&reply);
    }
    double elapsed = s_now () - start;
    qsort (latency, requests.count, sizeof (double), s_compare_double);
    printf ("kb_import_bench: %ld items in %d requests of up to %d to bot %s: %.2f s,"
            " %.0f items/s\n", requests.total, requests.count, requests.batch, requests.bot_id, elapsed,
            requests.total / elapsed);
    printf ("created %ld, updated %ld, rejected %ld; a request p50 %.1f ms, p99 %.1f ms,"
            " max %.1f ms\n", created, updated, rejected, latency [requests.count / 2],
            latency [requests.count * 99 / 100], latency [requests.count - 1]);
    for (int r = 0; r < requests.count; r++)
        msgpack_sbuffer_destroy (&requests.requests [r]);
    free (requests.requests);
    free (requests.sizes);
    free (latency);
    msgpack_sbuffer_destroy (&requests.items);
    kf_client_destroy (&client);
    return rejected > 0;
}
