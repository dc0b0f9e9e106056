/*  test_hardening.c - the broker under limits an operator's worst day sets: a file-size limit
    (ulimit -f, as a full disk does) that its database writes run into. The broker must neither die
    nor announce what it did not store: chats fail with 500 internal while writes fail, and work
    again once the limit is lifted. */
#include "harness.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

static off_t
s_size (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 ? st.st_size : 0;
}

//  A chat of a long message (the turn rows grow the WAL fast); true when it was answered
static bool
s_chat (kf_client_t *client, const char *message, int *internal)
{
    kf_reply_t *reply = h_call (client, "chat", "{\"message\":\"%s\",\"user_id\":\"fsize\"}", message);
    bool ok = reply->ok;
    if (!ok && strcmp (kf_errc_name (reply->error.errc), "internal") == 0)
        (*internal)++;
    else
    if (!ok)
        fprintf (stderr, "unexpected error: %s\n", reply->error.message);
    kf_reply_destroy (&reply);
    return ok;
}

static void
s_test_file_size_limit (void)
{
    kf_harness_t h;
    h_init (&h, "hardening-fsize");
    h_start_broker (&h, 1, NULL);
    kf_client_t *client = h_client (&h);
    char message [960];
    size_t at = 0;
    while (at + 7 <= sizeof message)           //  退货 is 6 bytes: never cut in half
        at += snprintf (message + at, sizeof message - at, "退货");
    int internal = 0;
    for (int i = 0; i < 10; i++)
        CHECK (s_chat (client, message, &internal));
    //  Room for a little more than there is now: the database and its WAL soon run into it
    char wal [320];
    snprintf (wal, sizeof wal, "%s-wal", h.db);
    off_t largest = s_size (h.db) > s_size (wal) ? s_size (h.db) : s_size (wal);
    struct rlimit limit = { (rlim_t) largest + 256 * 1024, RLIM_INFINITY };
    CHECK_INT (prlimit (h.broker, RLIMIT_FSIZE, &limit, NULL), 0);
    int answered = 0;
    for (int i = 0; i < 3000 && internal < 20; i++)
        answered += s_chat (client, message, &internal);
    CHECK (internal >= 20);                     //  Writes failed, and said so
    CHECK_INT (kill (h.broker, 0), 0);          //  Alive
    kf_reply_t *reply = h_call (client, "health", "{}");
    CHECK (reply->ok);
    kf_reply_destroy (&reply);
    //  Lifted: chats are stored again
    limit.rlim_cur = RLIM_INFINITY;
    CHECK_INT (prlimit (h.broker, RLIMIT_FSIZE, &limit, NULL), 0);
    int after = 0;
    for (int i = 0; i < 10; i++)
        after += s_chat (client, message, &internal);
    CHECK_INT (after, 10);
    printf ("hardening: file-size limit: %d answered, %d refused with 500, the broker lives on\n",
            answered, internal);
    kf_client_destroy (&client);
    h_cleanup (&h);
}

int
main (void)
{
    s_test_file_size_limit ();
    TEST_PASS ("test_hardening");
    return 0;
}
