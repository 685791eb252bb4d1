-- Registry rules (docs/model-registry.md): archived versions, who moved an alias and whether the move was forced past
-- an incompatible signature, and a record of deleted versions so that their numbers are never handed out again.

-- An archived version stays for lineage (history, old jobs) but cannot be submitted or be an alias's target.
ALTER TABLE scoring.model_versions ADD COLUMN archived_at timestamptz NULL;
ALTER TABLE scoring.model_versions ADD COLUMN archived_by text NULL;

-- changed_by: the API key's name (or "local", "message" ...); forced: the move overrode an incompatible signature.
-- Rows written before 011 have neither (null, false).
ALTER TABLE scoring.model_alias_history ADD COLUMN changed_by text NULL;
ALTER TABLE scoring.model_alias_history ADD COLUMN forced boolean NOT NULL DEFAULT false;

-- A deleted version: what it was, when and by whom. Registration numbers new versions past these, so "churn v3" in
-- an old job's row never names two different files.
CREATE TABLE scoring.deleted_model_versions (
    model_name  text        NOT NULL,
    version     integer     NOT NULL,
    tenant      text        NOT NULL,
    sha256      text        NOT NULL,
    created_at  timestamptz NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT now(),
    deleted_by  text        NULL,
    PRIMARY KEY (model_name, version)
);

-- Identical bytes registered again under a name are found by their hash.
CREATE INDEX model_versions_by_sha256 ON scoring.model_versions (sha256);
