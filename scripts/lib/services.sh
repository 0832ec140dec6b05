# Shared by scripts/test and scripts/run-local: start and stop local Postgres and Redis on 127.0.0.1.
# Postgres refuses to run as root, so as root it runs as the `postgres` user (runuser).
# shellcheck shell=bash

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -n "$PG_BIN" ]] || { echo "Postgres server binaries not found (apt install postgresql)" >&2; exit 1; }

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A TCP port on 127.0.0.1 that nothing listens on right now, below Linux's ephemeral range
# (32768–60999) so that no outgoing connection is already using it.
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12700))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "no free port found" >&2; return 1
}

# pg_init DIR: a cluster in DIR/data (trust auth on loopback only, superuser postgres), once.
pg_init() {
  local dir=$1
  mkdir -p "$dir"
  [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$dir"
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; return 1; }
  fi
}

pg_start_cmd() { # DIR PORT -> the command line that starts it (also exported to tests)
  echo "$(as_pg_prefix)$PG_BIN/pg_ctl -D $1/data -l $1/postgres.log -w -t 30 -o \"-p $2 -k $1 -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-on}\" start"
}
pg_stop_cmd() { # DIR
  echo "$(as_pg_prefix)$PG_BIN/pg_ctl -D $1/data -m fast -w -t 30 stop"
}
as_pg_prefix() { [[ $(id -u) -eq 0 ]] && echo "runuser -u postgres -- " || true; }

pg_running() { [[ -f "$1/data/postmaster.pid" ]] && as_pg "$PG_BIN/pg_ctl" -D "$1/data" status >/dev/null 2>&1; }

pg_start() { # DIR PORT
  eval "$(pg_start_cmd "$1" "$2")" >/dev/null || { tail -n 20 "$1/postgres.log" >&2; return 1; }
}

pg_stop() { # DIR
  pg_running "$1" && eval "$(pg_stop_cmd "$1")" >/dev/null 2>&1 || true
}

# redis_start DIR PORT [extra args…]: runs redis-server in the background; sets REDIS_PID.
redis_start() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --logfile "$dir/redis.log" "$@" &
  REDIS_PID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "$REDIS_PID" 2>/dev/null || { tail -n 20 "$dir/redis.log" >&2; return 1; }
    sleep 0.05
  done
  echo "redis did not start on port $port" >&2; return 1
}
