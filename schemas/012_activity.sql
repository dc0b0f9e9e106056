-- 012_activity.sql - a session's last activity by the minute, for closing idle sessions. The
-- session row is updated with every answered turn; an index on its exact updated_at was rewritten
-- each time (two random pages per chat), while idle closing needs minutes only. active_minute
-- (updated_at / 60000) changes at most once a minute, and the broker writes it only then.
-- Conversations are listed by user in creation order (rowid): the user index needs no time.

ALTER TABLE sessions ADD COLUMN active_minute INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET active_minute = updated_at / 60000;
DROP INDEX sessions_open;
CREATE INDEX sessions_open ON sessions (state, active_minute);
DROP INDEX sessions_user;
CREATE INDEX sessions_user ON sessions (user_id);
