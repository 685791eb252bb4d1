-- Recurring scoring jobs. The schedules themselves (cron, time zone, job template) live in Quartz's clustered store
-- (qrtz_job_details / qrtz_cron_triggers, group 'schedules:<tenant>', migration 009), so every scheduler instance
-- fires each one once. This table records each fire: the fire time the input placeholders were filled from, and
-- the job it submitted, or why it submitted none (a missing input, an unknown model).

CREATE TABLE scoring.schedule_runs (
    id             uuid        PRIMARY KEY,
    tenant         text        NOT NULL,
    schedule_name  text        NOT NULL,
    -- One row per fire: a fire that Quartz recovers after a scheduler crash finds its row (and its job) again.
    fire_key       text        NOT NULL UNIQUE,
    kind           text        NOT NULL CHECK (kind IN ('cron', 'run-now', 'missed')),
    fire_time      timestamptz NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    state          text        NOT NULL DEFAULT 'submitting' CHECK (state IN ('submitting', 'submitted', 'failed')),
    job_id         uuid        NULL REFERENCES scoring.jobs (id) ON DELETE SET NULL,
    model_version  integer     NULL,
    input          text        NULL,
    error          text        NULL
);

CREATE INDEX schedule_runs_schedule_idx ON scoring.schedule_runs (tenant, schedule_name, started_at DESC);

COMMENT ON TABLE scoring.schedule_runs IS
    'Fires of recurring scoring jobs (batchscore schedules): the fire time, and the job submitted or the reason none was.';
COMMENT ON COLUMN scoring.schedule_runs.fire_key IS 'Identifies the fire: tenant/schedule@fire time (cron) or the run-now trigger; the job''s idempotency key derives from it.';
COMMENT ON COLUMN scoring.schedule_runs.fire_time IS 'The fire time the placeholders ({date:…}) were filled from, in UTC.';
COMMENT ON COLUMN scoring.schedule_runs.state IS 'submitting, submitted (the job''s own state is the run''s outcome), or failed (no job; error says why).';
COMMENT ON COLUMN scoring.schedule_runs.job_id IS 'The job this fire submitted (scoring.jobs), null when none was.';
