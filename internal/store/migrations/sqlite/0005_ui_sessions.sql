-- Dashboard (/ui/) sessions: only the SHA-256 of the session ID (the
-- cookie's value) is kept, with the access token that signed in (a
-- revoked token ends its sessions) and when the session ends. Version 4.
CREATE TABLE ui_sessions (
    hash        TEXT PRIMARY KEY,
    token_id    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);
