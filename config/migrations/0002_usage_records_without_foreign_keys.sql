-- usage_records is an append-only ledger written in batches of thousands: its foreign keys cost every
-- inserted row a lookup in api_keys, users and sessions (a third of the flush time), and a row they
-- refused would be a usage record lost. Keys, users and sessions are never deleted (keys are revoked,
-- users deactivated), so the ids stay meaningful without the constraints.
ALTER TABLE usage_records
    DROP CONSTRAINT IF EXISTS usage_records_api_key_id_fkey,
    DROP CONSTRAINT IF EXISTS usage_records_user_id_fkey,
    DROP CONSTRAINT IF EXISTS usage_records_session_id_fkey;
