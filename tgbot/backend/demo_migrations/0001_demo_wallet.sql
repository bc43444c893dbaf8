-- The demo wallet (tgbot.backend.demo) in its own database, never the bot's: the tables
-- the bot's migrations 0003 and 0008 used to make there (prefixed demo_, dropped there by
-- 0011). Amounts are Decimal strings (TEXT), timestamps unix seconds (REAL). No password,
-- full card number or one-time code is ever stored in clear (codes are salted hashes).

-- Key/value facts about the demo data, e.g. when it was seeded, the card-hash pepper.
CREATE TABLE demo_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE demo_accounts (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    phone         TEXT NOT NULL UNIQUE,               -- E.164
    status        TEXT NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'locked', 'frozen')),
    locked_reason TEXT,
    frozen_reason TEXT,
    balance       TEXT NOT NULL DEFAULT '0',
    password_changed_at REAL,                         -- when the reset page was used
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);

CREATE TABLE demo_cards (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES demo_accounts (id),
    bank       TEXT NOT NULL,
    last4      TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('debit', 'credit')),
    card_hash  TEXT NOT NULL UNIQUE,                  -- keyed hash of the number, never the number
    bound_at   REAL NOT NULL
);
CREATE INDEX demo_cards_account ON demo_cards (account_id, bound_at);

CREATE TABLE demo_transactions (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES demo_accounts (id),
    created_at      REAL NOT NULL,
    amount          TEXT NOT NULL,
    currency        TEXT NOT NULL,
    merchant        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN
                    ('success', 'processing', 'failed', 'refunded', 'partially_refunded')),
    refunded_amount TEXT NOT NULL DEFAULT '0',
    kind            TEXT NOT NULL DEFAULT 'payment' CHECK (kind IN ('payment', 'transfer', 'topup')),
    failure_reason  TEXT,
    refundable      INTEGER NOT NULL DEFAULT 1 CHECK (refundable IN (0, 1))  -- merchant rules
);
CREATE INDEX demo_transactions_account_time ON demo_transactions (account_id, created_at DESC);

-- The current one-time code of an account (a new one replaces it).
CREATE TABLE demo_codes (
    account_id TEXT PRIMARY KEY REFERENCES demo_accounts (id),
    code_hash  TEXT NOT NULL,                         -- sha256(salt || code), hex
    salt       TEXT NOT NULL,
    sent_at    REAL NOT NULL,
    expires_at REAL NOT NULL,
    failed_tries INTEGER NOT NULL DEFAULT 0,
    used_at    REAL
);

-- Text messages "sent" by the wallet, shown on the sandbox page.
CREATE TABLE demo_sms (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    phone      TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX demo_sms_phone ON demo_sms (phone, id);

-- One-time tokens: app deep links (kind 'link'), password-reset pages (kind 'reset').
CREATE TABLE demo_tokens (
    token      TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('link', 'reset')),
    account_id TEXT NOT NULL REFERENCES demo_accounts (id),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at    REAL,
    used_by    INTEGER                                -- Telegram user id for 'link'
);

CREATE TABLE demo_bindings (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES demo_accounts (id),
    session     TEXT NOT NULL UNIQUE,                 -- the secure page's one-time session
    status      TEXT NOT NULL CHECK (status IN
                ('waiting_for_card', 'awaiting_deposit', 'bound', 'failed')),
    reason      TEXT,
    bank        TEXT,
    last4       TEXT,
    kind        TEXT,
    card_hash   TEXT,
    card_id     TEXT,
    deposit     TEXT,                                 -- the micro-deposit amount (CNY)
    tries_left  INTEGER NOT NULL DEFAULT 3,
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,                        -- for entering the card on the page
    updated_at  REAL NOT NULL
);
CREATE INDEX demo_bindings_account ON demo_bindings (account_id);

CREATE TABLE demo_refunds (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES demo_accounts (id),
    transaction_id TEXT NOT NULL REFERENCES demo_transactions (id),
    amount         TEXT NOT NULL,
    currency       TEXT NOT NULL,
    reason         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN
                   ('submitted', 'reviewing', 'approved', 'rejected', 'refunded')),
    note           TEXT,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL                      -- when the status last changed
);
CREATE INDEX demo_refunds_account ON demo_refunds (account_id, created_at DESC);
CREATE INDEX demo_refunds_updated ON demo_refunds (updated_at);

-- Results of mutating calls by idempotency key: a repeated key returns the stored result.
CREATE TABLE demo_idempotency (
    operation   TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,                        -- hash of the request's arguments
    result      TEXT NOT NULL,                        -- JSON
    created_at  REAL NOT NULL,
    PRIMARY KEY (operation, key)
);

-- The refund change feed (docs/wallet-api.md, "Refund notices"): the demo wallet logs every
-- status change of a refund, so the feed lists each one (no status is skipped between two
-- polls) and pages through them with a cursor (the change's seq).
CREATE TABLE demo_refund_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_id  TEXT NOT NULL REFERENCES demo_refunds (id),
    status     TEXT NOT NULL,
    changed_at REAL NOT NULL                          -- when the refund reached this status
);
CREATE INDEX demo_refund_changes_time ON demo_refund_changes (changed_at);
