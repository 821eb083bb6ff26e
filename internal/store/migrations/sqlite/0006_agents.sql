-- Agents by name: an agent's ID is assigned once per name and kept, so
-- reordering or removing --agent flags never points a job at another
-- agent. Version 6.
CREATE TABLE agents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
