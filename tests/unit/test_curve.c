/*  test_curve.c - CURVE key files (common/curve.h): written and read back, keys holding '#',
    comments, a public key that does not match its secret, .pub files where a pair is needed,
    public keys given as text or files, the client configuration from options and environment,
    and broken files named by line without quoting a key. */
#include "testutil.h"
#include "common/curve.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static char s_dir [64];

static void
s_file (const char *name, const char *text, char *path, size_t size)
{
    snprintf (path, size, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    CHECK (file);
    fputs (text, file);
    fclose (file);
}

//  A pair whose keys hold '#' (a comment character only at the start of a line)
static void
s_pair_with_hash (kf_curve_t *curve)
{
    for (int tries = 0; tries < 10000; tries++) {
        CHECK_INT (kf_curve_keypair (curve), 0);
        if (strchr (curve->public_key, '#') && strchr (curve->secret_key, '#'))
            return;
    }
    CHECK (!"no key pair with '#' in 10000 tries");
}

int
main (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/kefu-test-curve-XXXXXX");
    CHECK (mkdtemp (s_dir));
    char why [512], path [128], base [96];

    //  Written by kf_curve_write, read back whole; never overwritten
    kf_curve_t made, read;
    s_pair_with_hash (&made);
    CHECK (kf_curve_is_key (made.public_key) && kf_curve_is_key (made.secret_key));
    snprintf (base, sizeof base, "%s/node", s_dir);
    CHECK_INT (kf_curve_write (&made, base, why, sizeof why), 0);
    CHECK_INT (kf_curve_write (&made, base, why, sizeof why), -1);
    CHECK (strstr (why, "File exists"));
    snprintf (path, sizeof path, "%s.key", base);
    struct stat info;
    CHECK_INT (stat (path, &info), 0);
    CHECK_INT (info.st_mode & 0777, 0600);
    CHECK_INT (kf_curve_read_keypair (&read, path, why, sizeof why), 0);
    CHECK_STR (read.public_key, made.public_key);
    CHECK_STR (read.secret_key, made.secret_key);
    char public_key [KF_CURVE_KEY_LEN + 1];
    CHECK_INT (kf_curve_read_public (public_key, path, why, sizeof why), 0);      //  From .key
    CHECK_STR (public_key, made.public_key);
    snprintf (path, sizeof path, "%s.pub", base);
    CHECK_INT (kf_curve_read_public (public_key, path, why, sizeof why), 0);      //  From .pub
    CHECK_STR (public_key, made.public_key);
    CHECK_INT (kf_curve_read_public (public_key, made.public_key, why, sizeof why), 0);   //  As text
    CHECK_STR (public_key, made.public_key);
    //  A .pub file is no key pair
    CHECK_INT (kf_curve_read_keypair (&read, path, why, sizeof why), -1);
    CHECK (strstr (why, "no secret key"));

    //  A secret alone: the public key is derived
    char text [256];
    snprintf (text, sizeof text, "# comment\n\n   secret = %s   \n", made.secret_key);
    s_file ("secret-only.key", text, path, sizeof path);
    CHECK_INT (kf_curve_read_keypair (&read, path, why, sizeof why), 0);
    CHECK_STR (read.public_key, made.public_key);

    //  Keys that do not belong together, and broken lines: named, never quoted
    kf_curve_t other;
    CHECK_INT (kf_curve_keypair (&other), 0);
    snprintf (text, sizeof text, "public = %s\nsecret = %s\n", other.public_key, made.secret_key);
    s_file ("mixed.key", text, path, sizeof path);
    CHECK_INT (kf_curve_read_keypair (&read, path, why, sizeof why), -1);
    CHECK (strstr (why, "does not belong"));
    CHECK (!strstr (why, made.secret_key) && !strstr (why, other.public_key));
    snprintf (text, sizeof text, "public = %s\nsecret = %.39s\n", made.public_key, made.secret_key);
    s_file ("short.key", text, path, sizeof path);
    CHECK_INT (kf_curve_read_keypair (&read, path, why, sizeof why), -1);
    CHECK (strstr (why, "line 2"));
    char partial [KF_CURVE_KEY_LEN];
    snprintf (partial, sizeof partial, "%.20s", made.secret_key);
    CHECK (!strstr (why, partial));
    //  A line that is no "public"/"secret" line is an error, not skipped: a capital, a byte-order mark
    snprintf (text, sizeof text, "Public = %s\nsecret = %s\n", made.public_key, made.secret_key);
    s_file ("capital.key", text, path, sizeof path);
    CHECK_INT (kf_curve_read_keypair (&read, path, why, sizeof why), -1);
    CHECK (strstr (why, "line 1"));
    snprintf (text, sizeof text, "\xEF\xBB\xBFsecret = %s\n", made.secret_key);
    s_file ("bom.key", text, path, sizeof path);
    CHECK_INT (kf_curve_read_keypair (&read, path, why, sizeof why), -1);
    s_file ("other.key", "private = abc\n", path, sizeof path);
    CHECK_INT (kf_curve_read_keypair (&read, path, why, sizeof why), -1);
    CHECK (strstr (why, "line 1"));
    CHECK_INT (kf_curve_read_public (public_key, "/nonexistent/broker.pub", why, sizeof why), -1);
    CHECK (strstr (why, "No such file"));
    s_file ("empty.pub", "# nothing\n", path, sizeof path);
    CHECK_INT (kf_curve_read_public (public_key, path, why, sizeof why), -1);
    CHECK (!kf_curve_is_key ("short"));
    CHECK (!kf_curve_is_key ("0123456789012345678901234567890123456789 "));
    CHECK (!kf_curve_is_key ("012345678901234567890123456789012345678\""));     //  '"' is no Z85

    //  The client configuration: options first, then the environment; none is plain
    unsetenv ("KEFU_BROKER_KEY");
    unsetenv ("KEFU_CURVE_KEY");
    kf_curve_t client;
    CHECK_INT (kf_curve_client_config (&client, NULL, NULL, why, sizeof why), 0);
    CHECK_INT (kf_curve_client_config (&client, made.public_key, NULL, why, sizeof why), 1);
    CHECK_STR (client.server, made.public_key);
    CHECK (kf_curve_is_key (client.public_key) && strcmp (client.public_key, made.public_key) != 0);
    snprintf (path, sizeof path, "%s.key", base);
    setenv ("KEFU_BROKER_KEY", other.public_key, 1);
    setenv ("KEFU_CURVE_KEY", path, 1);
    CHECK_INT (kf_curve_client_config (&client, NULL, NULL, why, sizeof why), 1);
    CHECK_STR (client.server, other.public_key);
    CHECK_STR (client.public_key, made.public_key);
    CHECK_STR (client.secret_key, made.secret_key);
    unsetenv ("KEFU_BROKER_KEY");
    CHECK_INT (kf_curve_client_config (&client, NULL, NULL, why, sizeof why), -1);     //  Own key, no broker's
    CHECK (strstr (why, "broker's public key"));
    kf_curve_wipe (&client);
    CHECK (client.secret_key [0] == 0 && client.secret_key [KF_CURVE_KEY_LEN - 1] == 0);

    char command [96];
    snprintf (command, sizeof command, "rm -rf %s", s_dir);
    CHECK_INT (system (command), 0);
    TEST_PASS ("test_curve");
    return 0;
}
