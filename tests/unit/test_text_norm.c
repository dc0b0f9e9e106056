/*  test_text_norm.c - normalization, index terms and stream chunks of Chinese, English and mixed text. */
#include "common/log.h"
#include "common/utf8.h"
#include "common/text_norm.h"
#include "testutil.h"

static void
s_check_norm (const char *input, const char *expect)
{
    char *got = kf_text_normalize (input, strlen (input));
    CHECK_STR (got, expect);
    free (got);
}

typedef struct {
    char joined [4096];
    char terms [64][32];
    int count;
    int pieces;
} s_collect_t;

static void
s_collect (void *arg, const char *text, size_t len, kf_term_kind_t kind)
{
    (void) kind;
    s_collect_t *c = arg;
    CHECK (kf_utf8_is_valid (text, len));       //  Never half a character
    strncat (c->joined, text, len);
    if (c->count < 64 && len < 32) {
        memcpy (c->terms [c->count], text, len);
        c->terms [c->count++][len] = 0;
    }
    c->pieces++;
}

static bool
s_has_term (s_collect_t *c, const char *term)
{
    for (int i = 0; i < c->count; i++)
        if (strcmp (c->terms [i], term) == 0)
            return true;
    return false;
}

int
main (void)
{
    //  Width, case, script, punctuation, emoji, fillers, particles, question words
    s_check_norm ("你好，请问怎么申请退货？", "怎么申请退货");
    s_check_norm ("请问一下，如何申请退货呢？？", "怎么申请退货");
    s_check_norm ("我要退货", "退货");
    s_check_norm ("我想退货怎么操作", "退货怎么操作");
    s_check_norm ("怎麼申請退貨", "怎么申请退货");
    s_check_norm ("ＶＩＰ会员有什么权益", "vip会员有什么权益");
    s_check_norm ("App登录不了😭😭", "app登录不了");
    s_check_norm ("  Apple   Pay  ", "apple pay");
    s_check_norm ("Ünïcode ÀB", "ünïcode àb");
    s_check_norm ("咋退货", "怎么退货");
    s_check_norm ("!!!???", "");
    s_check_norm ("", "");
    s_check_norm ("谢谢", "");
    //  Invalid bytes are dropped, never crash
    s_check_norm ("退\xff货\xe4\xb8", "退货");

    //  Terms: unigrams, bigrams, words
    s_collect_t c = { 0 };
    kf_text_terms ("退货 apple 2024", strlen ("退货 apple 2024"), s_collect, &c);
    CHECK (s_has_term (&c, "退"));
    CHECK (s_has_term (&c, "货"));
    CHECK (s_has_term (&c, "退货"));
    CHECK (s_has_term (&c, "apple"));
    CHECK (s_has_term (&c, "2024"));
    CHECK (!s_has_term (&c, "货a"));

    //  Chunks: join back to the input, 2 characters each, latin words whole
    const char *answer = "您可以在App中申请售后，7天内寄回。";
    memset (&c, 0, sizeof c);
    kf_text_chunks (answer, strlen (answer), 2, s_collect, &c);
    CHECK_STR (c.joined, answer);
    CHECK (s_has_term (&c, "您可"));
    CHECK (s_has_term (&c, "App"));
    //  A cut inside a character: the chunker still never emits half a character when given
    //  a complete prefix
    const char *text = "退货退款";
    size_t cut = kf_utf8_complete_prefix (text, 7);
    CHECK_INT (cut, 6);
    memset (&c, 0, sizeof c);
    kf_text_chunks (text, cut, 3, s_collect, &c);
    CHECK_STR (c.joined, "退货");
    TEST_PASS ("test_text_norm");
    return 0;
}
