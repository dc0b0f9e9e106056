/*  emotion.c - the emotion score of a customer message: the text folded (width, case, traditional
    characters), lexicon cues matched longest first with negation and intensifiers, punctuation
    runs and shouting counted, the sum squashed into [0, 1]. The model is in emotion.h. */
#include "common/emotion.h"
#include "common/log.h"
#include "common/utf8.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/text_norm.h"
#include "common/emotion_lexicon.h"

#define S_LEXICON_SIZE      (sizeof s_lexicon / sizeof s_lexicon [0])
#define S_NEGATION_REACH    3       //  Characters a negator reaches past its end
#define S_INTENS_REACH      2       //  Characters an intensifier reaches past its end
#define S_PUNCT_FLOOR       -1.5
#define S_CAPS_FLOOR        -1.0
#define S_PROFANITY_CAP     0.15
#define S_THREAT_CAP        0.20
#define S_TOPIC_IN_QUESTION 0.25    //  A topic word's weight in a calm question
#define S_NEG_IN_QUESTION   0.6     //  Any other upset word's: "坏了还能处理吗" asks for help
#define S_TOPIC_UNAIMED     0.4     //  A threat word's aimed at no one, announcing nothing
#define S_ANGER_ALONE       0.05    //  A score this low is anger whoever it is aimed at
#define S_ANGER_WORD        -2.0    //  A word this strong (after negation, intensifiers) is anger

//  Common acronyms written in capitals that are not shouting
static const char *s_acronyms [] = {
    "APP", "VIP", "USB", "SKU", "PDF", "SMS", "IOS", "WIFI", "PLUS", "PRO", "MAX", "MINI", "NFC",
    "GPS", "LED", "DIY", "API", "APK", "VPN", "CPU", "GPU", "SSD", "HDMI", "EMS", "KFC", "DHL", "UPS",
    "FAQ", "ETC", "OPPO", "VIVO", "IPAD", "IPHONE", "TCL", "LCD", "OLED", "SIM", "ESIM", "PIN", "CVV",
    "ATM", "USA", "GB", "MB", "TB", "XL", "XXL", "XXXL", "BUG", "QQ", "ID", "OK", NULL
};


//  ---------------------------------------------------------------------------------------------
//  Folding: the text as folded code points and their UTF-8, with a character index per byte

typedef struct {
    uint32_t *cps;              //  Folded code points
    uint32_t *orig;             //  Code points before case folding (for shouting)
    size_t *offset;             //  Byte offset of each character in `text`, plus one past the end
    int *clause;                //  Clause number of each character
    char *text;                 //  Folded UTF-8
    size_t count;               //  Characters
} s_folded_t;

static uint32_t
s_fold_width (uint32_t cp)
{
    if (cp >= 0xFF01 && cp <= 0xFF5E)
        return cp - 0xFEE0;
    if (cp == 0x3000)
        return ' ';
    if (cp == 0x3002 || cp == 0xFF61)
        return 0x3002;              //  Ideographic full stop stays distinct from '.'
    return cp;
}

static bool
s_is_word_char (uint32_t cp)
{
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')
        || (cp >= 0x3400 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF);
}

static bool
s_is_alnum (uint32_t cp)
{
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
}

static void
s_fold (s_folded_t *f, const char *s, size_t len)
{
    f->cps = kf_malloc ((len + 1) * sizeof *f->cps);
    f->orig = kf_malloc ((len + 1) * sizeof *f->orig);
    f->offset = kf_malloc ((len + 1) * sizeof *f->offset);
    f->clause = kf_malloc ((len + 1) * sizeof *f->clause);
    f->text = kf_malloc (len * 2 + 8);     //  A folded character never grows past 2x
    f->count = 0;
    size_t used = 0;
    int clause = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int n = kf_utf8_decode (s + i, len - i, &cp);
        if (n == 0) {
            i++;
            continue;
        }
        i += n;
        cp = s_fold_width (cp);
        uint32_t folded = cp >= 'A' && cp <= 'Z' ? cp + 32 : kf_text_simplified (cp);
        if (!s_is_word_char (folded) && folded != ' ')
            clause++;               //  Punctuation and emoji end a clause on both sides
        f->orig [f->count] = cp;
        f->cps [f->count] = folded;
        f->offset [f->count] = used;
        f->clause [f->count] = clause;
        if (!s_is_word_char (folded))
            clause++;
        used += kf_utf8_encode (folded, f->text + used);
        f->count++;
    }
    f->offset [f->count] = used;
    f->text [used] = 0;
}

static void
s_folded_free (s_folded_t *f)
{
    free (f->cps);
    free (f->orig);
    free (f->offset);
    free (f->clause);
    free (f->text);
}


//  ---------------------------------------------------------------------------------------------
//  Scoring state

typedef struct {
    kf_emotion_result_t *result;
    double lexical;             //  Sum of lexicon cues
    double surface;             //  Sum of punctuation and shouting cues
    bool question;              //  The message asks something (courtesy is not satisfaction)
    bool is_calm_question;      //  ... how, where or whether, aimed at no one (s_is_calm_question)
    bool is_one_clause;         //  Its words are all in one clause
    bool is_aimed;              //  Said to someone (s_is_aimed)
} s_state_t;

static void
s_add (s_state_t *state, const char *cue, double weight, bool negated, bool lexical)
{
    if (lexical)
        state->lexical += weight;
    else
        state->surface += weight;
    kf_emotion_result_t *r = state->result;
    if (r->cue_count < KF_EMOTION_MAX_CUES)
        r->cues [r->cue_count] = (kf_emotion_cue_t) { cue, weight, negated };
    r->cue_count++;
}

//  The longest lexicon entry matching at character `i`, NULL when none does
static const s_entry_t *
s_match (const s_folded_t *f, size_t i, size_t *chars)
{
    const s_entry_t *best = NULL;
    size_t best_len = 0;
    const char *at = f->text + f->offset [i];
    size_t left = f->offset [f->count] - f->offset [i];
    for (size_t e = 0; e < S_LEXICON_SIZE; e++) {
        const s_entry_t *entry = &s_lexicon [e];
        //  Two bytes first (the text is NUL-terminated): most entries differ there, and this
        //  loop runs for every character of every message
        if (entry->text [0] != at [0] || (entry->text [1] && entry->text [1] != at [1]))
            continue;
        size_t len = strlen (entry->text);
        if (len <= best_len || len > left || memcmp (at, entry->text, len) != 0)
            continue;
        //  Latin and digit entries match whole words only
        size_t end = i;
        while (f->offset [end] < f->offset [i] + len)
            end++;
        if (s_is_alnum ((unsigned char) entry->text [0]) && i > 0 && s_is_alnum (f->cps [i - 1]))
            continue;
        if (s_is_alnum ((unsigned char) entry->text [len - 1]) && end < f->count
            && s_is_alnum (f->cps [end]))
            continue;
        best = entry;
        best_len = len;
        *chars = end - i;
    }
    return best;
}

//  True when a time unit follows 等了 in its clause within a few characters: 等了三天, 等了半个月
static bool
s_wait_span (const s_folded_t *f, size_t from)
{
    static const uint32_t units [] = { 0x5929, 0x5468, 0x661F, 0x6708, 0x65F6, 0x4E45, 0x5E74, 0 };
    //                                  天      周      星      月      时      久      年
    for (size_t i = from; i < f->count && i < from + 5 && f->clause [i] == f->clause [from]; i++)
        for (int u = 0; units [u]; u++)
            if (f->cps [i] == units [u])
                return true;
    return false;
}

static bool s_is_escalation (const s_folded_t *f, size_t at);

static void
s_lexical_cues (s_state_t *state, const s_folded_t *f)
{
    long neg_end = -1, int_end = -1, int_start = -1;
    int neg_clause = -1, int_clause = -1;
    double int_mult = 1;
    for (size_t i = 0; i < f->count;) {
        size_t chars = 1;
        const s_entry_t *entry = s_match (f, i, &chars);
        if (!entry) {
            i++;
            continue;
        }
        long start = (long) i;
        int clause = f->clause [i];
        i += chars;
        if (entry->kind == S_BLOCK)
            continue;
        if (entry->kind == S_NEGATOR) {
            neg_end = (long) i;
            neg_clause = clause;
            continue;
        }
        if (entry->kind == S_INTENS) {
            int_start = start;
            int_end = (long) i;
            int_clause = clause;
            int_mult = entry->weight;
            continue;
        }
        bool negated = neg_end >= 0 && neg_clause == clause && start - neg_end <= S_NEGATION_REACH;
        bool intense = int_end >= 0 && int_clause == clause && start - int_end <= S_INTENS_REACH;
        double mult = intense ? int_mult : 1;
        if (negated && intense && int_start >= neg_end)
            mult = 0.8;             //  不是很满意: softer than 不满意
        double w = entry->weight;
        switch (entry->kind) {
            case S_POS:
                w = negated ? -1.2 * w * mult : w * mult;
                break;
            case S_NEG:
                w = negated && (entry->flags & S_FLIP) ? -0.4 * w : w * mult;
                if (state->is_calm_question)
                    w *= entry->flags & S_TOPIC ? S_TOPIC_IN_QUESTION : S_NEG_IN_QUESTION;
                break;
            case S_POLITE:
                negated = false;
                w = state->question ? w * 0.5 : w;
                break;
            case S_PROF:
                negated = false;
                state->result->profanity = true;
                break;
            case S_THREAT:
                negated = false;
                //  "在哪里投诉" asks how; "我要去12315投诉你们" says what will happen. A question
                //  calms a threat in its own clause only ("钱到底哪天退？再不退我就报警起诉"), and
                //  a word of the law or the police about someone else is a topic: "会不会被起诉",
                //  "被拖欠工资，想请律师", "燃气报警器一直在响"
                if ((entry->flags & S_TOPIC) && state->is_calm_question && state->is_one_clause)
                    w *= S_TOPIC_IN_QUESTION;
                else
                if ((entry->flags & S_TOPIC) && !state->is_aimed && !s_is_escalation (f, (size_t) start))
                    w *= S_TOPIC_UNAIMED;
                else
                    state->result->threat = true;
                break;
            case S_WAIT:
                negated = false;
                if (s_wait_span (f, i)) {
                    s_add (state, "等了X天", -0.8, false, true);
                }
                break;
        }
        s_add (state, entry->text, w, negated, true);
        neg_end = int_end = -1;
    }
}


//  ---------------------------------------------------------------------------------------------
//  Surface cues: punctuation runs and shouting

static void
s_punctuation_cues (s_state_t *state, const s_folded_t *f)
{
    double total = 0;
    bool positive = state->lexical > 0.5;
    for (size_t i = 0; i < f->count;) {
        uint32_t cp = f->cps [i];
        size_t bangs = 0, asks = 0, run = i;
        while (run < f->count && (f->cps [run] == '!' || f->cps [run] == '?')) {
            bangs += f->cps [run] == '!';
            asks += f->cps [run] == '?';
            run++;
        }
        if (run > i) {
            const char *cue = NULL;
            double w = 0;
            if (bangs && asks)
                cue = "?!", w = -0.8;
            else if (bangs >= 3)
                cue = "!!!", w = positive ? 0 : -0.9;
            else if (bangs == 2)
                cue = "!!", w = positive ? 0 : -0.6;
            else if (asks >= 3)
                cue = "???", w = -0.8;
            else if (asks == 2)
                cue = "??", w = -0.5;
            if (cue && w != 0) {
                s_add (state, cue, w, false, false);
                total += w;
            }
            i = run;
            continue;
        }
        //  Ellipsis: 。。 or ... or …
        size_t dots = 0;
        while (run < f->count && (f->cps [run] == cp) && (cp == 0x3002 || cp == '.' || cp == 0x2026))
            dots++, run++;
        if ((cp == 0x3002 && dots >= 2) || (cp == '.' && dots >= 3) || (cp == 0x2026 && dots >= 1)) {
            s_add (state, "...", -0.35, false, false);
            total -= 0.35;
        }
        i = run > i ? run : i + 1;
    }
    if (total < S_PUNCT_FLOOR)
        state->surface += S_PUNCT_FLOOR - total;
}

static bool
s_is_acronym (const uint32_t *cps, size_t len)
{
    for (int a = 0; s_acronyms [a]; a++) {
        size_t k = 0;
        while (k < len && s_acronyms [a][k] && (uint32_t) s_acronyms [a][k] == cps [k])
            k++;
        if (k == len && !s_acronyms [a][k])
            return true;
    }
    return false;
}

static void
s_shouting_cues (s_state_t *state, const s_folded_t *f)
{
    double total = 0;
    for (size_t i = 0; i < f->count;) {
        if (!s_is_alnum (f->orig [i]) || (f->orig [i] >= '0' && f->orig [i] <= '9')) {
            i++;
            continue;
        }
        size_t end = i, upper = 0;
        while (end < f->count && s_is_alnum (f->orig [end])) {
            upper += f->orig [end] >= 'A' && f->orig [end] <= 'Z';
            end++;
        }
        //  Part of an identifier is no shouting: ORD-2024-001, SKU_88, ABC123 (s_is_alnum ran
        //  over its digits: upper < end - i)
        bool is_code = (i > 0 && (f->orig [i - 1] == '-' || f->orig [i - 1] == '_'))
                    || (end < f->count && (f->orig [end] == '-' || f->orig [end] == '_'));
        if (end - i >= 3 && upper == end - i && !is_code && !s_is_acronym (f->orig + i, end - i)
            && total > S_CAPS_FLOOR) {
            s_add (state, "CAPS", -0.4, false, false);
            total -= 0.4;
        }
        i = end;
    }
}

//  True when the message asks something (courtesy in it is not satisfaction)
static bool
s_is_question (const s_folded_t *f)
{
    static const char *markers [] = {
        "?", "吗", "请问", "怎么", "如何", "多少", "能否", "可以", "哪里", "哪个", "什么时候", "几", NULL
    };
    for (int m = 0; markers [m]; m++)
        if (strstr (f->text, markers [m]))
            return true;
    return false;
}

//  True when the clause of `at` says what happens whenever something does: 一 at its start, then
//  就 ("一炒菜烟感就报警": the alarm goes off, no one calls the police). 一直, 一再, 一天 ... are
//  no "whenever" ("一直不处理我就报警" threatens)
static bool
s_is_whenever (const s_folded_t *f, size_t at)
{
    size_t start = at;
    while (start > 0 && f->clause [start - 1] == f->clause [at])
        start--;
    while (start < at && !s_is_word_char (f->cps [start]))
        start++;
    if (start + 1 >= at || f->cps [start] != 0x4E00)   //  一
        return false;
    static const uint32_t not_whenever [] = { 0x76F4, 0x518D, 0x5929, 0x6B21, 0x4E2A, 0x5468, 0x6708,
                                              0x5E74, 0x70B9, 0 };   //  直再天次个周月年点
    for (int n = 0; not_whenever [n]; n++)
        if (f->cps [start + 1] == not_whenever [n])
            return false;
    //  A condition of inaction is a deadline: 一小时不回复我就报警, 一会儿没人管就投诉
    static const uint32_t inaction [] = { 0x4E0D, 0x6CA1, 0x672A, 0x518D, 0 };    //  不没未再
    for (size_t i = start + 1; i < at; i++) {
        for (int n = 0; inaction [n]; n++)
            if (f->cps [i] == inaction [n])
                return false;
        if (f->cps [i] == 0x5C31)                       //  就
            return true;
    }
    return false;
}

//  True when the text before character `at` (up to 6 characters, same clause) announces what the
//  customer will do: 要 去 就 会 找 打 告 上 给 等 (等着收律师函吧), not 被 right before (会不会被
//  起诉 fears it)
static bool
s_is_escalation (const s_folded_t *f, size_t at)
{
    if (at > 0 && f->cps [at - 1] == 0x88AB)            //  被
        return false;
    if (s_is_whenever (f, at))
        return false;
    static const uint32_t verbs [] = { 0x8981, 0x53BB, 0x5C31, 0x4F1A, 0x627E, 0x6253, 0x544A, 0x4E0A,
                                       0x7ED9, 0x7B49, 0 };
    for (size_t i = at, n = 0; i > 0 && n < 6 && f->clause [i - 1] == f->clause [at]; i--, n++)
        for (int v = 0; verbs [v]; v++)
            if (f->cps [i - 1] == verbs [v])
                return true;
    return false;
}

//  True when the message is said to someone: 你们, 你 (not 你好), 贵公司
static bool
s_is_aimed (const s_folded_t *f)
{
    if (strstr (f->text, "你们") || strstr (f->text, "贵公司"))
        return true;
    for (const char *you = strstr (f->text, "你"); you; you = strstr (you + 3, "你"))
        if (strncmp (you, "你好", strlen ("你好")) != 0)
            return true;
    return false;
}

//  True when the message's words are all in one clause
static bool
s_is_one_clause (const s_folded_t *f)
{
    int clause = -1;
    for (size_t i = 0; i < f->count; i++)
        if (s_is_word_char (f->cps [i])) {
            if (clause >= 0 && f->clause [i] != clause)
                return false;
            clause = f->clause [i];
        }
    return true;
}

//  True when the message asks how, where, whether or which (在哪里投诉, 会不会卖假货, 你们的投诉
//  热线是哪个) without punctuation runs or a demand (能不能快点); a calm question asks so of no one
//  (你, 你们: s_is_aimed): a question about a topic
static bool
s_asks (const s_folded_t *f)
{
    static const char *markers [] = {
        "?", "吗", "怎么", "如何", "哪里", "哪儿", "在哪", "去哪", "哪个", "哪些", "多久", "多长",
        "会不会", "是否", "需要什么", "哪", "谁", "几", "流程", "规定", "电话", "方式",
        "渠道", "入口", "怎么办", "咋办", "咋", "怎么回事", "什么时候", "啥时候", "多少", "啥", NULL
    };
    static const char *demands [] = { "!!", "??", "?!", "!?", "能不能", "可不可以", NULL };
    bool is_question = false;
    for (int m = 0; markers [m] && !is_question; m++)
        is_question = strstr (f->text, markers [m]) != NULL;
    //  Or ends as a yes-no question does: 能撤回不, 到账没, 能退么
    static const char *tails [] = { "不", "没", "么", "没有", NULL };
    size_t end = strlen (f->text);
    while (end > 0 && strchr (" .,!?~", f->text [end - 1]))
        end--;
    for (int t = 0; tails [t] && !is_question; t++) {
        size_t n = strlen (tails [t]);
        is_question = end >= n && memcmp (f->text + end - n, tails [t], n) == 0;
    }
    for (int d = 0; demands [d] && is_question; d++)
        is_question = strstr (f->text, demands [d]) == NULL;
    return is_question;
}

static bool
s_is_calm_question (const s_folded_t *f)
{
    return s_asks (f) && !s_is_aimed (f);
}


//  ---------------------------------------------------------------------------------------------
//  Public functions

double
kf_emotion_analyze (const char *text, size_t len, kf_emotion_result_t *result)
{
    kf_emotion_result_t scratch;
    result = result ? result : &scratch;
    memset (result, 0, sizeof *result);
    s_state_t state = { .result = result };
    if (text && len > 0) {
        s_folded_t f;
        s_fold (&f, text, len);
        state.question = s_is_question (&f);
        state.is_calm_question = s_is_calm_question (&f);
        state.is_one_clause = s_is_one_clause (&f);
        state.is_aimed = result->is_aimed = s_is_aimed (&f);
        result->is_asking = s_asks (&f);
        for (size_t i = 0; i < f.count && !result->has_words; i++)
            result->has_words = s_is_word_char (f.cps [i]);
        s_lexical_cues (&state, &f);
        s_punctuation_cues (&state, &f);
        s_shouting_cues (&state, &f);
        s_folded_free (&f);
    }
    result->raw = state.lexical + state.surface;
    double score = 1.0 / (1.0 + exp (-(KF_EMOTION_BIAS + result->raw)));
    if (result->profanity && score > S_PROFANITY_CAP)
        score = S_PROFANITY_CAP;
    if (result->threat && score > S_THREAT_CAP)
        score = S_THREAT_CAP;
    result->score = score;
    return score;
}

double
kf_emotion_score (const char *text, size_t len)
{
    return kf_emotion_analyze (text, len, NULL);
}

kf_emotion_band_t
kf_emotion_band (double score)
{
    if (score < KF_EMOTION_UPSET_BELOW)
        return KF_EMOTION_UPSET;
    return score >= KF_EMOTION_POSITIVE_FROM ? KF_EMOTION_POSITIVE : KF_EMOTION_NEUTRAL;
}

const char *
kf_emotion_band_name (kf_emotion_band_t band)
{
    return band == KF_EMOTION_UPSET ? "upset" : band == KF_EMOTION_POSITIVE ? "positive" : "neutral";
}

const char *
kf_emotion_reply (double score)
{
    if (score < 0.15)
        return "非常抱歉给您带来这么糟糕的体验，您的心情我完全理解。我会马上为您转接专人处理，请您稍等。";
    if (score < KF_EMOTION_ESCALATE_BELOW)
        return "真的很抱歉让您着急了，给您添麻烦了，我这就优先为您处理。";
    if (score < KF_EMOTION_UPSET_BELOW)
        return "抱歉给您带来不便，我来帮您看一下。";
    return "";
}

const char *
kf_emotion_reply_no_transfer (double score)
{
    if (score < 0.15)
        return "非常抱歉给您带来这么糟糕的体验，您的心情我完全理解，我这就认真为您处理。";
    return kf_emotion_reply (score);
}

//  True when the text tells of someone posing as the business: 冒充, 假冒, 假客服, 自称你们客服
//  (not 你们自称服务第一)
static bool
s_names_impostor (const char *text, size_t len)
{
    static const char *words [] = { "冒充", "假冒", "假客服", "假的客服", "自称你们", "自称是你们",
                                    "自称客服", "自称是客服", NULL };
    for (int w = 0; words [w]; w++)
        if (memmem (text, len, words [w], strlen (words [w])))
            return true;
    return false;
}

bool
kf_emotion_is_anger (const char *text, size_t len)
{
    kf_emotion_result_t result;
    double score = kf_emotion_analyze (text, len, &result);
    if (!result.has_words)
        return false;                   //  Punctuation alone ("？！。…") says nothing at anyone
    if (result.profanity || result.threat || score < S_ANGER_ALONE)
        return true;
    //  A customer who reports an impersonator ("有人冒充你们客服…这是骗子吧") calls them names
    bool is_impostor = s_names_impostor (text, len);
    for (int c = 0; c < result.cue_count && c < KF_EMOTION_MAX_CUES; c++) {
        const char *cue = result.cues [c].cue;
        if (strchr ("!?", cue [0]) || strcmp (cue, "CAPS") == 0)
            return true;                //  Punctuation runs, shouting (a sigh, ..., is not)
        if (result.cues [c].weight <= S_ANGER_WORD && !is_impostor)
            return true;                //  垃圾银行, 骗子, 气炸了, 抢钱
    }
    //  Said to someone (你们, 你 but not 你好, 贵公司), or to the bot or the desk by name; not
    //  when it asks something ("你们的投诉热线是哪个", "对你们的服务不太满意，都能通过哪些方式投诉")
    //  nor of an impersonator
    return !result.is_asking && !is_impostor
        && (result.is_aimed || memmem (text, len, "客服", 6) || memmem (text, len, "机器人", 9));
}
