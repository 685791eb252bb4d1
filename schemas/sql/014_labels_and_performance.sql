-- Delayed labels and realised performance: `labels ingest` upserts one label per (model, key); performance reports join
-- them to the model's scored rows (the results tables of its jobs) per version and time window (docs/performance.md).

CREATE TABLE scoring.labels (
    model_name    text             NOT NULL,
    key           text             NOT NULL,               -- the row key as text, as the results table's key column casts to text
    label         text             NOT NULL,               -- as given (booleans as 1 / 0)
    label_number  double precision,                        -- the label as a number, when it is one (regression, 0/1 classes)
    labelled_at   timestamptz      NOT NULL,               -- when the outcome was known (the input's column, else ingest time)
    ingested_at   timestamptz      NOT NULL DEFAULT now(),
    source        text             NOT NULL,               -- the file, or "sql:<source name>"
    PRIMARY KEY (model_name, key)
);

COMMENT ON TABLE scoring.labels IS 'Delayed ground truth per model and row key; a re-ingest of a key replaces its label.';

CREATE TABLE scoring.performance_reports (
    id                    uuid        PRIMARY KEY,
    model_name            text        NOT NULL,
    model_version         integer     NOT NULL,
    trigger               text        NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    task                  text        NOT NULL,               -- binary, regression, unsupported (no usable score column)
    window_start          timestamptz NOT NULL,
    window_end            timestamptz NOT NULL,
    scored_rows           bigint      NOT NULL,               -- distinct keys scored by the version in the window
    labelled_rows         bigint      NOT NULL,               -- of those, keys with a label
    metrics               jsonb       NOT NULL,               -- {"accuracy": .., "rocAuc": .., ...}; absent when undefined
    baseline_report_id    uuid,                               -- the report compared with (null: this one is the baseline)
    drops                 jsonb       NOT NULL DEFAULT '[]',  -- [{metric, baseline, current, drop}] past the threshold
    retraining_requested  boolean     NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX performance_reports_by_model_time ON scoring.performance_reports (model_name, model_version, created_at DESC);

COMMENT ON TABLE scoring.performance_reports IS 'Realised metrics of a model version over a window of scored rows joined to their labels.';
