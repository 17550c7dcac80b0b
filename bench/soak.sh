#!/usr/bin/env bash
# Cluster soak: PostgreSQL, Redis, the upstream stub (bench/Marginal.Bench.Stub) and three `marginal serve` nodes on
# loopback, sharing the ledger (PostgreSQL) and the budget counters and exact cache (Redis), driven at a fixed request
# rate spread evenly over the three nodes for a fixed time. Reports throughput, p50/p99 latency, each node's RSS
# every 10 s (memory over time) and lost records: successful answers minus the ledger's rows, which must be 0.
#
# Every request is under a budget and a rate limit (both far from full), so every one runs the Redis reservation
# script and its settlement; the request samples (temperature 0.2), so the exact cache never answers it and each
# one reaches the stub and is recorded. The rate is held by wrk's per-connection delay (bench/soak.lua): one wrk per
# node, each at rate/3. A connection waits its interval after each answer, so the rate reached is
# connections / (interval + latency): below the target by latency/interval (about 5% at 30 ms latency and the
# default 12 connections per node, 600 ms apart at 60 req/s); the report gives the rate reached.
#
# Usage: bench/soak.sh [--duration S (600)] [--rate REQ_PER_S (60)] [--connections PER_NODE (12)] [--out DIR] [--no-build]
# Every server binds 127.0.0.1 only; every process the script starts is stopped when it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
DURATION=600
RATE=60
CONNECTIONS=12
OUT="$BENCH/results"
BUILD=1
SAMPLE_EVERY=10

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "soak.sh: unknown argument '$1'" >&2; usage 2 ;;
    esac
done
for n in $DURATION $RATE $CONNECTIONS; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "soak.sh: '$n' is not a whole number above 0" >&2; exit 2; }
done
for tool in wrk curl dotnet redis-server awk; do
    command -v "$tool" >/dev/null || { echo "soak.sh: '$tool' is required" >&2; exit 1; }
done
PG_BIN=$(command -v pg_ctl >/dev/null 2>&1 && dirname "$(command -v pg_ctl)" || ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PG_BIN/initdb" ] || { echo "soak.sh: PostgreSQL's initdb and pg_ctl are required (apt-get install -y postgresql)" >&2; exit 1; }

cd "$ROOT"
if [ "$BUILD" = 1 ]; then
    echo "soak.sh: building Release (Marginal.Cli, Marginal.Bench.Stub)"
    dotnet build src/Marginal.Cli/Marginal.Cli.csproj -c Release -nologo -v q >/dev/null
    dotnet build bench/Marginal.Bench.Stub/Marginal.Bench.Stub.csproj -c Release -nologo -v q >/dev/null
fi
MARGINAL_DLL="$ROOT/src/Marginal.Cli/bin/Release/net10.0/marginal.dll"
STUB_DLL="$ROOT/bench/Marginal.Bench.Stub/bin/Release/net10.0/Marginal.Bench.Stub.dll"
for f in "$MARGINAL_DLL" "$STUB_DLL"; do
    [ -f "$f" ] || { echo "soak.sh: $f is missing; run without --no-build" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------------- processes
STAMP=$(date -u +%Y%m%d-%H%M%S)
RUN_DIR="$OUT/soak-$STAMP"
mkdir -p "$RUN_DIR"
declare -A PID
PG_USER=""
[ "$(id -u)" -eq 0 ] && PG_USER=postgres
run_pg() { ${PG_USER:+runuser -u "$PG_USER" --} "$@"; }
SCRIPT=soak.sh
START_TIMEOUT=60
# shellcheck source=bench/processes.sh
. "$BENCH/processes.sh"
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_processes
    [ -f "$RUN_DIR/pg/postmaster.pid" ] && run_pg "$PG_BIN/pg_ctl" -D "$RUN_DIR/pg" -m fast stop >/dev/null 2>&1
    rm -rf "$RUN_DIR/pg"
    exit "$status"
}
trap cleanup EXIT INT TERM

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        port_free "$port" && { echo "$port"; return; }
    done
}
PG_PORT=$(free_port)
mkdir -p "$RUN_DIR/pg"
[ -n "$PG_USER" ] && chown "$PG_USER" "$RUN_DIR" "$RUN_DIR/pg"
run_pg "$PG_BIN/initdb" -D "$RUN_DIR/pg" -U postgres -A trust -E UTF8 >/dev/null
run_pg "$PG_BIN/pg_ctl" -D "$RUN_DIR/pg" -l "$RUN_DIR/postgres.log" -w \
    -o "-p $PG_PORT -k $RUN_DIR/pg -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
export MARGINAL_SOAK_LEDGER="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=postgres"
REDIS_PORT=$(free_port)
start redis "$REDIS_PORT" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$RUN_DIR"
export MARGINAL_SOAK_REDIS="127.0.0.1:$REDIS_PORT"
STUB_PORT=$(free_port)
start stub "$STUB_PORT" dotnet "$STUB_DLL" "$STUB_PORT"

cat >"$RUN_DIR/plans.yaml" <<YAML
# Far from full: every request reserves and settles in Redis, none is refused.
tenants:
  default:
    budget:
      monthly_usd: 1000000
    limits:
      rpm: 1000000
YAML
NODE_PORTS=()
for i in 0 1 2; do
    port=$(free_port)
    NODE_PORTS+=("$port")
    mkdir -p "$RUN_DIR/node$i"
    cat >"$RUN_DIR/node$i/marginal.yaml" <<YAML
# Generated by bench/soak.sh: node $i of three, sharing PostgreSQL and Redis.
server:
  auth: none
storage:
  kind: postgres
  connection_string_env: MARGINAL_SOAK_LEDGER
  spool: $RUN_DIR/node$i/spool
redis:
  connection_string_env: MARGINAL_SOAK_REDIS
billing:
  plans: ../plans.yaml
providers:
  stub:
    kind: openai
    base_url: http://127.0.0.1:$STUB_PORT/v1
models:
  gpt-4o-mini:
    provider: stub
    price: deepseek-chat
YAML
    # One after another: the first node creates the ledger's schema.
    start "node$i" "$port" dotnet "$MARGINAL_DLL" serve --config "$RUN_DIR/node$i/marginal.yaml" --urls "http://127.0.0.1:$port"
done

BODY="$BENCH/requests/chat.json"
for port in "${NODE_PORTS[@]}"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' --data-binary "@$BODY")
    [ "$code" = 200 ] || { echo "soak.sh: node on port $port answered $code before the soak" >&2; exit 1; }
done
psql_count() { psql "postgresql://postgres@127.0.0.1:$PG_PORT/postgres" -tAc "SELECT count(*) FROM usage_records"; }
BEFORE=$(psql_count)

# ---------------------------------------------------------------------------------------------- soak
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/${PID[$1]}/status" 2>/dev/null || echo "-"; }
RSS="$RUN_DIR/rss.tsv"
printf 's\tnode0_mib\tnode1_mib\tnode2_mib\n' >"$RSS"
(
    t=0
    while [ "$t" -le "$DURATION" ]; do
        printf '%d\t%s\t%s\t%s\n' "$t" "$(rss_mib node0)" "$(rss_mib node1)" "$(rss_mib node2)" >>"$RSS"
        sleep "$SAMPLE_EVERY"
        t=$((t + SAMPLE_EVERY))
    done
) &
SAMPLER=$!
# Per node RATE/3 requests/s over CONNECTIONS connections: each connection waits CONNECTIONS*3000/RATE ms between requests.
INTERVAL=$(awk -v c="$CONNECTIONS" -v r="$RATE" 'BEGIN { printf "%d", c * 3000 / r }')
echo "soak.sh: $RATE req/s over 3 nodes for $DURATION s ($CONNECTIONS connections per node, one request every $INTERVAL ms each)"
WRKS=()
for i in 0 1 2; do
    BENCH_BODY="$BODY" SOAK_INTERVAL_MS="$INTERVAL" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s --latency -s "$BENCH/soak.lua" \
        "http://127.0.0.1:${NODE_PORTS[$i]}/v1/chat/completions" >"$RUN_DIR/wrk-node$i.txt" 2>&1 &
    WRKS+=($!)
done
for w in "${WRKS[@]}"; do wait "$w"; done
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true

# Nodes stop cleanly first (their ledger writers drain), so the count is final.
for i in 0 1 2; do kill "${PID[node$i]}"; done
for i in 0 1 2; do for _ in $(seq 100); do kill -0 "${PID[node$i]}" 2>/dev/null || break; sleep 0.1; done; done
ROWS=$(( $(psql_count) - BEFORE ))

# ---------------------------------------------------------------------------------------------- report
REPORT="$RUN_DIR/report.md"
grep -h '^RESULT ' "$RUN_DIR"/wrk-node*.txt >"$RUN_DIR/results.txt" || { echo "soak.sh: wrk gave no result; see $RUN_DIR/wrk-node*.txt" >&2; exit 1; }
{
    echo "# Cluster soak $STAMP"
    echo
    echo "- $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- three nodes, PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }'), Redis $(redis-server --version | awk '{ print $3 }' | cut -d= -f2), target $RATE req/s for $DURATION s, $CONNECTIONS connections per node"
    echo
    awk -v rows="$ROWS" -v duration="$DURATION" '
        { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[NR, kv[1]] = kv[2] } n = NR }
        END {
            for (i = 1; i <= n; i++) {
                req += v[i, "requests"]; ok += v[i, "ok"]; rps += v[i, "rps"]
                err += v[i, "non2xx"] + v[i, "connect"] + v[i, "read"] + v[i, "write"] + v[i, "timeout"]
                if (v[i, "p99_us"] > p99) p99 = v[i, "p99_us"]
                if (v[i, "p50_us"] > p50) p50 = v[i, "p50_us"]
                if (v[i, "max_us"] > max) max = v[i, "max_us"]
                printf "- node %d: %d requests, %.1f req/s, p50 %.2f ms, p99 %.2f ms, max %.1f ms\n", i - 1, v[i, "requests"], v[i, "rps"], v[i, "p50_us"] / 1000, v[i, "p99_us"] / 1000, v[i, "max_us"] / 1000
            }
            printf "- total: %d requests, %.1f req/s, %d successful, %d errors; worst node p50 %.2f ms, p99 %.2f ms, max %.1f ms\n", req, rps, ok, err, p50 / 1000, p99 / 1000, max / 1000
            printf "- ledger rows written during the soak: %d; lost records (successful answers without a row): %d", rows, (ok > rows ? ok - rows : 0)
            printf "; rows without an answer (requests cut off when wrk stopped): %d\n", (rows > ok ? rows - ok : 0)
        }' "$RUN_DIR/results.txt"
    echo
    echo "RSS (MiB) every $SAMPLE_EVERY s:"
    echo
    echo '| s | node0 | node1 | node2 |'
    echo '| --- | --- | --- | --- |'
    awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$RSS"
} >"$REPORT"
cat "$REPORT"
echo "soak.sh: report $REPORT; wrk output and server logs in $RUN_DIR"
OK=$(awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "ok") ok += kv[2] } } END { print ok }' "$RUN_DIR/results.txt")
[ "$OK" -le "$ROWS" ] || { echo "soak.sh: $((OK - ROWS)) records lost" >&2; exit 1; }
