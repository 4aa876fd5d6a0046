-- Named admin accounts with a role, their personal API tokens, and the
-- admin page's sessions (in the database, so every instance shares them and
-- a restart keeps them). Tokens and session ids are kept only as SHA-256.
CREATE TABLE accounts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    email          TEXT    NOT NULL UNIQUE,   -- lower case
    role           TEXT    NOT NULL,          -- admin | coordinator | viewer
    password_hash  TEXT,                      -- Argon2 PHC string: break-glass sign-in
    disabled_at    BIGINT,
    created_at     BIGINT  NOT NULL,
    created_by     TEXT    NOT NULL
);

CREATE TABLE api_tokens (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     BIGINT  NOT NULL REFERENCES accounts (id),
    name           TEXT    NOT NULL,
    token_sha256   TEXT    NOT NULL UNIQUE,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    revoked_at     BIGINT,
    last_used_at   BIGINT
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

-- account_id is NULL for a sign-in with the configured shared credential
-- (admin_token or admin_password_hash), which acts as an admin.
CREATE TABLE admin_sessions (
    id_sha256      TEXT    PRIMARY KEY,
    account_id     BIGINT  REFERENCES accounts (id),
    csrf           TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    last_seen_at   BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL       -- the absolute limit
);
CREATE INDEX admin_sessions_account ON admin_sessions (account_id);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);
