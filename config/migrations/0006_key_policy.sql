-- Key policy: which models and endpoints a key may use, when it expires, how many requests it may have
-- open at once, free-form tags, and rotation. Users carry defaults their keys inherit.
--
-- NULL means "not set": a key's NULL inherits its user's value, a user's NULL means no restriction.
-- allowed_models: globs over base model names (before Venice's ':' suffix), '*' any run of characters.
-- allowed_endpoints: route groups. An empty list is stored as NULL (all), never as "nothing allowed".
-- max_concurrent: 0 = unlimited (a key's 0 overrides its user's default).
-- expires_at: a key stops at the earlier of its own and its user's.
-- revoked_at may lie in the future: a rotated key keeps working until then (its grace period).
-- lineage_id: the first key of a rotation chain (NULL: the key itself); the keys of one lineage share
-- their rate limits, concurrency slots and budget. replaced_by: the key that replaced this one.
ALTER TABLE api_keys
    ADD COLUMN IF NOT EXISTS expires_at timestamptz,
    ADD COLUMN IF NOT EXISTS allowed_models text[],
    ADD COLUMN IF NOT EXISTS allowed_endpoints text[],
    ADD COLUMN IF NOT EXISTS max_concurrent integer,
    ADD COLUMN IF NOT EXISTS tags jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN IF NOT EXISTS lineage_id bigint,
    ADD COLUMN IF NOT EXISTS replaced_by bigint,
    DROP CONSTRAINT IF EXISTS api_keys_policy_valid,
    ADD CONSTRAINT api_keys_policy_valid
        CHECK (cardinality(allowed_models) BETWEEN 1 AND 256
               AND cardinality(allowed_endpoints) BETWEEN 1 AND 5
               AND allowed_endpoints <@ ARRAY['chat', 'embeddings', 'images', 'audio', 'responses']::text[]
               AND max_concurrent BETWEEN 0 AND 1000000),
    DROP CONSTRAINT IF EXISTS api_keys_tags_valid,
    ADD CONSTRAINT api_keys_tags_valid
        CHECK (jsonb_typeof(tags) = 'object' AND octet_length(tags::text) <= 4096);
CREATE INDEX IF NOT EXISTS api_keys_lineage_idx ON api_keys (lineage_id) WHERE lineage_id IS NOT NULL;
-- Usage reports filter by tags (`tags @> '{"team":"search"}'`).
CREATE INDEX IF NOT EXISTS api_keys_tags_idx ON api_keys USING gin (tags jsonb_path_ops);

ALTER TABLE users
    ADD COLUMN IF NOT EXISTS expires_at timestamptz,
    ADD COLUMN IF NOT EXISTS allowed_models text[],
    ADD COLUMN IF NOT EXISTS allowed_endpoints text[],
    ADD COLUMN IF NOT EXISTS max_concurrent integer,
    DROP CONSTRAINT IF EXISTS users_policy_valid,
    ADD CONSTRAINT users_policy_valid
        CHECK (cardinality(allowed_models) BETWEEN 1 AND 256
               AND cardinality(allowed_endpoints) BETWEEN 1 AND 5
               AND allowed_endpoints <@ ARRAY['chat', 'embeddings', 'images', 'audio', 'responses']::text[]
               AND max_concurrent BETWEEN 0 AND 1000000);
