-- The fields (progress_record, metrics_record, result, meta, as one JSON
-- object) of the final report a job's own run made while it still went on
-- (reported_status): held apart, applied when its agent sees the run end
-- (Store.SettleJob), discarded when the job is stopped. NULL: no report.
-- Version 7 (version 6 is the agents table).
ALTER TABLE jobs ADD COLUMN report TEXT;
