-- Human handoff: the agent roster, tickets, their transcripts and message-id maps.

-- Support agents (admins manage the roster; only roster agents can act or be relayed).
CREATE TABLE agents (
    user_id    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    added_by   INTEGER,
    added_at   REAL    NOT NULL,
    last_active_at REAL
);

-- One ticket per escalation; at most one open (open or claimed) ticket per user.
CREATE TABLE tickets (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    code              TEXT    NOT NULL UNIQUE,      -- short code shown to the user
    user_id           INTEGER NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'claimed', 'closed')),
    priority          INTEGER NOT NULL DEFAULT 0,   -- higher first
    language          TEXT    NOT NULL,
    context           TEXT    NOT NULL DEFAULT '{}',-- flow, step, transaction id... (JSON)
    group_chat_id     INTEGER,                      -- agents' group it is routed to
    thread_id         INTEGER,                      -- its forum topic (NULL until created)
    topic_generation  INTEGER NOT NULL DEFAULT 0,   -- bumped when the topic is recreated
    claimed_by        INTEGER,
    created_at        REAL    NOT NULL,
    claimed_at        REAL,
    first_response_at REAL,
    closed_at         REAL,
    closed_by         INTEGER,
    rating            INTEGER CHECK (rating BETWEEN 1 AND 5),
    rating_comment    TEXT,
    queue_message_id  INTEGER,                      -- the user's "you are number N" message
    queue_eta_minutes INTEGER,
    reminded_at       REAL,
    user_blocked      INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX tickets_one_open_per_user ON tickets (user_id) WHERE status != 'closed';
CREATE INDEX tickets_queue ON tickets (status, priority, created_at);
CREATE INDEX tickets_topic ON tickets (group_chat_id, thread_id);
CREATE INDEX tickets_user ON tickets (user_id, closed_at);

-- Transcript and message-id map: every relayed message is stored before it is sent.
CREATE TABLE ticket_messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id        INTEGER NOT NULL REFERENCES tickets (id),
    direction        TEXT    NOT NULL CHECK (direction IN ('in', 'out', 'note', 'system')),
    sender_id        INTEGER,
    kind             TEXT    NOT NULL,              -- text, photo, document, voice, ...
    text             TEXT,                          -- text or caption, sensitive data masked
    user_message_id  INTEGER,                       -- the message in the user's chat
    group_message_id INTEGER,                       -- the message in the ticket's topic
    media_group_id   TEXT,
    outbox_id        INTEGER,                       -- NULL while waiting for the topic
    created_at       REAL    NOT NULL,
    sent_at          REAL
);
CREATE INDEX ticket_messages_ticket ON ticket_messages (ticket_id, id);
CREATE INDEX ticket_messages_user_map ON ticket_messages (ticket_id, user_message_id);
CREATE INDEX ticket_messages_group_map ON ticket_messages (ticket_id, group_message_id);

-- Agents' groups that Telegram moved to a new id (a group upgraded to a supergroup).
CREATE TABLE agent_group_moves (
    old_chat_id INTEGER PRIMARY KEY,
    new_chat_id INTEGER NOT NULL,
    moved_at    REAL    NOT NULL
);
