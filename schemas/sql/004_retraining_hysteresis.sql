-- Retraining hysteresis: RetrainingRequested is published only after BatchScoring:Drift:RetrainAfterDriftedAudits
-- consecutive drifted audits of a model version, with its own cooldown; events_published keeps meaning DriftDetected.

ALTER TABLE scoring.drift_reports ADD COLUMN retraining_requested boolean NOT NULL DEFAULT false;

-- Reports before this migration published both events together.
UPDATE scoring.drift_reports SET retraining_requested = events_published;
