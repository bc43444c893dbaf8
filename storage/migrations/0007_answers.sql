-- Self-service answers: each free-text question the router answered (or could not), what it
-- showed, and what the user did next (helpful, not helpful, asked a human). Admin stats
-- count these; the question text is kept so an escalation carries it into the ticket.
CREATE TABLE answers (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL,
    language    TEXT    NOT NULL,
    question    TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,              -- answered | candidates | unmatched
    article     TEXT,                          -- article shown (NULL: none yet)
    helpful     INTEGER,                       -- NULL: no feedback, 1: yes, 0: no
    ticket_id   INTEGER,                       -- ticket opened from this answer
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL
);
CREATE INDEX answers_created ON answers (created_at);
CREATE INDEX answers_user ON answers (user_id, created_at);
