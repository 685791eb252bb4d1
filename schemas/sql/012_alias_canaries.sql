-- Canary splits of an alias, and the wake-up signal workers use to warm a version before it serves.
--
-- An alias points at one version (scoring.model_aliases); while a canary runs it also sends a stable share of score
-- request rows (by a hash of the row key) to a second version. A move recorded without a canary (a plain move or a
-- rollback, whatever code path makes it) ends the canary, so promoting (move to the canary version) and aborting
-- (move to the main version) are both plain moves. The history row of that move names the canary it ended.

CREATE TABLE scoring.model_alias_canaries (
    model_name      text        NOT NULL,
    alias           text        NOT NULL,
    canary_version  integer     NOT NULL,
    canary_percent  integer     NOT NULL CHECK (canary_percent BETWEEN 1 AND 99),
    started_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_name, alias),
    FOREIGN KEY (model_name, alias) REFERENCES scoring.model_aliases (model_name, alias) ON DELETE CASCADE,
    FOREIGN KEY (model_name, canary_version) REFERENCES scoring.model_versions (model_name, version)
);

COMMENT ON TABLE scoring.model_alias_canaries IS
    'Running canaries: canary_percent % of score request rows (by a hash of the row key) go to canary_version instead of the alias''s version.';

ALTER TABLE scoring.model_alias_history
    ADD COLUMN canary_version        integer NULL,
    ADD COLUMN canary_percent        integer NULL,
    ADD COLUMN ended_canary_version  integer NULL;

COMMENT ON COLUMN scoring.model_alias_history.canary_version IS 'Set when this move started (or changed) a canary: the canary version.';
COMMENT ON COLUMN scoring.model_alias_history.canary_percent IS 'Share of rows, in percent, the canary of this move receives.';
COMMENT ON COLUMN scoring.model_alias_history.ended_canary_version IS 'The canary this move ended (a plain move, or a canary move to another canary version).';

CREATE FUNCTION scoring.model_alias_history_end_canary() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.canary_version IS NULL THEN
        DELETE FROM scoring.model_alias_canaries WHERE model_name = NEW.model_name AND alias = NEW.alias
        RETURNING canary_version INTO NEW.ended_canary_version;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER model_alias_history_end_canary BEFORE INSERT ON scoring.model_alias_history
    FOR EACH ROW EXECUTE FUNCTION scoring.model_alias_history_end_canary();

-- Workers LISTEN on this channel and read the history rows after the last one they saw: the notice is sent on commit
-- only, and a worker that missed one (disconnected) catches up from the table.
CREATE FUNCTION scoring.model_alias_history_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('batchscoring_alias_moved', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER model_alias_history_notify AFTER INSERT ON scoring.model_alias_history
    FOR EACH ROW EXECUTE FUNCTION scoring.model_alias_history_notify();
