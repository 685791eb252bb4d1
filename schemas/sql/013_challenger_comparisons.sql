-- Champion / challenger jobs (docs/challenger.md). The challenger itself is part of the job's plan (jobs.plan ->
-- 'challenger'); its rows go to the result table <output_table>_challenger and the Parquet folder challenger/.
--
-- 1. What each chunk compared, written in the chunk's own commit (with its result rows), so a redelivered chunk adds
--    nothing twice and the finisher only merges. |champion - challenger| of the primary score is kept as a mergeable
--    log-bucket histogram (relative accuracy 0.5%, see ScoreDifferenceSketch): bucket i holds values in
--    (gamma^(i-1), gamma^i] with gamma = 1.005/0.995; values below 1e-9 count as zero. The maximum is exact.

CREATE TABLE scoring.challenger_chunk_stats (
    job_id                  uuid             NOT NULL REFERENCES scoring.jobs (id) ON DELETE CASCADE,
    chunk_index             integer          NOT NULL,
    rows_compared           bigint           NOT NULL,
    challenger_failed_rows  bigint           NOT NULL,
    labels_compared         bigint           NOT NULL,
    labels_agreed           bigint           NOT NULL,
    diff_zero_count         bigint           NOT NULL,
    diff_buckets            integer[]        NOT NULL,
    diff_counts             bigint[]         NOT NULL,
    diff_max                double precision NULL,
    PRIMARY KEY (job_id, chunk_index)
);

COMMENT ON TABLE scoring.challenger_chunk_stats IS
    'Per chunk of a champion/challenger job: rows compared, label agreement and a histogram of |champion - challenger| (merged by the finisher into challenger_comparisons).';

-- 2. The comparison of a finished job (merged from its chunks when the job ends; written again if a retried job ends again).

CREATE TABLE scoring.challenger_comparisons (
    job_id                  uuid             PRIMARY KEY REFERENCES scoring.jobs (id) ON DELETE CASCADE,
    champion_model          text             NOT NULL,
    champion_version        integer          NOT NULL,
    challenger_model        text             NOT NULL,
    challenger_version      integer          NOT NULL,
    job_state               text             NOT NULL,
    rows_compared           bigint           NOT NULL,
    challenger_failed_rows  bigint           NOT NULL,
    labels_compared         bigint           NOT NULL,
    agreement_rate          double precision NULL,
    champion_score_column   text             NULL,
    challenger_score_column text             NULL,
    diff_p50                double precision NULL,
    diff_p90                double precision NULL,
    diff_p99                double precision NULL,
    diff_max                double precision NULL,
    realised_metrics        jsonb            NULL,
    computed_at             timestamptz      NOT NULL DEFAULT now()
);

CREATE INDEX challenger_comparisons_challenger_idx ON scoring.challenger_comparisons (challenger_model, challenger_version);

COMMENT ON TABLE scoring.challenger_comparisons IS
    'Champion vs challenger per finished job: rows compared, agreement rate (classifiers), quantiles of |champion - challenger| on the primary score, realised metrics when labels exist.';
