-- Security-notice broadcasts and their per-recipient delivery state.
CREATE TABLE broadcasts (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    created_by          INTEGER NOT NULL,
    audience            TEXT    NOT NULL CHECK (audience IN ('all', 'zh_Hans', 'en')),
    text_zh             TEXT,
    text_en             TEXT,
    link_url            TEXT,
    status              TEXT    NOT NULL DEFAULT 'draft'
                        CHECK (status IN ('draft', 'awaiting_approval', 'running', 'paused',
                                          'cancelled', 'done', 'rejected')),
    approved_by         INTEGER,
    round               INTEGER NOT NULL DEFAULT 0,  -- bumped on resume (new dedupe keys)
    total               INTEGER NOT NULL DEFAULT 0,
    created_at          REAL    NOT NULL,
    started_at          REAL,
    finished_at         REAL,
    recalled_at         REAL,
    progress_chat_id    INTEGER,
    progress_message_id INTEGER
);
CREATE INDEX broadcasts_status ON broadcasts (status);

CREATE TABLE broadcast_recipients (
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id),
    user_id      INTEGER NOT NULL,
    language     TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'queued', 'sent', 'failed', 'blocked', 'cancelled')),
    message_id   INTEGER,
    PRIMARY KEY (broadcast_id, user_id)
) WITHOUT ROWID;
CREATE INDEX broadcast_recipients_status ON broadcast_recipients (broadcast_id, status, user_id);
