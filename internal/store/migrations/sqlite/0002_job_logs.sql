-- Structured log entries of jobs (POST /logs/), version 2 (SQLite).
CREATE TABLE job_logs (
    id         INTEGER PRIMARY KEY,
    job_id     TEXT NOT NULL REFERENCES jobs(id),
    event      TEXT NOT NULL,
    data       TEXT NOT NULL,
    datetime   TEXT NOT NULL,
    level      TEXT NOT NULL DEFAULT '',
    step       TEXT NOT NULL DEFAULT '',
    file       TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE INDEX job_logs_job ON job_logs (job_id, id);
