-- Per-chunk stage timings (docs/job-timing.md): seconds this chunk's successful attempt spent in each stage, summed
-- per job by the status API. Stored on the chunk row, in the chunk's commit, so the sums survive restarts and a
-- redelivered chunk is counted once.
ALTER TABLE scoring.chunks
    ADD COLUMN read_seconds    double precision NOT NULL DEFAULT 0,
    ADD COLUMN convert_seconds double precision NOT NULL DEFAULT 0,
    ADD COLUMN infer_seconds   double precision NOT NULL DEFAULT 0,
    ADD COLUMN copy_seconds    double precision NOT NULL DEFAULT 0,
    ADD COLUMN parquet_seconds double precision NOT NULL DEFAULT 0,
    ADD COLUMN wait_seconds    double precision NOT NULL DEFAULT 0;

COMMENT ON COLUMN scoring.chunks.read_seconds IS 'Seconds the committed attempt spent reading the chunk''s rows from the input.';
COMMENT ON COLUMN scoring.chunks.convert_seconds IS 'Seconds spent converting: input columns to model tensors and model outputs to result rows.';
COMMENT ON COLUMN scoring.chunks.infer_seconds IS 'Seconds spent in ONNX Runtime (model runs).';
COMMENT ON COLUMN scoring.chunks.copy_seconds IS 'Seconds spent COPYing result and failed rows into PostgreSQL.';
COMMENT ON COLUMN scoring.chunks.parquet_seconds IS 'Seconds spent writing the chunk''s Parquet part file(s).';
COMMENT ON COLUMN scoring.chunks.wait_seconds IS 'Seconds the chunk''s message waited in the queue: from sent to the worker starting it.';

-- `GET /api/jobs/{id}?wait=` (long polling) LISTENs on this channel: a notice on commit whenever a job's state or
-- counters change (payload: the job id). The job row, not the notice, is the source: a waiter re-reads it.
CREATE FUNCTION scoring.jobs_notify_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('batchscoring_job_changed', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_changed AFTER UPDATE ON scoring.jobs
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state
          OR OLD.chunks_done IS DISTINCT FROM NEW.chunks_done
          OR OLD.chunks_failed IS DISTINCT FROM NEW.chunks_failed
          OR OLD.scored_rows IS DISTINCT FROM NEW.scored_rows
          OR OLD.failed_rows IS DISTINCT FROM NEW.failed_rows)
    EXECUTE FUNCTION scoring.jobs_notify_changed();
