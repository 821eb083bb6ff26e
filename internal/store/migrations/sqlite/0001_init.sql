-- synapse server schema, version 1 (SQLite). Times are Unix milliseconds; JSON is text.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    job_id      TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE TABLE plugins (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    category    TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE TABLE releases (
    id          INTEGER PRIMARY KEY,
    plugin_id   INTEGER NOT NULL REFERENCES plugins(id),
    version     TEXT NOT NULL,
    config      TEXT NOT NULL,
    debug       INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (plugin_id, version)
);
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    release_id      INTEGER NOT NULL REFERENCES releases(id),
    agent           TEXT NOT NULL,
    action          TEXT NOT NULL,
    params          TEXT NOT NULL,
    status          TEXT NOT NULL,
    progress_record TEXT,
    metrics_record  TEXT,
    result          TEXT,
    meta            TEXT,
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    completed_at    INTEGER,
    console_seq     INTEGER NOT NULL DEFAULT 0, -- the last console line's number
    console_closed  INTEGER NOT NULL DEFAULT 0 -- the agent has written the last line
);
CREATE INDEX jobs_created ON jobs (created_at, id);
CREATE TABLE console_lines (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    seq    INTEGER NOT NULL,
    line   TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
