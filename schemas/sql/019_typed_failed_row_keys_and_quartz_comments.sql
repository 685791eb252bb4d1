-- 1. A failed row's key with its type: row_key is text (kept, for old readers and text search); row_key_json is the
--    same key as a JSON scalar, a number for an integer or float key column, a string for a text key, true/false for a
--    boolean, an ISO 8601 UTC string for a timestamp. One jsonb column rather than one column per type: the key
--    column of a job may have any of these kinds, and to_jsonb(r.<key>) = f.row_key_json joins failed rows to any
--    results table whatever its key type (docs/results.md). Null for rows recorded before this migration.

ALTER TABLE scoring.failed_rows ADD COLUMN IF NOT EXISTS row_key_json jsonb NULL;

COMMENT ON COLUMN scoring.failed_rows.row_key_json IS
    'The row''s key as a typed JSON scalar (number, string, boolean; timestamps as ISO 8601 UTC strings); join with to_jsonb(<key column>) = row_key_json. Null for rows recorded before migration 019.';

-- 2. The tables of Quartz.NET's job store (migration 009) say whose they are: an analyst listing the database finds
--    them next to the service's, unqualified in the first schema of the search path.

COMMENT ON TABLE qrtz_job_details IS 'Quartz.NET job store: the scheduler''s durable jobs (drift audit, dispatch recovery, performance report, one per job schedule).';
COMMENT ON TABLE qrtz_triggers IS 'Quartz.NET job store: every trigger with its next fire time and state (cron triggers of the drift audit, dispatch recovery and job schedules).';
COMMENT ON TABLE qrtz_simple_triggers IS 'Quartz.NET job store: repeat settings of simple triggers (unused by the service''s own schedules, which are cron).';
COMMENT ON TABLE qrtz_cron_triggers IS 'Quartz.NET job store: cron expression and time zone of each cron trigger (DriftOptions.Schedule, DispatchRecoverySchedule, job schedules).';
COMMENT ON TABLE qrtz_simprop_triggers IS 'Quartz.NET job store: properties of calendar-interval and daily-time-interval triggers (not used by the service).';
COMMENT ON TABLE qrtz_blob_triggers IS 'Quartz.NET job store: serialized custom triggers (not used by the service).';
COMMENT ON TABLE qrtz_calendars IS 'Quartz.NET job store: calendars that exclude fire times (not used by the service).';
COMMENT ON TABLE qrtz_paused_trigger_grps IS 'Quartz.NET job store: paused trigger groups (paused schedules).';
COMMENT ON TABLE qrtz_paused_job_grps IS 'Quartz.NET job store: paused job groups.';
COMMENT ON TABLE qrtz_fired_triggers IS 'Quartz.NET job store: fires in progress, per scheduler instance; a crashed instance''s fires are recovered from here.';
COMMENT ON TABLE qrtz_scheduler_state IS 'Quartz.NET job store: check-ins of each scheduler instance (clustering: an instance that stops checking in is taken for dead).';
COMMENT ON TABLE qrtz_locks IS 'Quartz.NET job store: row locks that serialize trigger acquisition across scheduler instances, so each run fires once.';
COMMENT ON TABLE qrtz_execution_history IS 'Quartz.NET job store: execution history (UseExecutionHistory; off in the service, created so turning it on needs no migration).';
COMMENT ON TABLE qrtz_misfire_history IS 'Quartz.NET job store: misfire history (with UseExecutionHistory; off in the service).';
COMMENT ON TABLE qrtz_job_status IS 'Quartz.NET job store: last run status per job (with UseExecutionHistory; off in the service).';
