-- Every table and column of schema scoring carries a COMMENT, so that an analyst's client (psql \d+, DBeaver, ...)
-- explains what it reads. Results tables, created at run time, get theirs from ResultTable (docs/results.md).

COMMENT ON TABLE scoring.schema_migrations IS 'Applied migrations of schemas/sql (one row per file), written by batchscore migrate.';
COMMENT ON COLUMN scoring.schema_migrations.version IS 'The file''s number (NNN of NNN_name.sql).';
COMMENT ON COLUMN scoring.schema_migrations.name IS 'The file''s name without number and extension.';
COMMENT ON COLUMN scoring.schema_migrations.applied_at IS 'When the migration was applied.';
COMMENT ON COLUMN scoring.schema_migrations.checksum IS 'SHA-256 (hex) of the file as applied (LF line endings); an edited file is refused.';

-- Model registry
COMMENT ON TABLE scoring.model_versions IS 'Registered ONNX model versions: one row per model name and version number.';
COMMENT ON COLUMN scoring.model_versions.model_name IS 'The model''s name (lower-case identifier).';
COMMENT ON COLUMN scoring.model_versions.version IS 'Version number, 1, 2, ... per model; never reused, even after deletion.';
COMMENT ON COLUMN scoring.model_versions.sha256 IS 'SHA-256 (hex) of the ONNX file.';
COMMENT ON COLUMN scoring.model_versions.storage_path IS 'Where the ONNX file is stored (model store path).';
COMMENT ON COLUMN scoring.model_versions.signature IS 'The model''s inputs and outputs (names, element types, shapes) as JSON.';
COMMENT ON COLUMN scoring.model_versions.created_at IS 'When the version was registered.';
COMMENT ON COLUMN scoring.model_versions.tenant IS 'The tenant owning the version.';
COMMENT ON COLUMN scoring.model_versions.archived_at IS 'When the version was archived (kept for lineage, no longer submittable); null when active.';
COMMENT ON COLUMN scoring.model_versions.archived_by IS 'Who archived the version (API key name).';

COMMENT ON TABLE scoring.model_aliases IS 'Named pointers (e.g. production) to one version of a model.';
COMMENT ON COLUMN scoring.model_aliases.model_name IS 'The model.';
COMMENT ON COLUMN scoring.model_aliases.alias IS 'The alias name (e.g. production, staging).';
COMMENT ON COLUMN scoring.model_aliases.version IS 'The version the alias points at.';
COMMENT ON COLUMN scoring.model_aliases.updated_at IS 'When the alias last moved.';

COMMENT ON TABLE scoring.model_alias_history IS 'Every move of a model alias, for audit and rollback.';
COMMENT ON COLUMN scoring.model_alias_history.id IS 'Row id, in order of moves.';
COMMENT ON COLUMN scoring.model_alias_history.model_name IS 'The model.';
COMMENT ON COLUMN scoring.model_alias_history.alias IS 'The alias that moved.';
COMMENT ON COLUMN scoring.model_alias_history.version IS 'The version the alias points at after the move.';
COMMENT ON COLUMN scoring.model_alias_history.previous_version IS 'The version before the move; null when the alias was created.';
COMMENT ON COLUMN scoring.model_alias_history.changed_at IS 'When the alias moved.';
COMMENT ON COLUMN scoring.model_alias_history.changed_by IS 'Who moved it (API key name, local, message).';
COMMENT ON COLUMN scoring.model_alias_history.forced IS 'True when the move overrode an incompatible signature.';

COMMENT ON TABLE scoring.deleted_model_versions IS 'Deleted model versions, kept so that their numbers are never handed out again.';
COMMENT ON COLUMN scoring.deleted_model_versions.model_name IS 'The model.';
COMMENT ON COLUMN scoring.deleted_model_versions.version IS 'The deleted version number.';
COMMENT ON COLUMN scoring.deleted_model_versions.tenant IS 'The tenant that owned the version.';
COMMENT ON COLUMN scoring.deleted_model_versions.sha256 IS 'SHA-256 (hex) of the deleted ONNX file.';
COMMENT ON COLUMN scoring.deleted_model_versions.created_at IS 'When the version had been registered.';
COMMENT ON COLUMN scoring.deleted_model_versions.deleted_at IS 'When it was deleted.';
COMMENT ON COLUMN scoring.deleted_model_versions.deleted_by IS 'Who deleted it (API key name).';

COMMENT ON COLUMN scoring.model_alias_canaries.model_name IS 'The model.';
COMMENT ON COLUMN scoring.model_alias_canaries.alias IS 'The alias whose traffic is split.';
COMMENT ON COLUMN scoring.model_alias_canaries.canary_version IS 'The version receiving the canary share.';
COMMENT ON COLUMN scoring.model_alias_canaries.canary_percent IS 'Share of score requests (by stable hash of the key) sent to the canary version, in percent.';
COMMENT ON COLUMN scoring.model_alias_canaries.started_at IS 'When the canary started.';

-- Jobs
COMMENT ON TABLE scoring.jobs IS 'Batch scoring jobs: what was scored with which model version, where the results went, and the outcome.';
COMMENT ON COLUMN scoring.jobs.id IS 'Job id (results tables: job_id).';
COMMENT ON COLUMN scoring.jobs.idempotency_key IS 'Client key: a second submit with the same key returns this job instead of a new one.';
COMMENT ON COLUMN scoring.jobs.state IS 'queued, running, succeeded, failed or cancelled; only rows of succeeded jobs are results to use (<table>_succeeded views).';
COMMENT ON COLUMN scoring.jobs.model_name IS 'The model scored with.';
COMMENT ON COLUMN scoring.jobs.model_version IS 'The model version scored with (resolved from an alias at submit time).';
COMMENT ON COLUMN scoring.jobs.model_sha256 IS 'SHA-256 (hex) of the ONNX file scored with.';
COMMENT ON COLUMN scoring.jobs.input_uri IS 'The input file or folder.';
COMMENT ON COLUMN scoring.jobs.input_format IS 'parquet or csv (or a SQL source).';
COMMENT ON COLUMN scoring.jobs.key_column IS 'The input column identifying a row (results tables keep it).';
COMMENT ON COLUMN scoring.jobs.passthrough_columns IS 'Input columns copied unchanged into the results.';
COMMENT ON COLUMN scoring.jobs.feature_columns IS 'Input columns fed to the model, in order; null when matched by name.';
COMMENT ON COLUMN scoring.jobs.output_table IS 'Results table (schema.table); null when only Parquet is written.';
COMMENT ON COLUMN scoring.jobs.output_parquet IS 'Parquet output folder; null when none.';
COMMENT ON COLUMN scoring.jobs.batch_size IS 'Rows per model call.';
COMMENT ON COLUMN scoring.jobs.chunk_size IS 'Rows per chunk (unit of work and of commit).';
COMMENT ON COLUMN scoring.jobs.allow_non_finite IS 'True when NaN/infinite features are scored instead of recorded as failed rows.';
COMMENT ON COLUMN scoring.jobs.error_threshold_rows IS 'The job fails when more rows than this failed; null: no limit by count.';
COMMENT ON COLUMN scoring.jobs.error_threshold_percent IS 'The job fails when more than this percentage of rows failed; null: no limit by share.';
COMMENT ON COLUMN scoring.jobs.total_rows IS 'Rows in the input.';
COMMENT ON COLUMN scoring.jobs.scored_rows IS 'Rows scored and written so far.';
COMMENT ON COLUMN scoring.jobs.failed_rows IS 'Rows that could not be scored (see scoring.failed_rows).';
COMMENT ON COLUMN scoring.jobs.chunks_total IS 'Chunks planned.';
COMMENT ON COLUMN scoring.jobs.chunks_done IS 'Chunks committed.';
COMMENT ON COLUMN scoring.jobs.chunks_failed IS 'Chunks that failed for good.';
COMMENT ON COLUMN scoring.jobs.error IS 'Why the job failed or was cancelled; null otherwise.';
COMMENT ON COLUMN scoring.jobs.created_at IS 'When the job was submitted.';
COMMENT ON COLUMN scoring.jobs.started_at IS 'When the first chunk started.';
COMMENT ON COLUMN scoring.jobs.finished_at IS 'When the job reached its final state.';
COMMENT ON COLUMN scoring.jobs.updated_at IS 'Last change of the row.';
COMMENT ON COLUMN scoring.jobs.dispatched_at IS 'When the broker confirmed the chunk messages; null: the scheduler re-sends them after a grace period.';
COMMENT ON COLUMN scoring.jobs.retries IS 'How many times jobs retry re-ran the job.';
COMMENT ON COLUMN scoring.jobs.tenant IS 'The tenant that submitted the job.';
COMMENT ON COLUMN scoring.jobs.request_sha256 IS 'Fingerprint of the submit request: reusing an idempotency key with another body is refused.';
COMMENT ON COLUMN scoring.jobs.plan IS 'The job''s full plan (options, challenger) as JSON.';

COMMENT ON TABLE scoring.chunks IS 'The chunks of each job: a slice of the input scored and committed as one unit.';
COMMENT ON COLUMN scoring.chunks.job_id IS 'The job.';
COMMENT ON COLUMN scoring.chunks.chunk_index IS 'Chunk number within the job, from 0.';
COMMENT ON COLUMN scoring.chunks.source_path IS 'The input file the chunk reads.';
COMMENT ON COLUMN scoring.chunks.row_group IS 'Parquet row group read; null for CSV.';
COMMENT ON COLUMN scoring.chunks.row_start IS 'First row of the chunk (within the row group or file).';
COMMENT ON COLUMN scoring.chunks.row_count IS 'Rows in the chunk.';
COMMENT ON COLUMN scoring.chunks.byte_offset IS 'CSV: byte offset of the first row; null for Parquet.';
COMMENT ON COLUMN scoring.chunks.state IS 'pending, succeeded or failed.';
COMMENT ON COLUMN scoring.chunks.attempts IS 'Times a worker started the chunk.';
COMMENT ON COLUMN scoring.chunks.scored_rows IS 'Rows scored by the committed attempt.';
COMMENT ON COLUMN scoring.chunks.failed_rows IS 'Rows that failed in the committed attempt.';
COMMENT ON COLUMN scoring.chunks.worker IS 'The worker that committed or last ran the chunk.';
COMMENT ON COLUMN scoring.chunks.error IS 'Why the chunk failed for good; null otherwise.';
COMMENT ON COLUMN scoring.chunks.started_at IS 'When the last attempt started.';
COMMENT ON COLUMN scoring.chunks.finished_at IS 'When the chunk was committed or failed.';
COMMENT ON COLUMN scoring.chunks.sends IS 'Times the chunk''s message was sent (first dispatch and reconciler re-sends).';
COMMENT ON COLUMN scoring.chunks.sent_at IS 'When the message was last sent.';
COMMENT ON COLUMN scoring.chunks.open_attempts IS 'Attempts started but not finished (a worker died or is running).';
COMMENT ON COLUMN scoring.chunks.failures IS 'Transient failures recorded by workers.';
COMMENT ON COLUMN scoring.chunks.first_failed_at IS 'When the first transient failure happened (the retry span starts there).';
COMMENT ON COLUMN scoring.chunks.last_error IS 'The last transient failure''s reason.';
COMMENT ON COLUMN scoring.chunks.next_attempt_at IS 'When the reconciler re-sends the chunk after a worker gave up on a transient failure.';

COMMENT ON TABLE scoring.failed_rows IS 'Input rows that could not be scored, with the reason (a job''s or a score request''s).';
COMMENT ON COLUMN scoring.failed_rows.id IS 'Row id.';
COMMENT ON COLUMN scoring.failed_rows.job_id IS 'The job; null for a score request.';
COMMENT ON COLUMN scoring.failed_rows.request_id IS 'The score request; null for a job.';
COMMENT ON COLUMN scoring.failed_rows.chunk_index IS 'The chunk of the job the row was in.';
COMMENT ON COLUMN scoring.failed_rows.row_number IS 'Row number within the input.';
COMMENT ON COLUMN scoring.failed_rows.row_key IS 'The row''s key column value, as text.';
COMMENT ON COLUMN scoring.failed_rows.column_name IS 'The column at fault, when one is.';
COMMENT ON COLUMN scoring.failed_rows.reason IS 'Why the row failed (e.g. a NaN feature, an unparsable cell).';
COMMENT ON COLUMN scoring.failed_rows.recorded_at IS 'When the failure was recorded.';

COMMENT ON COLUMN scoring.request_redeliveries.request_id IS 'The score request.';
COMMENT ON COLUMN scoring.request_redeliveries.redeliveries IS 'Times the request message was redelivered.';
COMMENT ON COLUMN scoring.request_redeliveries.first_at IS 'First redelivery.';
COMMENT ON COLUMN scoring.request_redeliveries.last_at IS 'Last redelivery.';

-- Drift
COMMENT ON TABLE scoring.model_profiles IS 'Reference feature profiles of a model version (batchscore models profile), the baseline of drift audits.';
COMMENT ON COLUMN scoring.model_profiles.model_name IS 'The model.';
COMMENT ON COLUMN scoring.model_profiles.model_version IS 'The model version.';
COMMENT ON COLUMN scoring.model_profiles.source IS 'The reference dataset the profile was built from.';
COMMENT ON COLUMN scoring.model_profiles.row_count IS 'Rows profiled.';
COMMENT ON COLUMN scoring.model_profiles.columns IS 'Per feature: histogram bins and counts (or category frequencies) as JSON.';
COMMENT ON COLUMN scoring.model_profiles.created_at IS 'When the profile was built.';

COMMENT ON TABLE scoring.drift_samples IS 'Feature histograms of scored rows (jobs and requests), the current side of drift audits.';
COMMENT ON COLUMN scoring.drift_samples.id IS 'Row id.';
COMMENT ON COLUMN scoring.drift_samples.model_name IS 'The model.';
COMMENT ON COLUMN scoring.drift_samples.model_version IS 'The model version.';
COMMENT ON COLUMN scoring.drift_samples.source IS 'job or request.';
COMMENT ON COLUMN scoring.drift_samples.sampled_at IS 'When the rows were scored.';
COMMENT ON COLUMN scoring.drift_samples.row_count IS 'Rows in the sample.';
COMMENT ON COLUMN scoring.drift_samples.columns IS 'Per feature: counts in the profile''s bins as JSON.';

COMMENT ON TABLE scoring.drift_reports IS 'Drift audits (batchscore drift audit, scheduled audits): per feature statistic, threshold and verdict.';
COMMENT ON COLUMN scoring.drift_reports.id IS 'Report id.';
COMMENT ON COLUMN scoring.drift_reports.model_name IS 'The model audited.';
COMMENT ON COLUMN scoring.drift_reports.model_version IS 'The model version audited.';
COMMENT ON COLUMN scoring.drift_reports.trigger IS 'What ran the audit (manual, schedule, ...).';
COMMENT ON COLUMN scoring.drift_reports.window_start IS 'Start of the window of scored rows compared.';
COMMENT ON COLUMN scoring.drift_reports.window_end IS 'End of the window.';
COMMENT ON COLUMN scoring.drift_reports.row_count IS 'Scored rows in the window.';
COMMENT ON COLUMN scoring.drift_reports.drifted IS 'True when the verdict is drift.';
COMMENT ON COLUMN scoring.drift_reports.events_published IS 'True when a DriftDetected event was published (false within the cooldown of an earlier one).';
COMMENT ON COLUMN scoring.drift_reports.columns IS 'Per feature: statistic, threshold, verdict and histograms as JSON.';
COMMENT ON COLUMN scoring.drift_reports.created_at IS 'When the audit ran.';
COMMENT ON COLUMN scoring.drift_reports.retraining_requested IS 'True when the audit requested retraining (after consecutive drifted audits, with its own cooldown).';
COMMENT ON COLUMN scoring.drift_reports.verdict IS 'drift, no_drift or insufficient_data (fewer than MinimumRows sampled rows).';
COMMENT ON COLUMN scoring.drift_reports.fire_id IS 'Scheduled audits: the Quartz fire (trigger and fire time); null for manual audits.';

-- Challenger, labels, performance, schedules
COMMENT ON COLUMN scoring.challenger_chunk_stats.job_id IS 'The champion/challenger job.';
COMMENT ON COLUMN scoring.challenger_chunk_stats.chunk_index IS 'The chunk.';
COMMENT ON COLUMN scoring.challenger_chunk_stats.rows_compared IS 'Rows scored by both champion and challenger.';
COMMENT ON COLUMN scoring.challenger_chunk_stats.challenger_failed_rows IS 'Rows the challenger could not score.';
COMMENT ON COLUMN scoring.challenger_chunk_stats.labels_compared IS 'Compared rows with a known label.';
COMMENT ON COLUMN scoring.challenger_chunk_stats.labels_agreed IS 'Of those, rows where both models predicted the same label.';
COMMENT ON COLUMN scoring.challenger_chunk_stats.diff_zero_count IS 'Rows with |champion - challenger| below 1e-9.';
COMMENT ON COLUMN scoring.challenger_chunk_stats.diff_buckets IS 'Log-bucket indexes i of the |champion - challenger| histogram: (gamma^(i-1), gamma^i], gamma = 1.005/0.995.';
COMMENT ON COLUMN scoring.challenger_chunk_stats.diff_counts IS 'Rows in each bucket of diff_buckets.';
COMMENT ON COLUMN scoring.challenger_chunk_stats.diff_max IS 'Largest |champion - challenger| (exact).';

COMMENT ON COLUMN scoring.challenger_comparisons.job_id IS 'The champion/challenger job.';
COMMENT ON COLUMN scoring.challenger_comparisons.champion_model IS 'The champion model.';
COMMENT ON COLUMN scoring.challenger_comparisons.champion_version IS 'The champion version.';
COMMENT ON COLUMN scoring.challenger_comparisons.challenger_model IS 'The challenger model.';
COMMENT ON COLUMN scoring.challenger_comparisons.challenger_version IS 'The challenger version.';
COMMENT ON COLUMN scoring.challenger_comparisons.job_state IS 'The job''s final state when compared.';
COMMENT ON COLUMN scoring.challenger_comparisons.rows_compared IS 'Rows scored by both models.';
COMMENT ON COLUMN scoring.challenger_comparisons.challenger_failed_rows IS 'Rows the challenger could not score.';
COMMENT ON COLUMN scoring.challenger_comparisons.labels_compared IS 'Compared rows with a known label.';
COMMENT ON COLUMN scoring.challenger_comparisons.agreement_rate IS 'Share of compared rows where both models predicted the same label.';
COMMENT ON COLUMN scoring.challenger_comparisons.champion_score_column IS 'The champion''s primary score column compared.';
COMMENT ON COLUMN scoring.challenger_comparisons.challenger_score_column IS 'The challenger''s primary score column compared.';
COMMENT ON COLUMN scoring.challenger_comparisons.diff_p50 IS 'Median |champion - challenger| (0.5% relative accuracy).';
COMMENT ON COLUMN scoring.challenger_comparisons.diff_p90 IS '90th percentile of |champion - challenger|.';
COMMENT ON COLUMN scoring.challenger_comparisons.diff_p99 IS '99th percentile of |champion - challenger|.';
COMMENT ON COLUMN scoring.challenger_comparisons.diff_max IS 'Largest |champion - challenger| (exact).';
COMMENT ON COLUMN scoring.challenger_comparisons.realised_metrics IS 'Both versions'' metrics against the labels known when computed, as JSON.';
COMMENT ON COLUMN scoring.challenger_comparisons.computed_at IS 'When the comparison was computed.';

COMMENT ON COLUMN scoring.labels.model_name IS 'The model the label is for.';
COMMENT ON COLUMN scoring.labels.key IS 'The row key (matches the key column of results).';
COMMENT ON COLUMN scoring.labels.label IS 'The true outcome, as text.';
COMMENT ON COLUMN scoring.labels.label_number IS 'The label as a number, when it is one (regression, 0/1 classes).';
COMMENT ON COLUMN scoring.labels.labelled_at IS 'When the outcome was observed.';
COMMENT ON COLUMN scoring.labels.ingested_at IS 'When the label was ingested.';
COMMENT ON COLUMN scoring.labels.source IS 'The file, or sql:<source name>.';

COMMENT ON COLUMN scoring.performance_reports.id IS 'Report id.';
COMMENT ON COLUMN scoring.performance_reports.model_name IS 'The model.';
COMMENT ON COLUMN scoring.performance_reports.model_version IS 'The model version.';
COMMENT ON COLUMN scoring.performance_reports.trigger IS 'What ran the report (manual, schedule, ...).';
COMMENT ON COLUMN scoring.performance_reports.task IS 'classification or regression.';
COMMENT ON COLUMN scoring.performance_reports.window_start IS 'Start of the window of scored rows.';
COMMENT ON COLUMN scoring.performance_reports.window_end IS 'End of the window.';
COMMENT ON COLUMN scoring.performance_reports.scored_rows IS 'Scored rows in the window.';
COMMENT ON COLUMN scoring.performance_reports.labelled_rows IS 'Of those, rows with a label.';
COMMENT ON COLUMN scoring.performance_reports.metrics IS 'Realised metrics (accuracy, AUC, RMSE, ...) as JSON.';
COMMENT ON COLUMN scoring.performance_reports.baseline_report_id IS 'The report compared with; null when this one is the baseline.';
COMMENT ON COLUMN scoring.performance_reports.drops IS '[{metric, baseline, current, drop}] past the threshold.';
COMMENT ON COLUMN scoring.performance_reports.retraining_requested IS 'True when the report requested retraining.';
COMMENT ON COLUMN scoring.performance_reports.created_at IS 'When the report was made.';

COMMENT ON COLUMN scoring.schedule_runs.id IS 'Row id.';
COMMENT ON COLUMN scoring.schedule_runs.tenant IS 'The schedule''s tenant.';
COMMENT ON COLUMN scoring.schedule_runs.schedule_name IS 'The schedule.';
COMMENT ON COLUMN scoring.schedule_runs.kind IS 'cron, run-now or missed.';
COMMENT ON COLUMN scoring.schedule_runs.started_at IS 'When the fire was handled.';
COMMENT ON COLUMN scoring.schedule_runs.model_version IS 'The model version the job was submitted with.';
COMMENT ON COLUMN scoring.schedule_runs.input IS 'The input after its placeholders were filled.';
COMMENT ON COLUMN scoring.schedule_runs.error IS 'Why no job was submitted; null otherwise.';
