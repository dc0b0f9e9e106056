-- 006_knowledge.sql - the knowledge base as operators edit it (issue 4): a category tree per bot,
-- rich answers, answers that differ by customer label, synonym groups that retrieval expands, and
-- rich content kept on the answers stored in history. JSON columns hold what the wire carries.

CREATE TABLE kb_categories (
    id          INTEGER PRIMARY KEY,
    bot_id      TEXT NOT NULL,
    parent_id   INTEGER NOT NULL DEFAULT 0,         -- 0: top level
    name        TEXT NOT NULL,
    position    INTEGER NOT NULL DEFAULT 0,         -- order among siblings
    enabled     INTEGER NOT NULL DEFAULT 1,         -- 0: items under it are never answered
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (bot_id, parent_id, name)
);
CREATE INDEX kb_categories_parent ON kb_categories (bot_id, parent_id, position);

ALTER TABLE kb_items ADD COLUMN category_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE kb_items ADD COLUMN response_type TEXT NOT NULL DEFAULT 'text';
ALTER TABLE kb_items ADD COLUMN response_content TEXT;             -- JSON, NULL for text
CREATE INDEX kb_items_category ON kb_items (bot_id, category_id);

CREATE TABLE kb_variants (                      -- answers for askers with given labels
    item_id          INTEGER NOT NULL REFERENCES kb_items (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    labels           TEXT NOT NULL,             -- JSON object of string -> string
    answer           TEXT NOT NULL,
    response_type    TEXT NOT NULL DEFAULT 'text',
    response_content TEXT,
    PRIMARY KEY (item_id, position)
);

CREATE TABLE kb_synonyms (
    id          INTEGER PRIMARY KEY,
    bot_id      TEXT NOT NULL,
    words       TEXT NOT NULL,                  -- JSON array; the first word is the canonical one
    updated_at  INTEGER NOT NULL
);
CREATE INDEX kb_synonyms_bot ON kb_synonyms (bot_id, id);

-- The flat category names of earlier versions become top-level categories
INSERT INTO kb_categories (bot_id, parent_id, name, position, enabled, created_at, updated_at)
    SELECT bot_id, 0, category, 0, 1, max (updated_at), max (updated_at)
    FROM kb_items WHERE category <> '' GROUP BY bot_id, category;
UPDATE kb_items SET category_id = (SELECT c.id FROM kb_categories c WHERE c.bot_id = kb_items.bot_id
                                   AND c.parent_id = 0 AND c.name = kb_items.category)
    WHERE category <> '';

ALTER TABLE turns ADD COLUMN response_content TEXT;                -- JSON of a rich answer
