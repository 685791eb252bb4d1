-- Chunk reconciler: every chunk reaches a terminal state. A chunk message can be lost (purged queue, broker loss) or
-- dead-lettered (retries exhausted while PostgreSQL was down); a worker can crash on a chunk again and again. The chunk
-- row records what the scheduler's reconciler needs to re-send such a chunk with backoff, or to fail it after its limits.

ALTER TABLE scoring.chunks
    -- Messages sent for the chunk (dispatch, reconciler, retry) and when the last one was sent.
    ADD COLUMN sends            integer     NOT NULL DEFAULT 0,
    ADD COLUMN sent_at          timestamptz NULL,
    -- Attempts that started but recorded no outcome (worker killed or stopped mid-chunk): a poison-message counter.
    ADD COLUMN open_attempts    integer     NOT NULL DEFAULT 0,
    -- Transient failures recorded by workers, the first one's time (the retry span starts there) and the last reason.
    ADD COLUMN failures         integer     NOT NULL DEFAULT 0,
    ADD COLUMN first_failed_at  timestamptz NULL,
    ADD COLUMN last_error       text        NULL,
    -- Set when a worker gave up on a transient failure: the reconciler re-sends the chunk from then on.
    ADD COLUMN next_attempt_at  timestamptz NULL;

-- Chunks recorded before this migration were sent when their job was dispatched.
UPDATE scoring.chunks AS c SET sends = 1, sent_at = j.dispatched_at
FROM scoring.jobs AS j WHERE j.id = c.job_id AND j.dispatched_at IS NOT NULL;

CREATE INDEX chunks_pending_idx ON scoring.chunks (job_id) WHERE state = 'pending';

-- Incremented by every retry of the job, so workers drop what they cached about the job's input and model before it.
ALTER TABLE scoring.jobs ADD COLUMN retries integer NOT NULL DEFAULT 0;
