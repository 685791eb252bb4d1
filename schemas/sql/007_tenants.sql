-- Tenants: every API key belongs to one tenant and sees only that tenant's jobs and models (docs/http-api.md).
-- Rows written before this migration, and jobs submitted as messages, belong to the tenant 'default'.
-- request_sha256 fingerprints a job request so that reusing an idempotency key with another body is refused.

ALTER TABLE scoring.jobs ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE scoring.jobs ADD COLUMN request_sha256 text NULL;

-- Idempotency keys are per tenant: one tenant's key never returns (or blocks) another tenant's job.
ALTER TABLE scoring.jobs DROP CONSTRAINT jobs_idempotency_key_key;
CREATE UNIQUE INDEX jobs_tenant_idempotency_key_idx ON scoring.jobs (tenant, idempotency_key);
CREATE INDEX jobs_tenant_created_at_idx ON scoring.jobs (tenant, created_at);

-- A model name belongs to one tenant (the one that registered its first version); all its versions share it.
ALTER TABLE scoring.model_versions ADD COLUMN tenant text NOT NULL DEFAULT 'default';
