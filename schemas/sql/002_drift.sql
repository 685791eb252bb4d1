-- Drift audits: reference profiles per model version, samples of what was scored, and audit reports.
-- Quartz's own tables (qrtz_*) are created by Quartz at start-up of the scheduler role, not here.

CREATE TABLE scoring.model_profiles (
    model_name     text        NOT NULL,
    model_version  integer     NOT NULL,
    source         text        NOT NULL,               -- the reference dataset the profile was built from
    row_count      bigint      NOT NULL,
    columns        jsonb       NOT NULL,               -- [ColumnProfile]: input features, then prediction columns
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_name, model_version),
    FOREIGN KEY (model_name, model_version) REFERENCES scoring.model_versions (model_name, version)
);

-- A few rows per scored chunk (jobs) or per few seconds (requests): inputs and predictions, column-major.
CREATE TABLE scoring.drift_samples (
    id             bigserial   PRIMARY KEY,
    model_name     text        NOT NULL,
    model_version  integer     NOT NULL,
    source         text        NOT NULL CHECK (source IN ('job', 'request')),
    sampled_at     timestamptz NOT NULL DEFAULT now(),
    row_count      integer     NOT NULL CHECK (row_count > 0),
    columns        jsonb       NOT NULL                -- {"column": [value, ...], ...}
);

CREATE INDEX drift_samples_by_model_time ON scoring.drift_samples (model_name, model_version, sampled_at);

CREATE TABLE scoring.drift_reports (
    id                uuid        PRIMARY KEY,
    model_name        text        NOT NULL,
    model_version     integer     NOT NULL,
    trigger           text        NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    row_count         bigint      NOT NULL,
    drifted           boolean     NOT NULL,
    events_published  boolean     NOT NULL DEFAULT false, -- false when drifted within the cooldown of an earlier event
    columns           jsonb       NOT NULL,               -- [ColumnDrift]
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX drift_reports_by_model_time ON scoring.drift_reports (model_name, created_at DESC);
