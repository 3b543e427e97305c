#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, on a private port and socket directory.
#   tests/postgres.sh start DIR PORT [durable]  -> prints the Npgsql connection string
#   tests/postgres.sh stop DIR
set -euo pipefail
cmd=${1:?usage: postgres.sh start DIR PORT | stop DIR}
dir=${2:?directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL server binaries not found (apt-get install -y postgresql)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$cmd" in
  start)
    port=${3:?port}
    # Tests trade durability for speed; "durable" (benchmarks) keeps PostgreSQL's defaults.
    fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ "${4:-}" = durable ] && fast="-c shared_buffers=2GB -c max_wal_size=8GB -c checkpoint_timeout=30min"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -U vauban -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses='' $fast -c max_connections=300" start >/dev/null
    echo "Host=$dir;Port=$port;Username=vauban;Database=postgres"
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    ;;
esac
