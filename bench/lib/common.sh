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

# The mock upstream on CPU 1 with a fresh key (mock_port, mock_key), and the environment of a Lagoon with
# one reactor thread in front of it; the `bench` user made. For the A/B scripts (ab.sh, budget.sh).
bench_mock_and_env() {
  mock_port=$(free_port)
  mock_key=$(openssl rand -hex 16)
  taskset -c 1 build/lagoon-mock-upstream --listen "127.0.0.1:$mock_port" --api-key "$mock_key" >"$tmp/mock.log" 2>&1 &
  pids+=("$!")
  export LAGOON_LOG_LEVEL=warn LAGOON_THREADS=1 LAGOON_DB_POOL_SIZE=4 LAGOON_MAX_CONNECTIONS=20000
  export LAGOON_UPSTREAM_URL="http://127.0.0.1:$mock_port/api/v1" LAGOON_UPSTREAM_API_KEY="$mock_key"
  build/lagoon users create --name bench >/dev/null
}

# bench_metric PORT SERIES: the value of one series on Lagoon's /metrics (empty when absent).
bench_metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s {print $2}'; }

# bench_lease_seconds PORT: seconds Postgres connections were held for requests (auth + session).
bench_lease_seconds() {
  local a s
  a=$(bench_metric "$1" 'lagoon_db_lease_seconds_total{purpose="auth"}')
  s=$(bench_metric "$1" 'lagoon_db_lease_seconds_total{purpose="session"}')
  python3 -c "print(${a:-0} + ${s:-0})"
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pg_stop "$tmp/pg"
  rm -rf "$tmp"
}

# bench_nginx_preamble DIR: the start of an nginx.conf (one worker, files in DIR, no access log,
# connections kept alive for the whole run) up to inside its http block; the caller closes that block.
bench_nginx_preamble() {
  cat <<NGINX
worker_processes 1;
error_log $1/error.log warn;
pid $1/nginx.pid;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $1/body;
  proxy_temp_path $1/tmp;
NGINX
}

# bench_nginx PORT MOCK_PORT MOCK_KEY: nginx as the plain-proxy baseline — one worker on CPU 0,
# proxy_pass to the mock with upstream keep-alive and the mock's credential, no buffering (SSE).
bench_nginx() {
  mkdir -p "$tmp/nginx"
  { bench_nginx_preamble "$tmp/nginx"; cat <<NGINX
  upstream mock { server 127.0.0.1:$2; keepalive 128; }
  server {
    listen 127.0.0.1:$1;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer $3";
      proxy_buffering off;
    }
  }
}
NGINX
  } >"$tmp/nginx/nginx.conf"
  taskset -c 0 nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" -g 'daemon off;' &
  pids+=("$!")
}

# bench_origin: the upstream of the proxy benchmarks (proxy.sh, ab.sh) — an nginx answering every chat
# completion with the same 380-byte body (`return 200`), several times faster than any proxy in front of
# it, so that a ratio measures the proxy; the mock behind it serves only the model list (Lagoon's prices).
# Sets origin_port, origin_pid, origin_worker, mock_port and mock_key; floats (callers pin it).
bench_origin() {
  mock_port=$(free_port)
  mock_key=$(openssl rand -hex 16)
  build/lagoon-mock-upstream --listen "127.0.0.1:$mock_port" --api-key "$mock_key" >"$tmp/mock.log" 2>&1 &
  pids+=("$!")
  origin_port=$(free_port)
  local answer='{"id":"chatcmpl-bench0000000000000000000000","object":"chat.completion","created":1764633600,"model":"llama-3.3-70b","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! I am a fixed answer of the benchmark upstream, the same for every request you send."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":21,"total_tokens":30}}'
  mkdir -p "$tmp/origin"
  { bench_nginx_preamble "$tmp/origin"; cat <<NGINX
  upstream mock { server 127.0.0.1:$mock_port; keepalive 4; }
  server {
    listen 127.0.0.1:$origin_port;
    location /api/v1/models { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location / { default_type application/json; return 200 '$answer'; }
  }
}
NGINX
  } >"$tmp/origin/nginx.conf"
  nginx -c "$tmp/origin/nginx.conf" -p "$tmp/origin" -g 'daemon off;' &
  origin_pid=$!
  pids+=("$origin_pid")
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$origin_port") 2>/dev/null && break; sleep 0.05; done
  origin_worker=$(pgrep -P "$origin_pid")
}

# bench_wrk PORT CONNECTIONS SECONDS KEY [PATH]: one wrk run (one thread, on CPU 1) posting the P1/P2 chat
# body with KEY to PATH (/api/v1/chat/completions); prints bench/lib/wrk_post.lua's JSON line.
bench_wrk() {
  WRK_BODY='{"model":"llama-3.3-70b","messages":[{"role":"user","content":"Hello"}]}' WRK_KEY=$4 \
    taskset -c 1 wrk -t1 -c"$2" -d"$3"s -s bench/lib/wrk_post.lua "http://127.0.0.1:$1${5:-/api/v1/chat/completions}" | tail -1
}
