-- A chunk may combine several row groups, or row ranges of several files, up to the job's chunk size: small row
-- groups and small files no longer make small chunks. The list lives beside the chunk's first range, which keeps
-- its own columns (source_path, row_group, row_start, byte_offset); row_count is the rows of all ranges.
ALTER TABLE scoring.chunks ADD COLUMN IF NOT EXISTS ranges jsonb NULL;

COMMENT ON COLUMN scoring.chunks.ranges IS
    'The slices a combined chunk reads, in order: [{"path","rowGroup","rowStart","rowCount","byteOffset"}]; null when the chunk is the one slice its own columns name.';
