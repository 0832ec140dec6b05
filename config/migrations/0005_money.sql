-- Money: what each request cost, the prices it was computed with, and spend budgets.
--
-- usage_records: cost_usd is exact (numeric; the gateway counts whole pico-dollars) and NULL only when
-- no price applied (cost_source 'unpriced'); upstream_cost_usd is what Venice's answer itself said;
-- price_version names the price_tables row the cost was computed with. Rows written before this
-- migration have NULL in all four. As in 0004 the checks are NOT VALID: the existing rows all satisfy
-- them and scanning the ledger under ALTER TABLE's lock would stall the flushers of running instances.
ALTER TABLE usage_records
    ADD COLUMN IF NOT EXISTS cost_usd numeric,
    ADD COLUMN IF NOT EXISTS cost_source text,
    ADD COLUMN IF NOT EXISTS upstream_cost_usd numeric,
    ADD COLUMN IF NOT EXISTS price_version bigint,
    DROP CONSTRAINT IF EXISTS usage_records_cost_source_known,
    ADD CONSTRAINT usage_records_cost_source_known
        CHECK (cost_source IN ('upstream', 'price_table', 'override', 'unpriced')) NOT VALID,
    DROP CONSTRAINT IF EXISTS usage_records_unpriced_has_no_cost,
    ADD CONSTRAINT usage_records_unpriced_has_no_cost
        CHECK (cost_source IS NULL OR (cost_source = 'unpriced') = (cost_usd IS NULL)) NOT VALID,
    DROP CONSTRAINT IF EXISTS usage_records_cost_not_negative,
    ADD CONSTRAINT usage_records_cost_not_negative
        CHECK (cost_usd >= 0 AND upstream_cost_usd >= 0) NOT VALID;

-- Venice's prices as last fetched: one row per table that differed from the one before, so a restart or
-- a failed refresh always finds the last good one. `prices` is model → the gateway's price form.
CREATE TABLE IF NOT EXISTS price_tables (
    version    bigserial PRIMARY KEY,
    fetched_at timestamptz NOT NULL DEFAULT now(),
    digest     text NOT NULL,
    models     integer NOT NULL,
    prices     jsonb NOT NULL
);

-- The operator's prices: above Venice's for the same model (markups, models Venice does not price).
CREATE TABLE IF NOT EXISTS price_overrides (
    model      text PRIMARY KEY,
    prices     jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Budgets: an amount in USD per period (total: never resets, raise it to top up; daily and monthly:
-- calendar periods in UTC). NULL: no budget.
ALTER TABLE api_keys
    ADD COLUMN IF NOT EXISTS budget_usd numeric,
    ADD COLUMN IF NOT EXISTS budget_period text,
    DROP CONSTRAINT IF EXISTS api_keys_budget_valid,
    ADD CONSTRAINT api_keys_budget_valid
        CHECK (budget_usd >= 0 AND budget_usd <= 1000000 AND budget_period IN ('total', 'daily', 'monthly')
               AND (budget_usd IS NULL) = (budget_period IS NULL));
ALTER TABLE users
    ADD COLUMN IF NOT EXISTS budget_usd numeric,
    ADD COLUMN IF NOT EXISTS budget_period text,
    DROP CONSTRAINT IF EXISTS users_budget_valid,
    ADD CONSTRAINT users_budget_valid
        CHECK (budget_usd >= 0 AND budget_usd <= 1000000 AND budget_period IN ('total', 'daily', 'monthly')
               AND (budget_usd IS NULL) = (budget_period IS NULL));
