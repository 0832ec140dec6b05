-- Usage over time for everyone (the console's charts, GET /admin/v1/usage/series, spend today and this
-- month): a range of started_at without a key or user, which the (key, started_at) and (user,
-- started_at) indexes cannot serve. Without it every such report reads the whole table.
CREATE INDEX IF NOT EXISTS usage_records_started_at_idx ON usage_records (started_at);
