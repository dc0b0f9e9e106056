-- 002_lifecycle.sql - closing sessions (reason, satisfaction) and feedback on answers (issue 3).

ALTER TABLE sessions ADD COLUMN close_reason INTEGER;      -- 1 ended, 2 transferred to a human, 3 idle
ALTER TABLE sessions ADD COLUMN satisfaction INTEGER;      -- 1 satisfied, 2 neutral, 3 not satisfied
ALTER TABLE sessions ADD COLUMN bot2human_reason INTEGER;  -- 1-5, with close_reason 2
ALTER TABLE sessions ADD COLUMN closed_at INTEGER;         -- Unix ms
CREATE INDEX sessions_open ON sessions (state, updated_at);

ALTER TABLE turns ADD COLUMN feedback TEXT;                -- like, dislike, or NULL
ALTER TABLE turns ADD COLUMN feedback_content TEXT;
ALTER TABLE turns ADD COLUMN feedback_at INTEGER;          -- Unix ms
