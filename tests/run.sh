#!/usr/bin/env bash
# Runs the whole test suite: unit, integration (SQLite and a throwaway PostgreSQL), adversarial.
# Installs what the tests need on a fresh Debian machine, and ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
# Browser tests drive Debian's Chromium through Playwright (no browser download).
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing packages: ${need[*]} (install them, or run as root)" >&2; exit 1
  fi
fi

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
results=$(mktemp -d)
pgdir=$(mktemp -d /tmp/vauban-pg.XXXXXX)
port=$(( 40000 + RANDOM % 20000 ))
export VAUBAN_TEST_POSTGRES=$(bash tests/postgres.sh start "$pgdir" "$port") || { echo "could not start PostgreSQL" >&2; exit 1; }
trap 'bash tests/postgres.sh stop "$pgdir"; rm -rf "$pgdir" "$results"' EXIT

dotnet test Vauban.slnx --logger "trx;LogFileName=results.trx" --results-directory "$results" "$@"
status=$?

passed=0; failed=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(echo "$counters" | sed -n 's/.* passed="\([0-9]*\)".*/\1/p'); f=$(echo "$counters" | sed -n 's/.* failed="\([0-9]*\)".*/\1/p')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done
if [ "$passed" = 0 ] && [ "$failed" = 0 ] && [ "$status" != 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
exit $status
