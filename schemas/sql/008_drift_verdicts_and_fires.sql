-- Drift reports get a verdict, "insufficient_data" among them (fewer than BatchScoring:Drift:MinimumRows sampled rows:
-- nothing was judged and no event is published), and the scheduled fire that produced them, so a fire recovered on
-- another scheduler after a crash stores each model version's report once.

ALTER TABLE scoring.drift_reports
    ADD COLUMN verdict text NOT NULL DEFAULT 'no_drift' CHECK (verdict IN ('drift', 'no_drift', 'insufficient_data')),
    ADD COLUMN fire_id text;    -- scheduled audits: the Quartz fire (trigger and fire time); null for manual audits

-- Earlier reports: drifted ones drifted; an audit over no samples at all judged nothing.
UPDATE scoring.drift_reports SET verdict = CASE WHEN drifted THEN 'drift' WHEN row_count = 0 THEN 'insufficient_data' ELSE 'no_drift' END;

ALTER TABLE scoring.drift_reports ADD CONSTRAINT drift_reports_verdict_drifted CHECK ((verdict = 'drift') = drifted);

CREATE UNIQUE INDEX drift_reports_once_per_fire ON scoring.drift_reports (fire_id, model_name, model_version) WHERE fire_id IS NOT NULL;
