-- Dispatch recovery: a job's chunk messages are sent after the job is recorded, so a process that dies in
-- between leaves a job with nothing queued. dispatched_at is set once the broker confirmed the messages; the
-- scheduler role re-sends the pending chunks of jobs that stay undispatched past a grace period.

ALTER TABLE scoring.jobs ADD COLUMN dispatched_at timestamptz NULL;

-- Jobs recorded before this migration were dispatched by the code that recorded them.
UPDATE scoring.jobs SET dispatched_at = COALESCE(started_at, created_at);

CREATE INDEX jobs_undispatched_idx ON scoring.jobs (updated_at) WHERE dispatched_at IS NULL AND state IN ('queued', 'running');
