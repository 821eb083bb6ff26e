-- How far into its agent's output a job's console log has been read
-- (bytes), written with the lines in one transaction, so an agent that
-- re-attaches after a restart resumes exactly there. Version 3.
ALTER TABLE jobs ADD COLUMN console_offset BIGINT NOT NULL DEFAULT 0;
