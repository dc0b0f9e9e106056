/*  pipeline_stages.h - the stages of a chat turn that live in their own files, for pipeline.c
    (private to the pipeline; the turn and its contract are in pipeline.h). */
#ifndef KF_PIPELINE_STAGES_H
#define KF_PIPELINE_STAGES_H
#include "workers/pipeline.h"

//  Stage intent (intent_stage.c): sets intent, intent_confidence, sub_tasks and query from the
//  bot's classifier, or without one by rules: an explicit request for a person, a message the
//  chit-chat table knows, else knowledge_qa. "转人工" is transfer_to_human either way.
void kf_stage_intent (kf_turn_t *turn);

//  The sub_task of `turn` to look up for `route`: for the knowledge route the first knowledge or
//  business request, for empathy the first request that is not the emotion itself; sets the
//  turn's query to its clause. Nothing changes without sub_tasks or when none fits.
void kf_stage_intent_focus (kf_turn_t *turn);
#endif
