-- The job-ended events (ScoringJobCompleted / ScoringJobFailed) are published after the job row is marked ended. A
-- broker connection that drops in between would lose the event for good: nothing else publishes it. The finisher now
-- records here that the broker confirmed the event of the job's current end; the reconciler re-publishes the events of
-- jobs ended more than DispatchRecoveryGraceSeconds ago without it (docs/job-failures.md, "Job events").
ALTER TABLE scoring.jobs ADD COLUMN ended_event_sent_at timestamptz;

-- Jobs that ended before this column existed had their events published (or lost) long ago: not announced again.
UPDATE scoring.jobs SET ended_event_sent_at = finished_at WHERE state IN ('succeeded', 'failed');

CREATE INDEX jobs_unannounced_end_idx ON scoring.jobs (finished_at)
    WHERE state IN ('succeeded', 'failed') AND ended_event_sent_at IS NULL;

COMMENT ON COLUMN scoring.jobs.ended_event_sent_at IS 'When the broker confirmed the ScoringJobCompleted/ScoringJobFailed event of the job''s current end; null while it is still to be published (the reconciler re-publishes it) and for jobs that are not succeeded or failed. Reset by a retry.';
