-- Initial schema. Timestamps are unix seconds (REAL); JSON columns are TEXT.

-- Everyone who ever wrote to the bot.
CREATE TABLE users (
    id                INTEGER PRIMARY KEY,          -- Telegram user id
    first_name        TEXT    NOT NULL,
    telegram_language TEXT,                         -- language_code Telegram reported
    language          TEXT,                         -- chosen with /language, wins over the above
    wallet_account_id TEXT,                         -- linked wallet account, never a phone number
    blocked           INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    created_at        REAL    NOT NULL,
    last_seen_at      REAL    NOT NULL
);
-- Broadcast recipients per language in id order (keyset pagination).
CREATE INDEX users_language_id ON users (language, id);

-- Who did what, for agents and admins.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       REAL    NOT NULL,
    actor_id INTEGER,
    action   TEXT    NOT NULL,
    target   TEXT,
    details  TEXT    NOT NULL DEFAULT '{}'
);

-- Durable inbox: an update is stored before it is handled, marked done after.
CREATE TABLE inbox (
    update_id   INTEGER PRIMARY KEY,
    payload     TEXT    NOT NULL,
    received_at REAL    NOT NULL,
    done_at     REAL
);
CREATE INDEX inbox_pending ON inbox (update_id) WHERE done_at IS NULL;
CREATE INDEX inbox_done_at ON inbox (done_at) WHERE done_at IS NOT NULL;

-- Durable outbox: a send is stored before it is attempted.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    lane            INTEGER NOT NULL,               -- 0 = highest priority
    chat_id         INTEGER NOT NULL,
    thread_id       INTEGER,
    method          TEXT    NOT NULL,
    params          TEXT    NOT NULL,
    kind            TEXT,
    ref             TEXT,
    dedupe_key      TEXT    UNIQUE,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL,
    created_at      REAL    NOT NULL,
    updated_at      REAL    NOT NULL,
    last_error      TEXT,
    result          TEXT
);
-- due(): pending rows in lane/id order; next_attempt_at and chat_id are in the index so
-- not-yet-due and excluded rows are skipped without table lookups. Partial: the index
-- is as small as the backlog, not the history.
CREATE INDEX outbox_due ON outbox (lane, id, next_attempt_at, chat_id) WHERE status = 'pending';
-- next_due_at(): earliest pending attempt.
CREATE INDEX outbox_next_attempt ON outbox (next_attempt_at) WHERE status = 'pending';
-- Progress and cancellation of one broadcast (kind + ref).
CREATE INDEX outbox_kind_ref ON outbox (kind, ref, status);
-- Pruning finished rows.
CREATE INDEX outbox_finished ON outbox (status, updated_at)
    WHERE status IN ('sent', 'cancelled');

-- PTB persistence (storage.persistence.SQLitePersistence). Values are tagged JSON.
CREATE TABLE ptb_user_data (
    user_id    INTEGER PRIMARY KEY,
    data       TEXT    NOT NULL,
    updated_at REAL    NOT NULL
);
CREATE TABLE ptb_chat_data (
    chat_id    INTEGER PRIMARY KEY,
    data       TEXT    NOT NULL,
    updated_at REAL    NOT NULL
);
-- bot_data and callback_data are single documents.
CREATE TABLE ptb_documents (
    name       TEXT PRIMARY KEY CHECK (name IN ('bot_data', 'callback_data')),
    data       TEXT NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
-- One row per running conversation; an ended conversation's row is deleted.
CREATE TABLE ptb_conversations (
    name       TEXT NOT NULL,                       -- ConversationHandler name
    key        TEXT NOT NULL,                       -- JSON array, e.g. [chat_id, user_id]
    state      TEXT NOT NULL,                       -- tagged JSON of the state
    updated_at REAL NOT NULL,                       -- last state change
    PRIMARY KEY (name, key)
) WITHOUT ROWID;
