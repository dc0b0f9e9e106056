/*  pipeline_stages.h - the stages of a chat turn that live in their own files, for pipeline.c
    (private to the pipeline; the turn and its contract are in pipeline.h). */
#ifndef KF_PIPELINE_STAGES_H
#define KF_PIPELINE_STAGES_H
#include "workers/pipeline.h"

//  emotion_sensitive from the model needs the emotion score's agreement (the upset band) unless
//  the classifier is this sure: "现在有什么活动" reads upset to the model (什么), not to the lexicon
#define KF_STAGE_EMOTION_SURE 0.8
//  The intent confidence of a turn (or a clause) the rules relabel
#define KF_STAGE_RELABEL_CONFIDENCE 0.5

//  Stage intent (intent_stage.c): sets intent, intent_confidence, is_intent_explicit, sub_tasks
//  and query from the bot's classifier, or without one by rules: an explicit request for a
//  person, a message the chit-chat table knows, else knowledge_qa. "转人工" is transfer_to_human
//  either way. Needs the turn's emotion_score: a clause of a message with two requests that the
//  model reads as emotion_sensitive (below KF_STAGE_EMOTION_SURE) stays so only when the clause or
//  the message scores upset, else it is knowledge_qa (KF_STAGE_RELABEL_CONFIDENCE), as the message
//  alone would be (PROTOCOL.md 15.2). The whole message's emotion_sensitive is the route's to judge.
void kf_stage_intent (kf_turn_t *turn);

//  The sub_task of `turn` to look up for `route`: for the knowledge route the first knowledge or
//  business request, for empathy the first request that is not the emotion itself; sets the
//  turn's query to its clause. Nothing changes without sub_tasks or when none fits.
void kf_stage_intent_focus (kf_turn_t *turn);
#endif
