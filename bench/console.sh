#!/usr/bin/env bash
# bench/console.sh: what the console's admin endpoints cost on a large usage table. Fills usage_records
# with ROWS rows (default 10,000,000) over the last 90 days — 1,000 keys of 100 users, 20 models, one
# row in ten unpriced — then times, through `lagoon serve` and curl (median of 5, warm cache):
# the series of the last 24 hours by the hour and of the last 7 and 30 days by the day, split by model,
# key and user; spend today and this month (GET /admin/v1/usage); a page of users and of keys with their
# spend; and building migration 0007's index on that table (CREATE INDEX, as the migration runs it).
# Not part of make test (it takes minutes); bench/README.md quotes its figures. KEEP=1 leaves Postgres and
# lagoon running afterwards, to look further.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
ROWS=${ROWS:-10000000}
BUILD_DIR=${BUILD_DIR:-build}
work=$(mktemp -d /tmp/lagoon-console-bench.XXXXXX)
chmod 755 "$work"
REDIS_PID=""; SERVE_PID=""
cleanup() {
  if [[ -n "${KEEP:-}" ]]; then echo "kept: $work (postgres port $pg_port, lagoon port ${port:-none})"; return; fi
  [[ -n "$SERVE_PID" ]] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  pg_stop "$work/pg"
  [[ -n "$REDIS_PID" ]] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

PG_FSYNC=off pg_init "$work/pg"
pg_port=$(free_port); PG_FSYNC=off pg_start "$work/pg" "$pg_port"
redis_port=$(free_port); redis_start "$work/redis" "$redis_port" --save '' --appendonly no
psql=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres postgres)
export LAGOON_DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/postgres"
export LAGOON_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export LAGOON_KEY_PEPPER=bench-pepper-0123456789abcdef0123456789 LAGOON_UPSTREAM_API_KEY=none
export LAGOON_UPSTREAM_URL=http://127.0.0.1:9/api/v1 LAGOON_LOG_LEVEL=error
export LAGOON_ADMIN_TOKEN=console-bench-token-0123456789
"$BUILD_DIR/lagoon" migrate >/dev/null

echo "filling usage_records with $ROWS rows…"
start=$(date +%s.%N)
"${psql[@]}" <<SQL
INSERT INTO users (name) SELECT 'user' || u FROM generate_series(1, 100) u;
INSERT INTO api_keys (user_id, name, prefix, digest)
  SELECT 1 + k % 100, 'key' || k, 'sk-bench' || k, sha256(k::text::bytea) FROM generate_series(1, 1000) k;
INSERT INTO usage_records (request_id, api_key_id, user_id, model, stream, status_code, outcome, prompt_tokens,
    completion_tokens, total_tokens, started_at, duration_ms, cost_usd, cost_source)
  SELECT 'b' || i, 1 + i % 1000, 1 + (i % 1000) % 100, 'model-' || (i::bigint * 7919 % 20), false, 200, 'ok', 100, 50, 150,
         now() - interval '90 days' * (i::double precision / $ROWS), 12,
         CASE WHEN i % 10 = 0 THEN NULL ELSE 0.000123 END, CASE WHEN i % 10 = 0 THEN 'unpriced' ELSE 'price_table' END
  FROM generate_series(1, $ROWS) i;
SQL
echo "filled in $(printf '%.0f' "$(echo "$(date +%s.%N) - $start" | bc)") s"
"${psql[@]}" -c "DROP INDEX usage_records_started_at_idx" -c "VACUUM ANALYZE usage_records"
index_start=$(date +%s.%N)
"${psql[@]}" -c "CREATE INDEX IF NOT EXISTS usage_records_started_at_idx ON usage_records (started_at)"
index_s=$(echo "$(date +%s.%N) - $index_start" | bc)
"${psql[@]}" -c "ANALYZE usage_records"

port=$(free_port)
LAGOON_LISTEN=127.0.0.1:$port "$BUILD_DIR/lagoon" serve >"$work/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

# median_ms PATH: the median of 5 timed GETs (after one untimed), in milliseconds.
median_ms() {
  curl -sf -o /dev/null -H "Authorization: Bearer $LAGOON_ADMIN_TOKEN" "http://127.0.0.1:$port$1"
  for _ in 1 2 3 4 5; do
    curl -sf -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $LAGOON_ADMIN_TOKEN" "http://127.0.0.1:$port$1"
  done | sort -n | sed -n 3p | awk '{printf "%.0f", $1 * 1000}'
}
today=$(date -u +%Y-%m-%dT00:00:00Z)
month=$(date -u +%Y-%m-01T00:00:00Z)
week=$(date -u -d '7 days ago' +%Y-%m-%dT00:00:00Z)
echo
echo "| call ($ROWS rows over 90 days) | median ms |"
echo "|---|---:|"
for by in model key user; do
  echo "| series, last 24 h by the hour, by $by | $(median_ms "/admin/v1/usage/series?bucket=hour&by=$by") |"
  echo "| series, last 7 days by the day, by $by | $(median_ms "/admin/v1/usage/series?bucket=day&by=$by&from=$week") |"
  echo "| series, last 30 days by the day, by $by | $(median_ms "/admin/v1/usage/series?bucket=day&by=$by") |"
done
echo "| spend today (usage?by=model&from=today) | $(median_ms "/admin/v1/usage?by=model&from=$today") |"
echo "| spend this month (usage?by=model&from=1st) | $(median_ms "/admin/v1/usage?by=model&from=$month") |"
echo "| users, first page (100) with spend | $(median_ms "/admin/v1/users") |"
echo "| keys, first page (100) with spend | $(median_ms "/admin/v1/keys") |"
echo
echo "migration 0007 (CREATE INDEX usage_records_started_at_idx) on $ROWS rows: $(printf '%.1f' "$index_s") s"
