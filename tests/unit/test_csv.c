/*  test_csv.c - the CSV record reader of kefuctl: quoted fields, doubled quotes, line breaks inside
    quotes, CRLF, LF and CR line ends, the byte order mark, empty fields and lines, a last record
    without a line end, ragged and malformed records, and line numbers through all of them. */
#include "kefuctl/csv.h"
#include "testutil.h"

//  A reader over the bytes of a string literal (its length given, so it may hold NUL bytes)
static kf_csv_t *
s_open (const char *text, size_t len, FILE **file)
{
    *file = fmemopen ((void *) text, len, "r");
    CHECK (*file);
    return kf_csv_new (*file);
}

static void
s_close (kf_csv_t **csv, FILE *file)
{
    kf_csv_destroy (csv);
    CHECK (*csv == NULL);
    fclose (file);
}

static void
s_check_field (kf_csv_t *csv, int index, const char *expect)
{
    size_t len;
    const char *field = kf_csv_field (csv, index, &len);
    CHECK_STR (field, expect);
    CHECK_INT (len, strlen (expect));
}

#define S_OPEN(text, file) s_open (text, sizeof text - 1, file)

static void
s_test_basic (void)
{
    FILE *file;
    kf_csv_t *csv = S_OPEN ("question,answer\n怎么退货,在订单页申请\n", &file);
    CHECK_INT (kf_csv_read (csv), 2);
    CHECK_INT (kf_csv_line (csv), 1);
    s_check_field (csv, 0, "question");
    s_check_field (csv, 1, "answer");
    CHECK (kf_csv_field (csv, 2, NULL) == NULL);
    CHECK (kf_csv_field (csv, -1, NULL) == NULL);
    CHECK_INT (kf_csv_read (csv), 2);
    CHECK_INT (kf_csv_line (csv), 2);
    s_check_field (csv, 0, "怎么退货");
    s_check_field (csv, 1, "在订单页申请");
    CHECK_STR (kf_csv_error (csv), "");
    CHECK_INT (kf_csv_read (csv), 0);
    CHECK_INT (kf_csv_read (csv), 0);           //  End stays the end
    s_close (&csv, file);
}

static void
s_test_quotes (void)
{
    FILE *file;
    kf_csv_t *csv = S_OPEN ("\"a,b\",\"他说\"\"你好\"\"\",\"\"\n"
                            "\"\"\"\",x\"y\"z,\"多\n行\n\"\n"
                            "next,\"crlf\r\ninside\"\n", &file);
    CHECK_INT (kf_csv_read (csv), 3);
    s_check_field (csv, 0, "a,b");
    s_check_field (csv, 1, "他说\"你好\"");
    s_check_field (csv, 2, "");
    CHECK_INT (kf_csv_read (csv), 3);
    CHECK_INT (kf_csv_line (csv), 2);
    s_check_field (csv, 0, "\"");
    s_check_field (csv, 1, "x\"y\"z");        //  A quote inside an unquoted field is plain
    s_check_field (csv, 2, "多\n行\n");
    CHECK_INT (kf_csv_read (csv), 2);
    CHECK_INT (kf_csv_line (csv), 5);           //  The record before spanned lines 2 to 4
    s_check_field (csv, 0, "next");
    s_check_field (csv, 1, "crlf\r\ninside");   //  Bytes inside quotes are kept as they are
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);
}

static void
s_test_line_ends (void)
{
    FILE *file;
    //  CRLF, a last record without a line end
    kf_csv_t *csv = S_OPEN ("a,b\r\nc,d\r\ne,f", &file);
    CHECK_INT (kf_csv_read (csv), 2);
    s_check_field (csv, 1, "b");
    CHECK_INT (kf_csv_read (csv), 2);
    CHECK_INT (kf_csv_line (csv), 2);
    s_check_field (csv, 0, "c");
    s_check_field (csv, 1, "d");
    CHECK_INT (kf_csv_read (csv), 2);
    CHECK_INT (kf_csv_line (csv), 3);
    s_check_field (csv, 1, "f");
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);

    //  Lone CRs, a quoted last field ended by the end of the file
    csv = S_OPEN ("a\rb\r\"c\"", &file);
    CHECK_INT (kf_csv_read (csv), 1);
    s_check_field (csv, 0, "a");
    CHECK_INT (kf_csv_read (csv), 1);
    CHECK_INT (kf_csv_line (csv), 2);
    s_check_field (csv, 0, "b");
    CHECK_INT (kf_csv_read (csv), 1);
    CHECK_INT (kf_csv_line (csv), 3);
    s_check_field (csv, 0, "c");
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);

    //  Empty input; a lone line end
    csv = S_OPEN ("", &file);
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);
    csv = S_OPEN ("\r\n", &file);
    CHECK_INT (kf_csv_read (csv), 1);
    s_check_field (csv, 0, "");
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);
}

static void
s_test_empty_fields (void)
{
    FILE *file;
    kf_csv_t *csv = S_OPEN (",,\n\nx,\n,\"\"\n", &file);
    CHECK_INT (kf_csv_read (csv), 3);
    for (int i = 0; i < 3; i++)
        s_check_field (csv, i, "");
    CHECK_INT (kf_csv_read (csv), 1);           //  An empty line is one empty field
    CHECK_INT (kf_csv_line (csv), 2);
    s_check_field (csv, 0, "");
    CHECK_INT (kf_csv_read (csv), 2);
    CHECK_INT (kf_csv_line (csv), 3);
    s_check_field (csv, 0, "x");
    s_check_field (csv, 1, "");
    CHECK_INT (kf_csv_read (csv), 2);
    s_check_field (csv, 0, "");
    s_check_field (csv, 1, "");
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);
}

static void
s_test_bom (void)
{
    FILE *file;
    kf_csv_t *csv = S_OPEN ("\xEF\xBB\xBFquestion,answer\r\n\"问\",答\r\n", &file);
    CHECK_INT (kf_csv_read (csv), 2);
    CHECK_INT (kf_csv_line (csv), 1);
    s_check_field (csv, 0, "question");
    CHECK_INT (kf_csv_read (csv), 2);
    s_check_field (csv, 0, "问");
    s_check_field (csv, 1, "答");
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);

    //  A BOM alone; a BOM before a quote; only the first BOM is skipped
    csv = S_OPEN ("\xEF\xBB\xBF", &file);
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);
    csv = S_OPEN ("\xEF\xBB\xBF\"a\"\n\xEF\xBB\xBF" "b\n", &file);
    CHECK_INT (kf_csv_read (csv), 1);
    s_check_field (csv, 0, "a");
    CHECK_INT (kf_csv_read (csv), 1);
    s_check_field (csv, 0, "\xEF\xBB\xBF" "b");
    s_close (&csv, file);

    //  Text that begins like a BOM and is not one: every byte comes back in order
    csv = S_OPEN ("\xEF\xBB,\xEF" "a\n", &file);
    CHECK_INT (kf_csv_read (csv), 2);
    s_check_field (csv, 0, "\xEF\xBB");
    s_check_field (csv, 1, "\xEF" "a");
    s_close (&csv, file);
    csv = S_OPEN ("\xEF", &file);
    CHECK_INT (kf_csv_read (csv), 1);
    s_check_field (csv, 0, "\xEF");
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);
    //  "问" is E9 97 AE: a first byte that is not EF
    csv = S_OPEN ("问,答", &file);
    CHECK_INT (kf_csv_read (csv), 2);
    s_check_field (csv, 0, "问");
    s_close (&csv, file);
}

static void
s_test_ragged_and_broken (void)
{
    FILE *file;
    kf_csv_t *csv = S_OPEN ("a,b,c\n1,2\n1,2,3,4\n\"bad\"x,y\n\"ok\",\"z\"\n", &file);
    CHECK_INT (kf_csv_read (csv), 3);
    CHECK_INT (kf_csv_read (csv), 2);           //  Ragged rows come as they are: the caller judges
    CHECK_INT (kf_csv_line (csv), 2);
    CHECK_INT (kf_csv_read (csv), 4);
    s_check_field (csv, 3, "4");
    CHECK_INT (kf_csv_read (csv), -1);          //  Text after a closing quote
    CHECK_INT (kf_csv_line (csv), 4);
    CHECK (strstr (kf_csv_error (csv), "closing quote"));
    CHECK (kf_csv_field (csv, 0, NULL) == NULL);
    CHECK_INT (kf_csv_read (csv), 2);           //  The next line reads on
    CHECK_INT (kf_csv_line (csv), 5);
    CHECK_STR (kf_csv_error (csv), "");
    s_check_field (csv, 0, "ok");
    s_check_field (csv, 1, "z");
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);

    //  A quote left open swallows the rest of the file and says so
    csv = S_OPEN ("q\n\"open,\nmore\n", &file);
    CHECK_INT (kf_csv_read (csv), 1);
    CHECK_INT (kf_csv_read (csv), -1);
    CHECK_INT (kf_csv_line (csv), 2);
    CHECK (strstr (kf_csv_error (csv), "not closed"));
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);
}

static void
s_test_nul_and_long (void)
{
    FILE *file;
    //  NUL bytes are data; lengths tell them apart
    kf_csv_t *csv = S_OPEN ("a\0b,c\n", &file);
    CHECK_INT (kf_csv_read (csv), 2);
    size_t len;
    const char *field = kf_csv_field (csv, 0, &len);
    CHECK_INT (len, 3);
    CHECK (memcmp (field, "a\0b", 4) == 0);
    s_check_field (csv, 1, "c");
    s_close (&csv, file);

    //  A record past the limit is read to its end and dropped; the one after it is whole
    size_t big = KF_CSV_RECORD_MAX + 10;
    char *text = malloc (big + 32);
    CHECK (text);
    text [0] = '"';
    memset (text + 1, 'x', big);
    memcpy (text + 1 + big, "\",y\nok,1\n", 9);
    csv = s_open (text, big + 10, &file);
    CHECK_INT (kf_csv_read (csv), -1);
    CHECK (strstr (kf_csv_error (csv), "longer than"));
    CHECK_INT (kf_csv_read (csv), 2);
    CHECK_INT (kf_csv_line (csv), 2);
    s_check_field (csv, 0, "ok");
    s_check_field (csv, 1, "1");
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);
    free (text);

    //  Many records through one reader: its buffers are reused, line numbers keep counting
    size_t size = 0;
    char *lines = NULL;
    FILE *out = open_memstream (&lines, &size);
    for (int i = 0; i < 5000; i++)
        fprintf (out, "%d,\"第%d行\n续\"\r\n", i, i);
    fclose (out);
    csv = s_open (lines, size, &file);
    for (int i = 0; i < 5000; i++) {
        CHECK_INT (kf_csv_read (csv), 2);
        CHECK_INT (kf_csv_line (csv), 1 + 2 * i);
        char expect [64];
        snprintf (expect, sizeof expect, "第%d行\n续", i);
        s_check_field (csv, 1, expect);
    }
    CHECK_INT (kf_csv_read (csv), 0);
    s_close (&csv, file);
    free (lines);
}

int
main (void)
{
    s_test_basic ();
    s_test_quotes ();
    s_test_line_ends ();
    s_test_empty_fields ();
    s_test_bom ();
    s_test_ragged_and_broken ();
    s_test_nul_and_long ();
    TEST_PASS ("test_csv");
    return 0;
}
