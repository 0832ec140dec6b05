#!/usr/bin/env bash
# A Postgres primary with a synchronous streaming replica on loopback, for failover tests
# (tests/integration/failover_test.cpp). Synchronous, so that what the primary committed is on the
# replica when it is promoted, as in a production pair that promises no lost commits.
#   pg_pair.sh up DIR PRIMARY_PORT REPLICA_PORT   initdb, start the primary, pg_basebackup -R, start the replica
#   pg_pair.sh kill-primary DIR                  pg_ctl stop -m immediate (a crash, as far as clients see)
#   pg_pair.sh read-only-primary DIR PORT        the primary refuses writes from now on (as a demoted one)
#   pg_pair.sh promote DIR                       the replica becomes the primary
#   pg_pair.sh down DIR                          both stopped, DIR removed
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/services.sh

cmd=$1 dir=$2
case $cmd in
  up)
    primary_port=$3 replica_port=$4
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$dir"
    PG_FSYNC=off pg_init "$dir/primary"
    PG_FSYNC=off pg_start "$dir/primary" "$primary_port"
    as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/replica/data" -R -X stream \
      >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
    PG_FSYNC=off pg_start "$dir/replica" "$replica_port"
    # Commits wait for the replica from now on (it is connected: pg_start waited for it to accept).
    as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$primary_port" -U postgres -qAt \
      -c "ALTER SYSTEM SET synchronous_standby_names = '*'" -c "SELECT pg_reload_conf()" >/dev/null
    for _ in $(seq 100); do
      state=$(as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$primary_port" -U postgres -qAt \
        -c "SELECT sync_state FROM pg_stat_replication" 2>/dev/null || true)
      [[ $state == sync ]] && exit 0
      sleep 0.1
    done
    echo "the replica did not become synchronous" >&2; exit 1
    ;;
  kill-primary)
    as_pg "$PG_BIN/pg_ctl" -D "$dir/primary/data" -m immediate -w -t 30 stop >/dev/null
    ;;
  read-only-primary)
    as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$3" -U postgres -qAt \
      -c "ALTER SYSTEM SET default_transaction_read_only = on" -c "SELECT pg_reload_conf()" >/dev/null
    ;;
  promote)
    as_pg "$PG_BIN/pg_ctl" -D "$dir/replica/data" -w -t 30 promote >/dev/null
    ;;
  down)
    for side in primary replica; do
      [[ -f "$dir/$side/data/postmaster.pid" ]] && as_pg "$PG_BIN/pg_ctl" -D "$dir/$side/data" -m immediate -w -t 30 stop \
        >/dev/null 2>&1 || true
    done
    rm -rf "$dir"
    ;;
  *) echo "usage: pg_pair.sh up|kill-primary|promote|down DIR …" >&2; exit 2 ;;
esac
