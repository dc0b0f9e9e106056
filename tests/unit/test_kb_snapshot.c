/*  test_kb_snapshot.c - the knowledge-base snapshot (common/kb_snapshot.h) and the two ways a worker
    builds from it (workers/kb_source.h): on the sample knowledge base, with a synonym group, a
    disabled category and label variants, the index built from the database and the one built from
    the encoded snapshot hold the same items and give the same search results, and the bots' models
    the same intents; encoding is stable through a decode; truncated, corrupted or foreign bytes
    are rejected, never crash. */
#include "testutil.h"
#include "broker/kb_catalog.h"
#include "broker/kb_items.h"
#include "broker/store.h"
#include "common/kb_snapshot.h"
#include "common/log.h"
#include "common/mpack.h"
#include "workers/kb_source.h"
#include "../bench/kb_jsonl.h"
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    kf_kb_items_t *items;
    int count;
} s_import_t;

static void
s_put (void *arg, const msgpack_object *obj)
{
    s_import_t *import = arg;
    int64_t id;
    kf_error_t err;
    CHECK (kf_kb_items_put (import->items, "default", obj, false, &id, &err) > 0);
    import->count++;
}

//  A database holding the sample knowledge base, a synonym group, a variant and a disabled category
static void
s_make_database (const char *path, const char *source_dir)
{
    char err [256], sample [1024];
    kf_store_t *store = kf_store_open (path, false, err, sizeof err);
    CHECK (store);
    kf_kb_catalog_t *catalog = kf_kb_catalog_new (store);
    s_import_t import = { kf_kb_items_new (store, catalog), 0 };
    CHECK (import.items);
    snprintf (sample, sizeof sample, "%s/deploy/sample-kb.jsonl", source_dir);
    CHECK (kf_jsonl_each (sample, s_put, &import) > 100);
    sqlite3 *db = kf_store_db (store);
    CHECK_INT (sqlite3_exec (db, "INSERT INTO kb_synonyms (bot_id, words, updated_at)"
                             " VALUES ('default', '[\"退货\",\"退掉\",\"退回去\"]', 0);"
                             "INSERT INTO kb_variants (item_id, position, labels, answer)"
                             " SELECT id, 0, '{\"vip\":\"gold\"}', '金卡专属答案' FROM kb_items"
                             " ORDER BY id LIMIT 1;"
                             "UPDATE kb_categories SET enabled = 0 WHERE id = (SELECT category_id"
                             " FROM kb_items WHERE category_id IS NOT NULL ORDER BY id DESC LIMIT 1)",
                             NULL, NULL, NULL), SQLITE_OK);
    CHECK (kf_store_kb_bump_version (store) > 1);
    CHECK_INT (kf_store_flush (store), 0);
    kf_kb_items_destroy (&import.items);
    kf_kb_catalog_destroy (&catalog);
    kf_store_destroy (&store);
}

//  Same items, same search results for every question of every item
static void
s_check_same (kf_kb_index_t *a, kf_kb_index_t *b)
{
    CHECK (kf_kb_index_size (a) > 50);
    CHECK_INT (kf_kb_index_size (a), kf_kb_index_size (b));
    int searches = 0;
    for (size_t i = 0; i < kf_kb_index_size (a); i++) {
        const kf_kb_item_t *x = kf_kb_index_item (a, i), *y = kf_kb_index_item (b, i);
        CHECK_INT (x->id, y->id);
        CHECK_STR (x->question, y->question);
        CHECK_STR (x->category, y->category);
        CHECK_STR (x->answer, y->answer);
        CHECK_INT (x->similar_count, y->similar_count);
        CHECK_INT (x->keyword_count, y->keyword_count);
        CHECK_INT (x->answer_count, y->answer_count);
        for (int q = -1; q < x->similar_count; q++) {
            const char *query = q < 0 ? x->question : x->similar [q];
            kf_kb_hit_t hits_a [5], hits_b [5];
            int count = kf_kb_index_search (a, "default", query, strlen (query), hits_a, 5);
            CHECK_INT (kf_kb_index_search (b, "default", query, strlen (query), hits_b, 5), count);
            for (int h = 0; h < count; h++) {
                CHECK_INT (hits_a [h].item->id, hits_b [h].item->id);
                CHECK (hits_a [h].confidence == hits_b [h].confidence);
            }
            searches++;
        }
    }
    //  The synonym group is in both: a query with a synonym finds the same return item
    kf_kb_hit_t hit_a, hit_b;
    CHECK_INT (kf_kb_index_search (a, "default", "怎么退掉", 12, &hit_a, 1), 1);
    CHECK_INT (kf_kb_index_search (b, "default", "怎么退掉", 12, &hit_b, 1), 1);
    CHECK_INT (hit_a.item->id, hit_b.item->id);
    CHECK (searches > 300);
}

static void
s_check_same_models (kf_bot_models_t *a, kf_bot_models_t *b)
{
    kf_bot_model_t x, y;
    kf_bot_models_get (a, "default", &x);
    kf_bot_models_get (b, "default", &y);
    CHECK (x.intents && y.intents && x.chitchat && y.chitchat);
    CHECK_INT (kf_intent_model_count (x.intents), kf_intent_model_count (y.intents));
    CHECK_INT (kf_intent_model_features (x.intents), kf_intent_model_features (y.intents));
    for (int i = 0; i < kf_intent_model_count (x.intents); i++)
        CHECK_STR (kf_intent_model_name (x.intents, i), kf_intent_model_name (y.intents, i));
}

//  Truncations, bit flips, trailing bytes and a foreign format are all rejected or decode to a
//  well-formed snapshot; nothing crashes (the sanitizer build checks the memory)
static void
s_check_bad_input (const msgpack_sbuffer *good)
{
    char err [256];
    char *bytes = kf_malloc (good->size + 1);
    size_t step = good->size / 3000 + 1;
    for (size_t len = 0; len < good->size; len += len < 300 ? 1 : step)
        CHECK (kf_kb_snapshot_decode (good->data, len, err, sizeof err) == NULL);
    memcpy (bytes, good->data, good->size);
    bytes [good->size] = 0;
    CHECK (kf_kb_snapshot_decode (bytes, good->size + 1, err, sizeof err) == NULL);
    CHECK (strstr (err, "msgpack"));
    uint64_t state = 12345;
    int rejected = 0;
    for (int i = 0; i < 400; i++) {
        memcpy (bytes, good->data, good->size);
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t at = (state >> 33) % good->size;
        bytes [at] ^= (char) (1 << ((state >> 20) % 8));
        kf_kb_snapshot_t *snapshot = kf_kb_snapshot_decode (bytes, good->size, err, sizeof err);
        rejected += snapshot == NULL;
        //  A flip inside a string: still buildable. Every tenth is built (a build calibrates
        //  each bot, 2,000 searches: 400 builds took minutes under the sanitizers)
        if (snapshot && i % 10 == 0) {
            kf_bot_models_t *models;
            kf_kb_index_t *index = kf_kb_source_build (snapshot, &models);
            kf_kb_index_destroy (&index);
            kf_bot_models_destroy (&models);
        }
        kf_kb_snapshot_destroy (&snapshot);
    }
    CHECK (rejected > 0);
    free (bytes);
    //  Another format number
    msgpack_sbuffer other;
    msgpack_sbuffer_init (&other);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &other, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    kf_mp_pack_kv_int (&pk, "format", 2);
    kf_mp_pack_kv_int (&pk, "version", 3);
    CHECK (kf_kb_snapshot_decode (other.data, other.size, err, sizeof err) == NULL);
    msgpack_sbuffer_destroy (&other);
}

//  A table that claims many rows but holds nils costs memory in proportion to its bytes, not to
//  the rows it claims: decoded in a child whose address space may grow by 32 MB only, 300,000 nil
//  items (300 KB on the wire, 40 MB as rows) are rejected rather than the worker aborting out of
//  memory. Not under AddressSanitizer, which reserves terabytes of address space up front.
static void
s_check_allocation_bounded (void)
{
#if defined (__SANITIZE_ADDRESS__)
    printf ("allocation bound: skipped under AddressSanitizer\n");
#else
    msgpack_sbuffer bogus;
    msgpack_sbuffer_init (&bogus);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &bogus, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 7);
    kf_mp_pack_kv_int (&pk, "format", KF_KB_SNAPSHOT_FORMAT);
    kf_mp_pack_kv_int (&pk, "version", 3);
    const char *tables [] = { "categories", "synonyms", "items", "intents", "chitchat" };
    for (int t = 0; t < 5; t++) {
        kf_mp_pack_cstr (&pk, tables [t]);
        uint32_t rows = strcmp (tables [t], "items") == 0 ? 300000 : 0;
        msgpack_pack_array (&pk, rows);
        for (uint32_t i = 0; i < rows; i++)
            msgpack_pack_nil (&pk);
    }
    CHECK (bogus.size < 400000);
    pid_t child = fork ();
    CHECK (child >= 0);
    if (child == 0) {
        //  The address space in use now (first field of statm, in pages), plus 32 MB
        FILE *statm = fopen ("/proc/self/statm", "r");
        unsigned long pages = 0;
        if (!statm || fscanf (statm, "%lu", &pages) != 1)
            _exit (2);
        fclose (statm);
        rlim_t limit = (rlim_t) pages * (rlim_t) sysconf (_SC_PAGESIZE) + (32u << 20);
        struct rlimit rl = { limit, limit };
        if (setrlimit (RLIMIT_AS, &rl) != 0)
            _exit (2);
        char err [256];
        kf_kb_snapshot_t *snapshot = kf_kb_snapshot_decode (bogus.data, bogus.size, err, sizeof err);
        _exit (snapshot == NULL && strstr (err, "11 fields") ? 0 : 3);
    }
    int status = 0;
    CHECK (waitpid (child, &status, 0) == child);
    CHECK (WIFEXITED (status));
    CHECK_INT (WEXITSTATUS (status), 0);
    msgpack_sbuffer_destroy (&bogus);
#endif
}

int
main (int argc, char *argv [])
{
    const char *source_dir = argc > 1 ? argv [1] : ".";
    kf_log_set_level (KF_LOG_WARN);
    char dir [] = "/tmp/kefu-kb-snapshot-XXXXXX", path [256];
    CHECK (mkdtemp (dir));
    snprintf (path, sizeof path, "%s/kefu.db", dir);
    s_make_database (path, source_dir);

    //  The database path, as a worker with --db builds it
    kf_kb_source_t *sql = kf_kb_source_new (path);
    int64_t sql_version = 0;
    kf_bot_models_t *sql_models;
    kf_kb_index_t *sql_index = kf_kb_source_poll (sql, &sql_version, &sql_models);
    CHECK (sql_index && sql_models && sql_version > 1);

    //  The snapshot the broker's thread reads and encodes, decoded and built by a remote worker
    sqlite3 *db;
    char err [256];
    CHECK_INT (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    kf_kb_snapshot_t *snapshot = kf_kb_snapshot_read (db, err, sizeof err);
    CHECK (snapshot);
    CHECK_INT (snapshot->version, sql_version);
    CHECK (snapshot->synonym_count == 1 && snapshot->intent_count > 0 && snapshot->chitchat_count > 0);
    msgpack_sbuffer encoded;
    msgpack_sbuffer_init (&encoded);
    kf_kb_snapshot_encode (snapshot, &encoded);
    kf_kb_source_t *remote = kf_kb_source_new (NULL);
    int64_t remote_version = 0;
    kf_bot_models_t *remote_models, *none;
    CHECK (kf_kb_source_poll (remote, &remote_version, &none) == NULL && none == NULL);
    kf_kb_index_t *remote_index = kf_kb_source_load (remote, encoded.data, encoded.size,
                                                     &remote_version, &remote_models);
    CHECK (remote_index && remote_models);
    CHECK_INT (remote_version, sql_version);
    s_check_same (sql_index, remote_index);
    s_check_same_models (sql_models, remote_models);
    //  A variant survived the trip with its labels
    bool has_variant = false;
    for (size_t i = 0; i < kf_kb_index_size (remote_index); i++)
        has_variant |= kf_kb_index_item (remote_index, i)->answer_count == 2;
    CHECK (has_variant);

    //  Encoding what was decoded gives the same bytes
    kf_kb_snapshot_t *decoded = kf_kb_snapshot_decode (encoded.data, encoded.size, err, sizeof err);
    CHECK (decoded);
    msgpack_sbuffer again;
    msgpack_sbuffer_init (&again);
    kf_kb_snapshot_encode (decoded, &again);
    CHECK_INT (again.size, encoded.size);
    CHECK (memcmp (again.data, encoded.data, encoded.size) == 0);
    s_check_bad_input (&encoded);
    s_check_allocation_bounded ();

    msgpack_sbuffer_destroy (&again);
    msgpack_sbuffer_destroy (&encoded);
    kf_kb_snapshot_destroy (&decoded);
    kf_kb_snapshot_destroy (&snapshot);
    kf_kb_index_destroy (&sql_index);
    kf_kb_index_destroy (&remote_index);
    kf_bot_models_destroy (&sql_models);
    kf_bot_models_destroy (&remote_models);
    kf_kb_source_destroy (&sql);
    kf_kb_source_destroy (&remote);
    sqlite3_close (db);
    char command [300];
    snprintf (command, sizeof command, "rm -rf %s", dir);
    CHECK_INT (system (command), 0);
    TEST_PASS ("test_kb_snapshot");
    return 0;
}
