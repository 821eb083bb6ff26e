-- The terminal status a job's own run reported (the plugin binary's final
-- PATCH) while the run still went on: the job ends with it when its agent
-- sees the run end (Store.SettleJob). NULL: no report. Version 4.
ALTER TABLE jobs ADD COLUMN reported_status TEXT;
