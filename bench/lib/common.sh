# Shared by the bench/*.sh scripts: a temporary directory removed on exit with everything started in it,
# and a throwaway Postgres (database "lagoon", migrated) and Redis on free ports.
# shellcheck shell=bash
. scripts/lib/services.sh

# bench_services [pg|pg+redis]: sets tmp, pg_port, redis_port and pids (PIDs killed on exit); exports
# LAGOON_DATABASE_URL, LAGOON_REDIS_URL and a fresh LAGOON_KEY_PEPPER; runs `lagoon migrate`.
# PG_FSYNC (default off) is passed to Postgres.
bench_services() {
  tmp=$(mktemp -d /tmp/lagoon-bench.XXXXXX)
  [[ $(id -u) -eq 0 ]] && chmod 755 "$tmp"
  pids=()
  trap bench_cleanup EXIT
  pg_port=$(free_port)
  PG_FSYNC=${PG_FSYNC:-off} pg_init "$tmp/pg"
  PG_FSYNC=${PG_FSYNC:-off} pg_start "$tmp/pg" "$pg_port"
  as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres lagoon
  export LAGOON_DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/lagoon"
  if [[ "${1:-pg+redis}" == "pg+redis" ]]; then
    redis_port=$(free_port)
    redis_start "$tmp/redis" "$redis_port" --save '' --appendonly no
    pids+=("$REDIS_PID")
    export LAGOON_REDIS_URL="redis://127.0.0.1:$redis_port/0"
  fi
  export LAGOON_KEY_PEPPER=$(openssl rand -hex 32)
  build/lagoon migrate >/dev/null
}

# bench_metric PORT SERIES: the value of one series on Lagoon's /metrics (empty when absent).
bench_metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s {print $2}'; }

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pg_stop "$tmp/pg"
  rm -rf "$tmp"
}
