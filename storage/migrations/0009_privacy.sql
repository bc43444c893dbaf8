-- Privacy: whose each stored update is, and the users' deletion requests (erasures).

-- The inbox says whose an update is in columns computed from the stored payload (VIRTUAL:
-- nothing extra is written), so deleting or purging a user's updates works by user and
-- chat id whatever the payload keeps, as long as it keeps Telegram's shape (a replay needs
-- it). A blanked payload ({"update_id": N}) belongs to nobody.
ALTER TABLE inbox ADD COLUMN user_id INTEGER GENERATED ALWAYS AS (
    CASE WHEN json_valid(payload) THEN COALESCE(
        json_extract(payload, '$.message.from.id'),
        json_extract(payload, '$.edited_message.from.id'),
        json_extract(payload, '$.callback_query.from.id'),
        json_extract(payload, '$.my_chat_member.from.id'),
        json_extract(payload, '$.chat_member.from.id'),
        json_extract(payload, '$.chat_join_request.from.id'),
        json_extract(payload, '$.message_reaction.user.id'),
        json_extract(payload, '$.inline_query.from.id'),
        json_extract(payload, '$.chosen_inline_result.from.id'),
        json_extract(payload, '$.shipping_query.from.id'),
        json_extract(payload, '$.pre_checkout_query.from.id'),
        json_extract(payload, '$.poll_answer.user.id'),
        json_extract(payload, '$.business_message.from.id'),
        json_extract(payload, '$.edited_business_message.from.id')
    ) END
) VIRTUAL;
ALTER TABLE inbox ADD COLUMN chat_id INTEGER GENERATED ALWAYS AS (
    CASE WHEN json_valid(payload) THEN COALESCE(
        json_extract(payload, '$.message.chat.id'),
        json_extract(payload, '$.edited_message.chat.id'),
        json_extract(payload, '$.callback_query.message.chat.id'),
        json_extract(payload, '$.my_chat_member.chat.id'),
        json_extract(payload, '$.chat_member.chat.id'),
        json_extract(payload, '$.chat_join_request.chat.id'),
        json_extract(payload, '$.message_reaction.chat.id'),
        json_extract(payload, '$.channel_post.chat.id'),
        json_extract(payload, '$.edited_channel_post.chat.id'),
        json_extract(payload, '$.business_message.chat.id'),
        json_extract(payload, '$.edited_business_message.chat.id')
    ) END
) VIRTUAL;
-- The forum topic of an update in an agents' group (agents' replies in a user's ticket).
ALTER TABLE inbox ADD COLUMN thread_id INTEGER GENERATED ALWAYS AS (
    CASE WHEN json_valid(payload) THEN COALESCE(
        json_extract(payload, '$.message.message_thread_id'),
        json_extract(payload, '$.edited_message.message_thread_id'),
        json_extract(payload, '$.callback_query.message.message_thread_id')
    ) END
) VIRTUAL;
CREATE INDEX inbox_user ON inbox (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX inbox_chat ON inbox (chat_id, thread_id) WHERE chat_id IS NOT NULL;
-- Retention: handled updates whose contents are still kept (a blanked one has no owner).
CREATE INDEX inbox_kept ON inbox (done_at)
    WHERE done_at IS NOT NULL AND (user_id IS NOT NULL OR chat_id IS NOT NULL);

-- A user's request to delete their data: a job that survives restarts. Its steps are
-- idempotent; ``step`` says where it stands. When it is done it keeps no link to the person:
-- user_id and language are cleared, only what was erased (counts) and when stay.
CREATE TABLE erasures (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER,                      -- NULL once done
    language     TEXT,                         -- to tell the user; NULL once done
    reason       TEXT    NOT NULL CHECK (reason IN ('request', 'inactive')),
    step         TEXT    NOT NULL,
    requested_at REAL    NOT NULL,
    finished_at  REAL,
    counts       TEXT    NOT NULL DEFAULT '{}' -- what was erased, by kind (never content)
);
CREATE UNIQUE INDEX erasures_running ON erasures (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX erasures_unfinished ON erasures (id) WHERE step != 'done';

-- The bot's own posts in agents' topics that carried the user's data (relayed messages,
-- ticket header cards), collected before the records go, to delete them from Telegram.
CREATE TABLE erasure_posts (
    erasure_id INTEGER NOT NULL REFERENCES erasures (id),
    chat_id    INTEGER NOT NULL,
    thread_id  INTEGER,
    message_id INTEGER NOT NULL,
    outcome    TEXT CHECK (outcome IN ('deleted', 'kept')),  -- NULL: not tried yet
    PRIMARY KEY (erasure_id, chat_id, message_id)
) WITHOUT ROWID;

-- The user's ticket topics: renamed (their name carried the user's first name), told that
-- the data was deleted at the user's request, and closed.
CREATE TABLE erasure_topics (
    erasure_id INTEGER NOT NULL REFERENCES erasures (id),
    chat_id    INTEGER NOT NULL,
    thread_id  INTEGER NOT NULL,
    name       TEXT    NOT NULL,               -- the new name, without the user's name
    done       INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    PRIMARY KEY (erasure_id, chat_id, thread_id)
) WITHOUT ROWID;

-- Retention of closed tickets: transcripts and comments go after a number of days.
CREATE INDEX tickets_closed ON tickets (closed_at) WHERE status = 'closed' AND user_id > 0;
-- Retention of self-service questions and refund references.
CREATE INDEX answers_kept ON answers (created_at) WHERE user_id > 0;
CREATE INDEX refunds_updated ON refunds (updated_at);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX users_last_seen ON users (last_seen_at);
-- A user's actions in the audit log (export, erasure).
CREATE INDEX audit_log_actor ON audit_log (actor_id) WHERE actor_id IS NOT NULL;
