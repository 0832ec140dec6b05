-- Lagoon schema, version 1: users, their API keys, model-bound sessions, and one usage row per request.
-- Column names are part of the outside contract (shared INTERFACE.md); add, never rename.

CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    is_active   boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint      NOT NULL REFERENCES users (id),
    name          text        CHECK (name IS NULL OR length(name) <= 200),
    prefix        text        NOT NULL,
    -- HMAC-SHA256(pepper, full key); the key itself is never stored. UNIQUE gives the auth lookup its index.
    digest        bytea       NOT NULL UNIQUE CHECK (length(digest) = 32),
    is_active     boolean     NOT NULL DEFAULT true,
    rpm_limit     integer     CHECK (rpm_limit >= 0),   -- NULL = configured default, 0 = unlimited
    tpm_limit     bigint      CHECK (tpm_limit >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

CREATE TABLE sessions (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    api_key_id     bigint      NOT NULL REFERENCES api_keys (id),
    user_id        bigint      NOT NULL REFERENCES users (id),
    model          text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    is_active      boolean     NOT NULL DEFAULT true,
    last_used_at   timestamptz,
    request_count  bigint      NOT NULL DEFAULT 0
);
-- At most one active session per key, whatever races between instances.
CREATE UNIQUE INDEX sessions_one_active_per_key ON sessions (api_key_id) WHERE is_active;

CREATE TABLE usage_records (
    request_id         text        NOT NULL UNIQUE,
    api_key_id         bigint      NOT NULL REFERENCES api_keys (id),
    user_id            bigint      NOT NULL REFERENCES users (id),
    session_id         uuid        REFERENCES sessions (id),
    model              text,
    stream             boolean     NOT NULL,
    status_code        integer     NOT NULL,
    outcome            text        NOT NULL,
    prompt_tokens      integer,
    completion_tokens  integer,
    total_tokens       integer,
    tokens_estimated   boolean     NOT NULL DEFAULT false,
    started_at         timestamptz NOT NULL,
    duration_ms        double precision NOT NULL,
    ttfb_ms            double precision
);
CREATE INDEX usage_records_key_time_idx ON usage_records (api_key_id, started_at);
CREATE INDEX usage_records_user_time_idx ON usage_records (user_id, started_at);
