/*  intent_classifier.h - routes a customer message to one of a bot's intents (issue 5).
    Each intent is defined by example utterances plus optional keywords and patterns. Training turns
    the examples into character n-gram features (CJK unigrams, bigrams and trigrams, latin words,
    digit runs by length, first and last character) of kf_text_normalize'd text and fits a model:
    multinomial logistic regression (default; confidence is its softmax) or multinomial naive Bayes
    (confidence is its posterior at a temperature). Training the sample bot takes milliseconds.

    Rules beside the model:
    -   Built in: an explicit request for a person (转人工, 人工客服, 找真人, 真人客服, human agent,
        real person, a clause that is only 人工...) is always transfer_to_human with confidence 1,
        unless negated right before it (不用/不要/别/无需 转人工). Needs an intent of that name.
    -   Patterns override the model: "A" matches when the clause contains A, "A*B" when it contains
        A and later B (any number of '*'). Parts are normalized like messages, so 轉人工 matches
        转人工 and punctuation in a pattern is ignored. The first clause with a hit decides.
    -   Keywords are evidence, not overrides: each distinct keyword in a clause adds
        KF_INTENT_KEYWORD_BOOST to its intent's score (a keyword such as 物流 appears in policy
        questions as well as in lookups).

    Two requests in one message ("我要退货，顺便查下物流"): the message is split into clauses at
    ，。！？；,;!?~ and newlines, and at 顺便/另外/同时/顺带/and also (anywhere) and 还有/然后/再者 (at a
    clause start). When at least two clauses get different non-chitchat intents, each with
    confidence >= KF_INTENT_SUB_THRESHOLD, the result lists them as sub_tasks in message order.

    The result's intent: transfer_to_human when any clause asks for a person; with sub_tasks,
    emotion_sensitive when one of them is (an upset customer is handled as such, the request still
    in sub_tasks), else the first sub_task; otherwise a pattern hit, else the model's best over the
    whole message.

    Threads: after kf_intent_model_train the model is read-only; any number of threads may classify
    at once. Classify uses a fixed scratch on the stack (about 32 KB) and one heap allocation (the
    normalized copy from kf_text_normalize, freed before it returns). Messages longer than
    KF_INTENT_MAX_TEXT bytes are classified on their first KF_INTENT_MAX_TEXT bytes. */
#ifndef KF_INTENT_CLASSIFIER_H
#define KF_INTENT_CLASSIFIER_H
#include <stdbool.h>
#include <stddef.h>

#define KF_INTENT_MAX 16                //  Intents per bot
#define KF_INTENT_MAX_SUBTASKS 4
#define KF_INTENT_MAX_TEXT 1024         //  Bytes of a message that are classified
#define KF_INTENT_SUB_THRESHOLD 0.25
#define KF_INTENT_KEYWORD_BOOST 1.0

//  The default intents every bot gets (sample: deploy/sample-intents.jsonl)
#define KF_INTENT_CHITCHAT "chitchat"
#define KF_INTENT_KNOWLEDGE "knowledge_qa"
#define KF_INTENT_BUSINESS "business_query"
#define KF_INTENT_EMOTION "emotion_sensitive"
#define KF_INTENT_TRANSFER "transfer_to_human"
#define KF_INTENT_TICKET "ticket"

typedef struct _kf_intent_model_t kf_intent_model_t;

typedef enum { KF_INTENT_LOGREG = 0, KF_INTENT_NAIVE_BAYES } kf_intent_algo_t;

//  What decided the result
typedef enum { KF_INTENT_BY_MODEL = 0, KF_INTENT_BY_PATTERN, KF_INTENT_BY_OVERRIDE } kf_intent_source_t;

typedef struct {
    int intent;                         //  Index, -1 when the model has no intents
    const char *name;                   //  Borrowed from the model; "" when intent is -1
    double confidence;                  //  In [0, 1]
    kf_intent_source_t source;
    int sub_task_count;                 //  0, or 2..KF_INTENT_MAX_SUBTASKS
    int sub_tasks [KF_INTENT_MAX_SUBTASKS];         //  Intent indexes, message order, distinct
    double sub_confidence [KF_INTENT_MAX_SUBTASKS];
    size_t sub_offset [KF_INTENT_MAX_SUBTASKS];     //  Each sub_task's clause: byte offset and
    size_t sub_len [KF_INTENT_MAX_SUBTASKS];        //  length in the classified text, without
                                                    //  its delimiters and outer spaces
} kf_intent_result_t;

//  Creates an empty model. Never NULL.
kf_intent_model_t *kf_intent_model_new (kf_intent_algo_t algo);

//  Destroys the model and sets *self_p to NULL; NULL is fine.
void kf_intent_model_destroy (kf_intent_model_t **self_p);

//  Adds an intent with its examples, keywords and patterns (all copied; counts may be 0). Before
//  training only. Returns the intent's index, or -1 when there are KF_INTENT_MAX already or `name`
//  is taken.
int kf_intent_model_add (kf_intent_model_t *self, const char *name, const char **examples,
                         int example_count, const char **keywords, int keyword_count,
                         const char **patterns, int pattern_count);

//  Adds `count` examples (copied) to intent `name`, creating it (no keywords or patterns) when the
//  model lacks it. Before training only. They teach the intent's words, not its prior: naive Bayes
//  weighs the intents by the examples given to kf_intent_model_add. Returns the intent's index, or
//  -1 when it would be one too many.
int kf_intent_model_add_examples (kf_intent_model_t *self, const char *name,
                                  const char *const *examples, int count);

//  Adds a knowledge base's questions (copied) as knowledge_qa examples, at the weight of added
//  examples, except those the intents given so far claim: each question is classified by a model
//  trained on them, and one read as another intent (not chitchat) is left out, so a bot's own
//  examples keep their wording. Before training only. Returns how many were
//  added, or -1 when knowledge_qa would be one intent too many.
int kf_intent_model_add_questions (kf_intent_model_t *self, const char *const *questions, int count);

//  Adds the intents of a JSONL file: one {"intent", "examples", "keywords", "patterns"} object a
//  line. Returns the number of intents added, or -1 (with a message in `err`) when the file cannot
//  be read or a line is not such an object.
int kf_intent_model_load_jsonl (kf_intent_model_t *self, const char *path, char *err, size_t errlen);

//  Trains the model from the examples added. Once only. Returns 0, or -1 when there are no intents.
int kf_intent_model_train (kf_intent_model_t *self);

//  Number of intents; the name of one (NULL when out of range); the index of a name, or -1.
int kf_intent_model_count (const kf_intent_model_t *self);
const char *kf_intent_model_name (const kf_intent_model_t *self, int intent);
int kf_intent_model_find (const kf_intent_model_t *self, const char *name);

//  Number of distinct features the trained model knows.
int kf_intent_model_features (const kf_intent_model_t *self);

//  The text as the classifier's rules see it: kf_text_normalize'd, with greetings and thanks kept
//  as the marker words xhi, xthanks, xzaima, xplease (kf_text_normalize drops them as fillers).
//  A heap string the caller frees. Chit-chat tables match on this form.
char *kf_intent_text_normalize (const char *text, size_t len);

//  True when `text` (`len` bytes) explicitly asks for a person: the built-in override above, the
//  same with or without a model (a bot without intents is routed by rules).
bool kf_intent_is_transfer (const char *text, size_t len);

//  True when `text` names a person to talk to (人工, 真人, 客服人员, 经理, human, agent ...) in a
//  clause that does not negate it before (不用/不要/别/无需/不需要/不必/没必要/不想 ... 人工): the
//  evidence a transfer_to_human guessed by the model needs.
bool kf_intent_names_person (const char *text, size_t len);

//  Classifies UTF-8 `text` (`len` bytes) into `result`. The model must be trained.
void kf_intent_classify (const kf_intent_model_t *self, const char *text, size_t len,
                         kf_intent_result_t *result);

//  True when the caller judges clause `text` (`len` bytes of the raw message) upset; `arg` is
//  kf_intent_upset_t.arg.
typedef bool (kf_intent_upset_fn) (void *arg, const char *text, size_t len);

//  "Upset needs the lexicon's agreement" (PROTOCOL.md 15.2) for the clauses of a message with
//  two requests, which only the classifier sees. Borrowed for the call.
typedef struct {
    kf_intent_upset_fn *is_upset;       //  Asked about each clause the model reads as
    void *arg;                          //  emotion_sensitive below `sure`
    double sure;                        //  At or above this confidence the model stands alone
    const char *calm_intent;            //  What such a clause is instead, with this confidence
    double calm_confidence;             //  (NULL or no intent of the model: its next best)
} kf_intent_upset_t;

//  As kf_intent_classify, except that a clause the model (not a pattern) reads as
//  emotion_sensitive with confidence below `upset->sure`, and that `upset->is_upset` does not
//  judge upset, is `upset->calm_intent` at `upset->calm_confidence` instead (or, without that
//  intent, the model's next best for the clause at its confidence); sub_tasks are then chosen
//  from the clauses as usual, so a calm clause no longer makes the turn emotion_sensitive
//  ("黑洞是什么，顺便查下物流": knowledge_qa and business_query). The whole message's own intent
//  is left as the model says (the caller has the message's score). `upset` NULL:
//  kf_intent_classify.
void kf_intent_classify_checked (const kf_intent_model_t *self, const char *text, size_t len,
                                 const kf_intent_upset_t *upset, kf_intent_result_t *result);
#endif
