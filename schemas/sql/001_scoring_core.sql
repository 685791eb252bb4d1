-- BatchScoring core schema: model registry, jobs, chunks, failed rows, analyst role.
-- Applied by BatchScoring.Data.DatabaseMigrator (in one transaction, recorded in
-- scoring.schema_migrations). Result tables (scoring.results_*) are created at run time
-- by ResultTable.EnsureCreatedAsync because their columns depend on the model.

CREATE SCHEMA IF NOT EXISTS scoring;

-- Model registry ------------------------------------------------------------------------

CREATE TABLE scoring.model_versions (
    model_name    text        NOT NULL,
    version       integer     NOT NULL CHECK (version > 0),
    sha256        text        NOT NULL,
    storage_path  text        NOT NULL,
    signature     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_name, version)
);

CREATE TABLE scoring.model_aliases (
    model_name  text        NOT NULL,
    alias       text        NOT NULL,
    version     integer     NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_name, alias),
    FOREIGN KEY (model_name, version) REFERENCES scoring.model_versions (model_name, version)
);

-- Jobs and chunks -----------------------------------------------------------------------

CREATE TABLE scoring.jobs (
    id                       uuid             PRIMARY KEY,
    idempotency_key          text             NULL UNIQUE,
    state                    text             NOT NULL DEFAULT 'queued'
                             CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    model_name               text             NOT NULL,
    model_version            integer          NOT NULL,
    model_sha256             text             NOT NULL,
    input_uri                text             NOT NULL,
    input_format             text             NOT NULL,
    key_column               text             NOT NULL,
    passthrough_columns      text[]           NOT NULL DEFAULT '{}',
    feature_columns          text[]           NULL,
    output_table             text             NULL,
    output_parquet           text             NULL,
    batch_size               integer          NOT NULL,
    chunk_size               integer          NOT NULL,
    allow_non_finite         boolean          NOT NULL DEFAULT false,
    error_threshold_rows     bigint           NULL,
    error_threshold_percent  double precision NULL,
    total_rows               bigint           NOT NULL DEFAULT 0,
    scored_rows              bigint           NOT NULL DEFAULT 0,
    failed_rows              bigint           NOT NULL DEFAULT 0,
    chunks_total             integer          NOT NULL DEFAULT 0,
    chunks_done              integer          NOT NULL DEFAULT 0,
    chunks_failed            integer          NOT NULL DEFAULT 0,
    error                    text             NULL,
    created_at               timestamptz      NOT NULL DEFAULT now(),
    started_at               timestamptz      NULL,
    finished_at              timestamptz      NULL,
    updated_at               timestamptz      NOT NULL DEFAULT now()
);

CREATE INDEX jobs_state_created_at_idx ON scoring.jobs (state, created_at);
CREATE INDEX jobs_model_name_created_at_idx ON scoring.jobs (model_name, created_at);

CREATE TABLE scoring.chunks (
    job_id       uuid        NOT NULL REFERENCES scoring.jobs (id) ON DELETE CASCADE,
    chunk_index  integer     NOT NULL,
    source_path  text        NOT NULL,
    row_group    integer     NULL,
    row_start    bigint      NOT NULL,
    row_count    bigint      NOT NULL,
    -- CSV chunks: byte offset of the chunk's first row, so a worker seeks straight to it.
    byte_offset  bigint      NOT NULL DEFAULT 0,
    state        text        NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'succeeded', 'failed')),
    attempts     integer     NOT NULL DEFAULT 0,
    scored_rows  bigint      NOT NULL DEFAULT 0,
    failed_rows  bigint      NOT NULL DEFAULT 0,
    worker       text        NULL,
    error        text        NULL,
    started_at   timestamptz NULL,
    finished_at  timestamptz NULL,
    PRIMARY KEY (job_id, chunk_index)
);

-- Rows that could not be scored (poison rows), for jobs (job_id, chunk_index) and for
-- score requests (request_id). No foreign key: request rows have no job.
CREATE TABLE scoring.failed_rows (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       uuid        NULL,
    request_id   text        NULL,
    chunk_index  integer     NULL,
    row_number   bigint      NOT NULL,
    row_key      text        NULL,
    column_name  text        NULL,
    reason       text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX failed_rows_job_id_idx ON scoring.failed_rows (job_id, chunk_index);
CREATE INDEX failed_rows_request_id_idx ON scoring.failed_rows (request_id) WHERE request_id IS NOT NULL;

-- Read-only role for analysts -------------------------------------------------------------
-- Roles are cluster-wide: another database of the same cluster may create it concurrently,
-- and the migrating user may lack CREATEROLE. Both cases are tolerated; grants are skipped
-- (with a notice) when the role does not exist.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'scoring_reader') THEN
        BEGIN
            CREATE ROLE scoring_reader NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                RAISE NOTICE 'role scoring_reader was created concurrently';
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'no privilege to create role scoring_reader; analyst grants skipped';
        END;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'scoring_reader') THEN
        GRANT USAGE ON SCHEMA scoring TO scoring_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA scoring TO scoring_reader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA scoring GRANT SELECT ON TABLES TO scoring_reader;
    END IF;
END
$$;
