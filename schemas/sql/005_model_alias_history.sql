-- Every move of a model alias (promote, roll back), append-only: who pointed production at what, when, and what it
-- pointed at before — the audit trail, and what "roll back" undoes.

CREATE TABLE scoring.model_alias_history (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_name        text        NOT NULL,
    alias             text        NOT NULL,
    version           integer     NOT NULL,
    previous_version  integer     NULL,   -- null: the alias was created
    changed_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX model_alias_history_by_alias ON scoring.model_alias_history (model_name, alias, id DESC);

-- Aliases that exist already start their history where they point now.
INSERT INTO scoring.model_alias_history (model_name, alias, version, previous_version, changed_at)
SELECT model_name, alias, version, NULL, updated_at FROM scoring.model_aliases;
