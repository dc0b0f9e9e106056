-- 001_core.sql - sessions, turns and the FAQ knowledge base (kefu core service).
-- Applied once at broker start when PRAGMA user_version < 1. Times are Unix milliseconds.

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,           -- "s_" + 20 random hex digits
    user_id         TEXT NOT NULL DEFAULT '',
    channel         TEXT NOT NULL DEFAULT 'api',
    bot_id          TEXT NOT NULL DEFAULT 'default',
    state           TEXT NOT NULL DEFAULT 'open',
    turn_count      INTEGER NOT NULL DEFAULT 0, -- answered user messages
    failed_attempts INTEGER NOT NULL DEFAULT 0, -- consecutive messages without an answer
    labels          TEXT NOT NULL DEFAULT '{}', -- JSON object of user labels, last seen
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id, updated_at);

CREATE TABLE turns (
    id                INTEGER PRIMARY KEY,      -- message id, allocated by the broker, increasing
    session_id        TEXT NOT NULL REFERENCES sessions (id),
    role              TEXT NOT NULL,            -- user, assistant, agent, system
    content           TEXT NOT NULL,
    response_type     TEXT NOT NULL DEFAULT 'text',
    intent            TEXT,
    confidence        REAL,
    sources           TEXT,                     -- JSON array of knowledge items used
    suggestions       TEXT,                     -- JSON array of suggested questions
    status            TEXT NOT NULL DEFAULT 'ok', -- ok, pending (answer in progress), error
    latency_ms        INTEGER,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL
);
CREATE INDEX turns_session ON turns (session_id, id);

CREATE TABLE kb_items (
    id            INTEGER PRIMARY KEY,
    bot_id        TEXT NOT NULL DEFAULT 'default',
    external_id   TEXT,                         -- caller's id, makes imports idempotent
    category      TEXT NOT NULL DEFAULT '',
    question      TEXT NOT NULL,
    answer        TEXT NOT NULL,
    keywords      TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    status        INTEGER NOT NULL DEFAULT 1,   -- 1 on shelf, 0 off shelf
    updated_at    INTEGER NOT NULL,
    UNIQUE (bot_id, external_id)
);

CREATE TABLE kb_questions (                     -- similar questions, in order
    item_id   INTEGER NOT NULL REFERENCES kb_items (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    question  TEXT NOT NULL,
    PRIMARY KEY (item_id, position)
);

CREATE TABLE kb_meta (                          -- one row; workers poll version to reload
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO kb_meta (id, version) VALUES (1, 1);
