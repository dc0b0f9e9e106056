-- 013_counters.sql - ids that are never handed out twice, kept past the rows that held them:
-- deleted conversations are purged, and a restart must not start message ids at max(id) + 1
-- below ids that clients were given (PROTOCOL.md 4.0).

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) SELECT 'next_message_id', coalesce (max (id), 0) + 1 FROM turns;
