#!/usr/bin/env bash
# bench/proxy.sh: Lagoon as a proxy beside nginx and HAProxy (issue 21), in one run. The upstream is an
# nginx answering every chat completion with the same 380-byte body (`return 200`), far faster than any
# proxy in front of it, so the ratios measure the proxies and not the upstream (the mock stays for
# streams, in run.sh). Each proxy has one worker/thread; wrk (one thread) is the load client, always on
# CPU 1. Two layouts: `pinned` (every proxy on CPU 0, the upstream beside wrk on CPU 1) and `unpinned`
# (everything but wrk floats, as on a small deployment). Paths: direct (wrk -> upstream), nginx, haproxy,
# lagoon (warm key, no limits), lagoon_limits (a key with RPM and TPM limits too high to bite: one
# Redis script per request), and in the unpinned layout lagoon_2threads (LAGOON_THREADS=2). Per run:
# req/s, p50/p99, the proxy's own CPU µs per request from /proc, and for Lagoon also Lagoon + Redis +
# Postgres (the usage rows' cost), read after the rows are written.
# CONNECTIONS ("64 10"), DURATION (5 s), REPS (3) interleaved runs, LAYOUTS ("pinned unpinned");
# PROXY_PORTKEY=1 adds the Portkey gateway (bench/peers, installed by run.sh) as a path.
# Writes $PROXY_OUT.jsonl/.md (default bench/results/proxy-<date>) and prints the table.
# To see where the time goes, per measured run into a directory: PROXY_PROFILE (perf record of Lagoon,
# PROXY_PROFILE_ARGS added, e.g. "-g"), PROXY_PERFSTAT (syscalls, context switches of each proxy),
# PROXY_STRACE (strace -c of each proxy; slows it down a lot).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/common.sh

CONNECTIONS=${CONNECTIONS:-"64 10"} DURATION=${DURATION:-5} REPS=${REPS:-3} LAYOUTS=${LAYOUTS:-"pinned unpinned"}
out=${PROXY_OUT:-bench/results/proxy-$(date -u +%Y-%m-%d)}
for tool in nginx haproxy wrk; do
  command -v $tool >/dev/null || { echo "bench: $tool is missing (scripts/install-deps installs it)" >&2; exit 1; }
done
cmake --build build --target lagoon lagoon-mock-upstream >/dev/null
ulimit -n 65536 2>/dev/null || true
PG_FSYNC=on bench_services pg+redis
results=${PROXY_RESULTS:-$tmp/proxy.jsonl}
: >"$results"

bench_origin

nginx_port=$(free_port)
mkdir -p "$tmp/proxy"
{ bench_nginx_preamble "$tmp/proxy"; cat <<NGINX
  upstream origin { server 127.0.0.1:$origin_port; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer $mock_key";
      proxy_buffering off;
    }
  }
}
NGINX
} >"$tmp/proxy/nginx.conf"
nginx -c "$tmp/proxy/nginx.conf" -p "$tmp/proxy" -g 'daemon off;' &
nginx_pid=$!
pids+=("$nginx_pid")

haproxy_port=$(free_port)
cat >"$tmp/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend lagoon_bench
  bind 127.0.0.1:$haproxy_port
  default_backend origin
backend origin
  http-request set-header Authorization "Bearer $mock_key"
  server origin 127.0.0.1:$origin_port
CFG
haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
haproxy_pid=$!
pids+=("$haproxy_pid")

portkey_pid="" portkey_port=""
if [[ "${PROXY_PORTKEY:-0}" == 1 ]]; then
  portkey_port=$(free_port)
  node -r ./bench/peers/loopback.cjs bench/peers/node_modules/@portkey-ai/gateway/build/start-server.js \
    --port="$portkey_port" --headless >"$tmp/portkey.log" 2>&1 &
  portkey_pid=$!
  pids+=("$portkey_pid")
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$portkey_port") 2>/dev/null && break; sleep 0.05; done
fi

export LAGOON_LOG_LEVEL=warn LAGOON_THREADS=1 LAGOON_DB_POOL_SIZE=4 LAGOON_MAX_CONNECTIONS=20000
export LAGOON_UPSTREAM_URL="http://127.0.0.1:$origin_port/api/v1" LAGOON_UPSTREAM_API_KEY="$mock_key"
build/lagoon users create --name bench >/dev/null
create_key() { build/lagoon keys create --user bench "$@" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p'; }
key=$(create_key)
limits_key=$(create_key --rpm 1000000000 --tpm 1000000000)
lagoon_port=$(free_port)
LAGOON_LISTEN="127.0.0.1:$lagoon_port" LAGOON_USAGE_DIR="$tmp/usage" build/lagoon serve >"$tmp/lagoon.log" 2>&1 &
lagoon_pid=$!
pids+=("$lagoon_pid")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$lagoon_port/readyz" >/dev/null && break; sleep 0.1; done
# The same with two reactor threads: does a second thread buy anything when the cores are shared?
lagoon2_port=$(free_port)
LAGOON_THREADS=2 LAGOON_LISTEN="127.0.0.1:$lagoon2_port" LAGOON_USAGE_DIR="$tmp/usage2" build/lagoon serve \
  >"$tmp/lagoon2.log" 2>&1 &
lagoon2_pid=$!
pids+=("$lagoon2_pid")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$lagoon2_port/readyz" >/dev/null && break; sleep 0.1; done
for port in "$nginx_port" "$haproxy_port" "$origin_port"; do
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
done
nginx_worker=$(pgrep -P "$nginx_pid")
redis_pid=$REDIS_PID
postmaster=$(head -1 "$tmp/pg/data/postmaster.pid")

ticks() { local t=0 p; for p in "$@"; do t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat") )); done; echo $t; }
pg_ticks() { ticks "$postmaster" $(pgrep -P "$postmaster"); }
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
place() {  # LAYOUT: pin or float the proxies and the upstream (wrk is always on CPU 1)
  local proxies=0 origin=1 p
  [[ $1 == unpinned ]] && proxies=0,1 origin=0,1
  for p in "$lagoon_pid" "$lagoon2_pid" "$nginx_worker" "$haproxy_pid" $portkey_pid; do
    taskset -a -p -c $proxies "$p" >/dev/null
  done
  taskset -a -p -c $origin "$origin_worker" >/dev/null
}
drained() {  # waits until Lagoon's usage rows are in Postgres
  for _ in $(seq 200); do
    [[ $(bench_metric "$lagoon_port" lagoon_usage_queue_depth) == 0 ]] && break
    sleep 0.05
  done
  sleep 0.3
}
run() {  # LAYOUT C PATH SECONDS: one wrk run; appends one JSON line
  local layout=$1 c=$2 path=$3 port k="" pid="" url=/api/v1/chat/completions own0 all0 m0 u0 r own user all=0 m
  case $path in
    direct) port=$origin_port pid=$origin_worker ;;
    nginx) port=$nginx_port pid=$nginx_worker ;;
    haproxy) port=$haproxy_port pid=$haproxy_pid ;;
    lagoon) port=$lagoon_port pid=$lagoon_pid k=$key ;;
    lagoon_limits) port=$lagoon_port pid=$lagoon_pid k=$limits_key ;;
    lagoon_2threads) port=$lagoon2_port pid=$lagoon2_pid k=$key ;;
    portkey) port=$portkey_port pid=$portkey_pid k=$mock_key url=/v1/chat/completions ;;
  esac
  own0=$(ticks "$pid") m0=$(machine_ticks) u0=$(awk '{print $14}' "/proc/$pid/stat")
  [[ $path == lagoon* ]] && all0=$(( $(ticks "$redis_pid") + $(pg_ticks) ))
  if [[ -n "${PROXY_PROFILE:-}" && $path == lagoon* && $4 != 1 ]]; then  # perf of the Lagoon during the run
    perf record -F 2999 ${PROXY_PROFILE_ARGS:-} -o "$PROXY_PROFILE/$layout-$c-$path.data" -p "$pid" -- sleep "$(( $4 - 1 ))" \
      >/dev/null 2>&1 &
  fi
  if [[ -n "${PROXY_PERFSTAT:-}" && $4 != 1 ]]; then  # syscalls and context switches of the proxy, 1 s in
    (sleep 1; perf stat -e raw_syscalls:sys_enter,context-switches,cpu-migrations -p "$pid" -o "$PROXY_PERFSTAT/$layout-$c-$path.txt" \
      -- sleep "$(( $4 - 2 ))") >/dev/null 2>&1 &
  fi
  if [[ -n "${PROXY_STRACE:-}" && $4 != 1 ]]; then  # syscalls of the proxy during the run (slows it)
    timeout "$(( $4 - 1 ))" strace -f -c -o "$PROXY_STRACE/$layout-$c-$path.txt" -p "$pid" >/dev/null 2>&1 &
  fi
  r=$( [[ $path == portkey ]] && export WRK_PORTKEY_HOST="http://127.0.0.1:$origin_port/api/v1"; bench_wrk "$port" "$c" "$4" "$k" "$url")
  own=$(( $(ticks "$pid") - own0 )) user=$(( $(awk '{print $14}' "/proc/$pid/stat") - u0 ))
  if [[ $path == lagoon* ]]; then
    drained
    all=$(( own + $(ticks "$redis_pid") + $(pg_ticks) - all0 ))
  fi
  m=$(( $(machine_ticks) - m0 ))
  echo "{\"layout\":\"$layout\",\"c\":$c,\"path\":\"$path\",\"r\":$r,\"own_ticks\":$own,\"own_user_ticks\":$user,\"stack_ticks\":$all,\"machine_ticks\":$m}" >>"$sink"
}

paths="direct nginx haproxy lagoon lagoon_limits"
[[ -n "$portkey_pid" ]] && paths="$paths portkey"
all_paths=$paths
for layout in $LAYOUTS; do
  place "$layout"
  paths=$all_paths
  [[ $layout == unpinned ]] && paths="$paths lagoon_2threads"  # pinned to one core, a second thread is moot
  sink=$tmp/warm.jsonl
  for p in $paths; do run "$layout" 64 "$p" 1; done
  sink=$results
  for c in $CONNECTIONS; do
    for rep in $(seq "$REPS"); do
      echo "bench/proxy: $layout, $c connections, run $rep of $REPS" >&2
      for p in $paths; do run "$layout" "$c" "$p" "$DURATION"; done
    done
  done
done
mkdir -p "$(dirname "$out")"
cp "$results" "$out.jsonl"
python3 bench/lib/proxy_report.py "$results" "$(getconf CLK_TCK)" "$(git rev-parse --short HEAD)" >"$out.md"
cat "$out.md"
