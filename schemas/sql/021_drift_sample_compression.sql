-- A job writes one drift sample per chunk (256 rows × every input and output column, ~100 KB of jsonb), and
-- PostgreSQL's default pglz compression of it cost more server CPU than parsing it: 0.1–0.2 s per million scored rows,
-- on the cores the COPY of the results needs. lz4 compresses it about as well (~20 % larger) for a fifth of that.
-- A server built without lz4 keeps pglz: the samples work either way.
DO $$
BEGIN
    ALTER TABLE scoring.drift_samples ALTER COLUMN columns SET COMPRESSION lz4;
EXCEPTION
    WHEN feature_not_supported THEN
        RAISE NOTICE 'this PostgreSQL server has no lz4 support; drift samples stay pglz-compressed';
END
$$;
