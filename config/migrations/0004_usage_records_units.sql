-- What a row counts where tokens do not apply: images made, characters spoken, seconds transcribed, or
-- the upload's bytes when the upstream does not say how long the audio was. Both NULL on rows without
-- units (every row written before this migration, and every token-metered row after it).
-- The constraints are NOT VALID: every existing row has NULL in both new columns, and proving that by
-- scanning the whole ledger under ALTER TABLE's exclusive lock would only stall the flushers of the
-- instances still running. New rows are checked all the same.
ALTER TABLE usage_records
    ADD COLUMN IF NOT EXISTS units double precision,
    ADD COLUMN IF NOT EXISTS unit text,
    DROP CONSTRAINT IF EXISTS usage_records_unit_known,
    ADD CONSTRAINT usage_records_unit_known
        CHECK (unit IN ('images', 'characters', 'seconds', 'bytes')) NOT VALID,
    DROP CONSTRAINT IF EXISTS usage_records_units_with_unit,
    ADD CONSTRAINT usage_records_units_with_unit
        CHECK ((units IS NULL) = (unit IS NULL)) NOT VALID;
