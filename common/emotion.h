/*  emotion.h - how upset a customer message sounds (issue 5, `emotion_sensitive`): a score in [0, 1]
    per message, lower = more upset, from a built-in Chinese lexicon and surface cues; an empathetic
    reply prefix by band. No allocation survives a call; thread-safe (no shared state).

    The model: additive cues squashed into [0, 1].
        score = 1 / (1 + exp (-(KF_EMOTION_BIAS + sum of cue weights)))
    With no cue at all the score is sigmoid (0.4) ~ 0.60, so a plain question is neutral.
    The text is scanned raw (not kf_text_normalize, which drops punctuation, 谢谢 and particles):
    full-width ASCII folds to half-width, latin to lower case, common traditional characters to
    simplified. Cues:
    -   Lexicon words, matched longest first at each character (so 不满意 beats 满意, 差价 and 服务
        are neutral blockers, 太麻烦 beats 麻烦了): negative words (垃圾 -2.0, 骗子 -2.5, 失望 -1.5,
        无语 -1.5, 什么破 -1.8, 退钱 -1.2, 投诉 -1.6 ...), positive words (满意 +1.0, 很好 +1.0,
        太好了 +1.5 ...), polite words (谢谢, 麻烦了, 您: small; halved when the message is a
        question, since courtesy in a question is not satisfaction), latin words (wtf, angry,
        refund now, scam / thanks, great), emoji (😡 / 👍), waiting (等了三天, 都一周了).
    -   Negation: a negator (不 没 没有 别 未 不是 不太 不够 ...) at most 3 characters before a
        sentiment word in the same clause flips it: a positive word becomes -1.2x its weight
        (不满意, 不是很满意, 不够专业); an evaluative negative word becomes a small positive
        (-0.4x: 不差, 不慢); demands, threats and profanity ignore negation (不退钱 stays upset).
        Fixed phrases carry their own weight: 不错 +1.0, 没问题 +0.6, 不好意思 +0.1.
    -   Intensifiers (太 非常 特别 真的 简直 超级 很 好 巨 最 一点都 ...) directly before a sentiment
        word (at most 2 characters between, same clause) multiply it by 1.1-1.6; after a negator
        they soften it instead (不是很满意: x0.8).
    -   Punctuation runs (either width): !! -0.6, !!! and longer -0.9 (no effect when the words are
        positive: 太好了!!! stays happy), ?? -0.5, ??? -0.8, ?! mixed -0.8, 。。/.../…… -0.35;
        punctuation adds at most -1.5 in all.
    -   Shouting: each all-capital latin word of 3+ letters that is not a common acronym (APP, VIP,
        USB ...) -0.4, at most -1.0.
    -   Profanity (他妈的 tmd sb 卧槽 傻逼 ...) -3.0 each, and the score is capped at 0.15.
    -   Threats to escalate (12315 曝光 差评 报警 律师 起诉 消协 ...) -2.0 to -2.5 each, and the
        score is capped at 0.20.
    Latin and digit entries match whole words only (sb is not in "usb", 12315 not inside a number).

    Bands (chosen on tests/data/emotion_eval.jsonl, see tests/unit/test_emotion.c):
        upset     score <  KF_EMOTION_UPSET_BELOW     (0.40)
        neutral   in between
        positive  score >= KF_EMOTION_POSITIVE_FROM   (0.72)
    Escalation is the caller's decision: the default is to hand over to a person when the score is
    below KF_EMOTION_ESCALATE_BELOW (0.30) - stricter than the upset band, so a mildly annoyed
    customer gets an empathetic reply, and a furious, swearing or threatening one gets a person. */
#ifndef KF_EMOTION_H
#define KF_EMOTION_H
#include <stdbool.h>
#include <stddef.h>

#define KF_EMOTION_BIAS             0.4
#define KF_EMOTION_UPSET_BELOW      0.40
#define KF_EMOTION_POSITIVE_FROM    0.72
#define KF_EMOTION_ESCALATE_BELOW   0.30
#define KF_EMOTION_MAX_CUES         16

typedef enum { KF_EMOTION_UPSET = 0, KF_EMOTION_NEUTRAL, KF_EMOTION_POSITIVE } kf_emotion_band_t;

//  One cue that fired: a lexicon word or a surface cue name ("!!!", "???", "CAPS", "等了X天"),
//  borrowed static text, and the weight it added (after negation and intensifiers).
typedef struct {
    const char *cue;
    double weight;
    bool negated;
} kf_emotion_cue_t;

typedef struct {
    double score;               //  Same as the return value
    double raw;                 //  Sum of cue weights before the squash (without the bias)
    bool profanity;             //  A profanity fired (score capped at 0.15)
    bool threat;                //  A threat to escalate fired (score capped at 0.20)
    bool is_asking;             //  It asks how, where, whether or which, with no punctuation runs
                                //  or demand
    bool is_aimed;              //  Said to someone: 你们, 你 (not 你好), 贵公司
    bool has_words;             //  Holds a letter, digit or CJK character (not punctuation alone)
    int cue_count;              //  Cues that fired; only the first KF_EMOTION_MAX_CUES are kept
    kf_emotion_cue_t cues [KF_EMOTION_MAX_CUES];
} kf_emotion_result_t;

//  Returns the emotion score of UTF-8 text `text` (`len` bytes) in [0, 1], lower = more upset.
//  Invalid bytes are skipped. NULL or empty text scores as neutral (sigmoid of the bias).
double kf_emotion_score (const char *text, size_t len);

//  As kf_emotion_score, also filling `result` (when not NULL) with the cues that fired, for logs
//  and tests.
double kf_emotion_analyze (const char *text, size_t len, kf_emotion_result_t *result);

//  True when `text` reads as angry, not only unhappy: profane, threatening, very low (below
//  0.05), shouted or punctuated (!!, ??, ?!; a sigh ... is not), with a
//  strong word (-2.0 or less as it counted: 垃圾银行, 骗子, 气炸了), or said to someone (你们, 你
//  but not 你好, 客服, 机器人) without asking anything. "次卧wifi信号很差" is unhappy with the wifi;
//  "你们这网速也太差了吧" is angry with the business. The handoff's emotion rule asks this of a
//  message whose score is below the bot's emotion_below (the score says how upset, this whether
//  at someone).
bool kf_emotion_is_anger (const char *text, size_t len);

//  The band of `score` (thresholds above).
kf_emotion_band_t kf_emotion_band (double score);

//  Name of a band: "upset", "neutral", "positive".
const char *kf_emotion_band_name (kf_emotion_band_t band);

//  An empathetic Chinese reply prefix for `score`, static text the caller puts before the answer:
//  below 0.15 (furious, swearing, threatening) a full apology and a promise of a person; below 0.30
//  an apology and urgency; below 0.40 (upset band) a short apology; "" (never NULL) otherwise.
//  Only for a reply that does hand the customer over.
const char *kf_emotion_reply (double score);

//  As kf_emotion_reply, but no band promises a person (below 0.15: a full apology and that the
//  bot is on it): the prefix for a turn that does not hand over, such as a ticket dialog's
//  question ("我要投诉，快递员态度很差" scores 0.07 and gets a ticket, not a person). Static text,
//  never NULL.
const char *kf_emotion_reply_no_transfer (double score);
#endif
