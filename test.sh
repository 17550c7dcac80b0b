#!/usr/bin/env bash
# Runs every test in the solution and ends with one line: "N passed, N failed".
# PostgreSQL, Redis and Chromium (for the dashboard's browser test) are installed from Debian's packages when missing;
# PostgreSQL and Redis are started as throwaway instances on free
# ports of 127.0.0.1 (data in a temp dir, removed at exit) and handed to the tests through MARGINAL_TEST_POSTGRES and
# MARGINAL_TEST_REDIS. Without those variables the tests start their own instances (tests/Marginal.Testing/Services).
set -uo pipefail
cd "$(dirname "$0")"

services=$(mktemp -d)
pg_bin=""
pg_user=""
redis_pid=""
stop_services() {
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
  if [ -n "$pg_bin" ] && [ -f "$services/pg/postmaster.pid" ]; then
    ${pg_user:+runuser -u "$pg_user" --} "$pg_bin/pg_ctl" -D "$services/pg" -m immediate stop >/dev/null 2>&1
  fi
  rm -rf "$services"
}
trap stop_services EXIT

# A port nothing listens on: random in 20000-59999, probed with bash's /dev/tcp.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

find_pg_bin() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && { dirname "$(command -v pg_ctl)"; return; }
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

install_packages() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: $* missing and cannot be installed here (needs root and apt-get); install it or set MARGINAL_TEST_POSTGRES / MARGINAL_TEST_REDIS" >&2
    return 1
  fi
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ -z "${MARGINAL_TEST_POSTGRES:-}" ]; then
  pg_bin=$(find_pg_bin)
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    install_packages postgresql && pg_bin=$(find_pg_bin)
  fi
  if [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ]; then
    # PostgreSQL refuses to run as root: run it as the postgres user the package creates.
    if [ "$(id -u)" -eq 0 ]; then pg_user=postgres; chown "$pg_user" "$services"; fi
    run_pg() { ${pg_user:+runuser -u "$pg_user" --} "$@"; }
    pg_port=$(free_port)
    run_pg "$pg_bin/initdb" -D "$services/pg" -U postgres -A trust -E UTF8 --no-sync >/dev/null &&
    run_pg "$pg_bin/pg_ctl" -D "$services/pg" -l "$services/pg.log" -w \
      -o "-p $pg_port -k $services -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null &&
    export MARGINAL_TEST_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=postgres;Timeout=5;Command Timeout=30" ||
    echo "test.sh: could not start PostgreSQL (see above); the PostgreSQL tests will fail" >&2
  fi
fi

if [ -z "${MARGINAL_TEST_REDIS:-}" ]; then
  command -v redis-server >/dev/null 2>&1 || install_packages redis-server
  if command -v redis-server >/dev/null 2>&1; then
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$services" >"$services/redis.log" 2>&1 &
    redis_pid=$!
    export MARGINAL_TEST_REDIS="127.0.0.1:$redis_port"
  fi
fi

# The dashboard's browser test drives Debian's Chromium (no browser is downloaded by Playwright).
if [ ! -x /usr/bin/chromium ]; then
  install_packages chromium || echo "test.sh: could not install chromium; the dashboard browser test will fail" >&2
fi

log=$(mktemp)
dotnet test Marginal.slnx -c "${CONFIGURATION:-Release}" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
rm -f "$log"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
exit "$status"
