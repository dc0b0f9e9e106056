-- 011_answer.sql - how surely each bot answers from its knowledge base: the precision its answers
-- aim at (the threshold then comes from its own questions, PROTOCOL.md 12.6) and how many "did
-- you mean" items it offers when it does not answer. JSON like bots.handoff; '{}' keeps the
-- defaults (target_precision 0.9, suggestions 3).

ALTER TABLE bots ADD COLUMN answer TEXT NOT NULL DEFAULT '{}';
