#!/usr/bin/env bash
# Whole-system load test. In one run it measures requests/s and p50/p90/p99 latency (wrk) of three ways to
# reach the same upstream (bench/Marginal.Bench.Stub, a fixed OpenAI chat completion):
#   direct    client -> stub
#   marginal  client -> Marginal (`marginal serve`, Release build, as shipped) -> stub
#   portkey   client -> Portkey's open-source gateway (node) -> stub
# at 1, 10 and 50 connections, non-streamed ("json") and streamed ("stream"). It also reads each server's CPU
# time from /proc before and after every point, so the cost per request of each process is known exactly.
#
# Extra paths for investigations (not in the default run):
#   marginal-quiet  Marginal with per-request Information logging switched off (Logging__LogLevel__Default=Warning)
#   marginal-nopgo  Marginal with tiered PGO off (DOTNET_TieredPGO=0): no instrumented tier on the way to tier 1
#   marginal-alt2   the same with BENCH_ALT2_ENV, to compare two settings against plain `marginal` in one run
#   marginal-alt    Marginal with the environment in BENCH_ALT_ENV (space-separated NAME=VALUE), for A/B runs of
#                   runtime settings against plain `marginal` in the same run, e.g. BENCH_ALT_ENV="DOTNET_gcServer=1";
#                   with BENCH_ALT_DLL (a marginal.dll built from another commit, e.g. in a git worktree) it runs that
#                   build instead, for A/B runs of code changes
#   proxy           bench/Marginal.Bench.Proxy: Kestrel in, HttpClient out, bytes relayed unparsed (the floor)
#   marginal-nometer  Marginal with storage.record_usage false: requests are priced but not written to the ledger,
#                   to measure what durable metering costs against plain `marginal` (which records every request)
#   marginal-queued  Marginal with storage.acknowledge: queued: a request is answered once its record is queued (at
#                   most storage.max_unrecorded answered records uncommitted), against plain `marginal` (after commit)
#   marginal-responses, marginal-messages  the plain `marginal` server reached through /v1/responses and /v1/messages
#                   with the same conversation in that dialect (bench/requests/responses*.json, messages*.json)
#   marginal-hit    Marginal with the exact cache allowed to keep sampled answers for the model (cache_sampled): the
#                   fixed request body is answered from the cache after its first call, so every measured request is
#                   an exact hit (plain `marginal` does not cache the body's temperature-0.2 answers: it always goes upstream)
#
# CPU pinning: the machine this was written for has 2 cores. wrk gets core 0 and every server (stub, Marginal,
# Portkey) shares core 1, so that the client never steals time from the servers and every path has the same
# single core for all of its server-side work; the stub's own work is on that core in all three paths.
# Override with BENCH_CLIENT_CPUS / BENCH_SERVER_CPUS (taskset lists); with fewer than 2 cores nothing is pinned.
# Run as root, every process the script starts gets nice -19 (BENCH_NICE), so that other work on the machine
# disturbs the measurement less; the report shows, per point, how busy the server core was with anything else.
# Before the measured points each path is warmed for --prewarm seconds (JIT tiering on one busy core is slow).
#
# Steady load (--rates "25 50 75"): after the closed-loop points, the relay's capacity is measured (wrk, 50
# connections, the proxy path, which --rates requires), then every path is driven open-loop at each given percentage
# of it by bench/Marginal.Bench.OpenLoop: requests leave on a fixed schedule whether or not earlier ones were
# answered, and latency counts from each request's scheduled time, so queueing in a server is not hidden by the
# client slowing down (coordinated omission). p50, p99 and p99.9 are reported with what each path adds over the
# relay. `--connections ""` skips the closed-loop points. Example (the steady-load run in docs/benchmarks.md):
#   bench/load.sh --paths "direct proxy marginal marginal-nometer" --connections "" --rates "25 50 75"
#
# Usage: bench/load.sh [--duration S] [--warmup S] [--prewarm S] [--connections "1 10 50"]
#                      [--paths "direct marginal portkey"] [--modes "json stream"] [--rates "25 50 75"]
#                      [--out DIR] [--no-build]
# Every server binds 127.0.0.1 only; every process the script starts is stopped when it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
DURATION=10
WARMUP=3
PREWARM=20
CONNECTIONS="1 10 50"
PATHS="direct marginal portkey"
MODES="json stream"
RATES=""
OUT="$BENCH/results"
BUILD=1
STUB_PORT=${STUB_PORT:-18181}
MARGINAL_PORT=${MARGINAL_PORT:-18182}
PORTKEY_PORT=${PORTKEY_PORT:-18183}
QUIET_PORT=${QUIET_PORT:-18184}
PROXY_PORT=${PROXY_PORT:-18185}
NOPGO_PORT=${NOPGO_PORT:-18186}
ALT_PORT=${ALT_PORT:-18187}
ALT2_PORT=${ALT2_PORT:-18191}
NOMETER_PORT=${NOMETER_PORT:-18188}
QUEUED_PORT=${QUEUED_PORT:-18190}
HIT_PORT=${HIT_PORT:-18189}
CLIENT_CPUS=${BENCH_CLIENT_CPUS:-0}
SERVER_CPUS=${BENCH_SERVER_CPUS:-1}
NICE=${BENCH_NICE:-$([ "$(id -u)" = 0 ] && echo -19 || echo 0)}
PORTKEY_VERSION=1.15.2
# Portkey's gateway breaks on @hono/node-server >= 1.14 ("TypeError: immutable" on every streamed answer,
# Portkey-AI/gateway#1389); npm would install 1.19.x, so pin the last release that works.
HONO_NODE_SERVER_VERSION=1.13.8
PORTKEY_DIR="$BENCH/.portkey"
MODEL=gpt-4o-mini

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --prewarm) PREWARM=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --paths) PATHS=$2; shift 2 ;;
        --modes) MODES=$2; shift 2 ;;
        --rates) RATES=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage 0 ;;
        *) echo "load.sh: unknown argument '$1'" >&2; usage 2 ;;
    esac
done
for n in $DURATION $WARMUP $PREWARM $CONNECTIONS $RATES; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "load.sh: '$n' is not a whole number" >&2; exit 2; }
done
for p in $PATHS; do
    case $p in direct|marginal|portkey|marginal-quiet|marginal-nopgo|marginal-alt|marginal-alt2|marginal-nometer|marginal-queued|marginal-hit|marginal-responses|marginal-messages|proxy) ;;
        *) echo "load.sh: unknown path '$p' (allowed: direct marginal portkey marginal-quiet marginal-nopgo marginal-alt marginal-alt2 marginal-nometer marginal-queued marginal-hit marginal-responses marginal-messages proxy)" >&2; exit 2 ;;
    esac
done
for m in $MODES; do
    case $m in json|stream) ;; *) echo "load.sh: unknown mode '$m' (allowed: json stream)" >&2; exit 2 ;; esac
done
has_path() { [[ " $PATHS " == *" $1 "* ]]; }
if [ -n "$RATES" ] && ! has_path proxy; then
    echo "load.sh: --rates are percentages of the relay's capacity: add proxy to --paths" >&2; exit 2
fi
for r in $RATES; do
    [ "$r" -ge 1 ] && [ "$r" -le 100 ] || { echo "load.sh: --rates takes percentages from 1 to 100, not '$r'" >&2; exit 2; }
done

# ---------------------------------------------------------------------------------------------- tools
if ! command -v wrk >/dev/null; then
    echo "load.sh: installing wrk (Debian package)"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
for tool in wrk curl dotnet taskset awk; do
    command -v "$tool" >/dev/null || { echo "load.sh: '$tool' is required" >&2; exit 1; }
done
if has_path portkey; then
    command -v node >/dev/null && command -v npm >/dev/null || { echo "load.sh: node and npm are required for the portkey path" >&2; exit 1; }
fi
CPUS=$(nproc)
# Command prefixes (arrays, not functions, so that "$!" is the server's own PID: taskset and env exec it).
if [ "$CPUS" -lt 2 ]; then
    echo "load.sh: only $CPUS core(s): client and servers are not pinned" >&2
    CLIENT_PIN=(nice -n "$NICE")
    SERVER_PIN=(nice -n "$NICE")
    PINNING="none (only $CPUS core)"
else
    CLIENT_PIN=(nice -n "$NICE" taskset -c "$CLIENT_CPUS")
    SERVER_PIN=(nice -n "$NICE" taskset -c "$SERVER_CPUS")
    PINNING="wrk on CPU $CLIENT_CPUS; stub and every gateway share CPU $SERVER_CPUS"
fi
[ "$NICE" = 0 ] || PINNING="$PINNING; all at nice $NICE"

# ---------------------------------------------------------------------------------------------- build
cd "$ROOT"
if [ "$BUILD" = 1 ]; then
    echo "load.sh: building Release (Marginal.Cli, Marginal.Bench.Stub)"
    dotnet build src/Marginal.Cli/Marginal.Cli.csproj -c Release -nologo -v q >/dev/null
    dotnet build bench/Marginal.Bench.Stub/Marginal.Bench.Stub.csproj -c Release -nologo -v q >/dev/null
    if has_path proxy; then
        dotnet build bench/Marginal.Bench.Proxy/Marginal.Bench.Proxy.csproj -c Release -nologo -v q >/dev/null
    fi
    if [ -n "$RATES" ]; then
        dotnet build bench/Marginal.Bench.OpenLoop/Marginal.Bench.OpenLoop.csproj -c Release -nologo -v q >/dev/null
    fi
fi
OPENLOOP_DLL="$ROOT/bench/Marginal.Bench.OpenLoop/bin/Release/net10.0/Marginal.Bench.OpenLoop.dll"
[ -z "$RATES" ] || [ -f "$OPENLOOP_DLL" ] || { echo "load.sh: $OPENLOOP_DLL is missing; run without --no-build" >&2; exit 1; }
MARGINAL_DLL="$ROOT/src/Marginal.Cli/bin/Release/net10.0/marginal.dll"
STUB_DLL="$ROOT/bench/Marginal.Bench.Stub/bin/Release/net10.0/Marginal.Bench.Stub.dll"
PROXY_DLL="$ROOT/bench/Marginal.Bench.Proxy/bin/Release/net10.0/Marginal.Bench.Proxy.dll"
for f in "$MARGINAL_DLL" "$STUB_DLL"; do
    [ -f "$f" ] || { echo "load.sh: $f is missing; run without --no-build" >&2; exit 1; }
done
PORTKEY_MAIN="$PORTKEY_DIR/node_modules/@portkey-ai/gateway/build/start-server.js"
if has_path portkey; then
    installed=$(node -p "try{require('$PORTKEY_DIR/node_modules/@portkey-ai/gateway/package.json').version}catch{''}" 2>/dev/null || true)
    hono=$(node -p "try{require('$PORTKEY_DIR/node_modules/@hono/node-server/package.json').version}catch{''}" 2>/dev/null || true)
    if [ "$installed" != "$PORTKEY_VERSION" ] || [ "$hono" != "$HONO_NODE_SERVER_VERSION" ]; then
        echo "load.sh: installing @portkey-ai/gateway@$PORTKEY_VERSION into bench/.portkey (not committed)"
        mkdir -p "$PORTKEY_DIR"
        printf '{"name":"portkey-bench","private":true,"dependencies":{"@portkey-ai/gateway":"%s"},"overrides":{"@hono/node-server":"%s"}}\n' \
            "$PORTKEY_VERSION" "$HONO_NODE_SERVER_VERSION" > "$PORTKEY_DIR/package.json"
        (cd "$PORTKEY_DIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
    fi
fi

# ---------------------------------------------------------------------------------------------- processes
STAMP=$(date -u +%Y%m%d-%H%M%S)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RUN_DIR="$OUT/load-$STAMP"
mkdir -p "$RUN_DIR"
declare -A PID
SCRIPT=load.sh
# shellcheck source=bench/processes.sh
. "$BENCH/processes.sh"
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_processes
    exit "$status"
}
trap cleanup EXIT INT TERM

# The config sits in a folder of its own: Marginal watches the config's folder, and the logs go to RUN_DIR.
mkdir -p "$RUN_DIR/config"
CONFIG="$RUN_DIR/config/marginal.yaml"
cat >"$CONFIG" <<EOF
# Generated by bench/load.sh: one OpenAI-compatible provider (the stub) and one model, priced at a shipped entry
# so every request is costed. Every Marginal path records into a ledger of its own in RUN_DIR.
server:
  urls: http://127.0.0.1:$MARGINAL_PORT
  auth: none
storage:
  path: $RUN_DIR/marginal.db
providers:
  stub:
    kind: openai
    base_url: http://127.0.0.1:$STUB_PORT/v1
models:
  $MODEL:
    provider: stub
    price: deepseek-chat
EOF
# The same gateway with the ledger off: priced, not recorded. A folder of its own, like the main config.
mkdir -p "$RUN_DIR/config-nometer"
NOMETER_CONFIG="$RUN_DIR/config-nometer/marginal.yaml"
sed -e "s#^  path: .*#  path: $RUN_DIR/nometer.db\n  record_usage: false#" "$CONFIG" >"$NOMETER_CONFIG"
# The same gateway answering once the record is queued rather than committed.
mkdir -p "$RUN_DIR/config-queued"
QUEUED_CONFIG="$RUN_DIR/config-queued/marginal.yaml"
sed -e "s#^  path: .*#  path: $RUN_DIR/queued.db\n  acknowledge: queued#" "$CONFIG" >"$QUEUED_CONFIG"
# The same gateway with the model's sampled answers cacheable: every request after the first is an exact hit.
mkdir -p "$RUN_DIR/config-hit"
HIT_CONFIG="$RUN_DIR/config-hit/marginal.yaml"
sed -e "s#^  path: .*#  path: $RUN_DIR/hit.db#" "$CONFIG" >"$HIT_CONFIG"
printf 'cache:\n  routes:\n    %s: { cache_sampled: true }\n' "$MODEL" >>"$HIT_CONFIG"

start stub "$STUB_PORT" "${SERVER_PIN[@]}" dotnet "$STUB_DLL" "$STUB_PORT"
if has_path marginal || has_path marginal-responses || has_path marginal-messages; then
    start marginal "$MARGINAL_PORT" "${SERVER_PIN[@]}" dotnet "$MARGINAL_DLL" serve --config "$CONFIG" --urls "http://127.0.0.1:$MARGINAL_PORT"
fi
if has_path marginal-quiet; then
    start marginal-quiet "$QUIET_PORT" env Logging__LogLevel__Default=Warning "${SERVER_PIN[@]}" \
        dotnet "$MARGINAL_DLL" serve --config "$CONFIG" --urls "http://127.0.0.1:$QUIET_PORT"
fi
if has_path marginal-nopgo; then
    start marginal-nopgo "$NOPGO_PORT" env DOTNET_TieredPGO=0 "${SERVER_PIN[@]}" \
        dotnet "$MARGINAL_DLL" serve --config "$CONFIG" --urls "http://127.0.0.1:$NOPGO_PORT"
fi
if has_path marginal-alt; then
    # shellcheck disable=SC2086 # BENCH_ALT_ENV is a list of NAME=VALUE words on purpose
    start marginal-alt "$ALT_PORT" env ${BENCH_ALT_ENV:-} "${SERVER_PIN[@]}" \
        dotnet "${BENCH_ALT_DLL:-$MARGINAL_DLL}" serve --config "$CONFIG" --urls "http://127.0.0.1:$ALT_PORT"
fi
if has_path marginal-alt2; then
    # shellcheck disable=SC2086 # BENCH_ALT2_ENV is a list of NAME=VALUE words on purpose
    start marginal-alt2 "$ALT2_PORT" env ${BENCH_ALT2_ENV:-} "${SERVER_PIN[@]}" \
        dotnet "$MARGINAL_DLL" serve --config "$CONFIG" --urls "http://127.0.0.1:$ALT2_PORT"
fi
if has_path marginal-nometer; then
    start marginal-nometer "$NOMETER_PORT" "${SERVER_PIN[@]}" \
        dotnet "$MARGINAL_DLL" serve --config "$NOMETER_CONFIG" --urls "http://127.0.0.1:$NOMETER_PORT"
fi
if has_path marginal-queued; then
    start marginal-queued "$QUEUED_PORT" "${SERVER_PIN[@]}" \
        dotnet "$MARGINAL_DLL" serve --config "$QUEUED_CONFIG" --urls "http://127.0.0.1:$QUEUED_PORT"
fi
if has_path marginal-hit; then
    start marginal-hit "$HIT_PORT" "${SERVER_PIN[@]}" \
        dotnet "$MARGINAL_DLL" serve --config "$HIT_CONFIG" --urls "http://127.0.0.1:$HIT_PORT"
fi
if has_path proxy; then
    [ -f "$PROXY_DLL" ] || { echo "load.sh: $PROXY_DLL is missing; run without --no-build" >&2; exit 1; }
    start proxy "$PROXY_PORT" "${SERVER_PIN[@]}" dotnet "$PROXY_DLL" "$PROXY_PORT" "http://127.0.0.1:$STUB_PORT/v1"
fi
if has_path portkey; then
    # --import preloads bench/loopback-only.mjs: Portkey listens on every interface otherwise.
    start portkey "$PORTKEY_PORT" env NODE_ENV=production "${SERVER_PIN[@]}" \
        node --import "$BENCH/loopback-only.mjs" "$PORTKEY_MAIN" "--port=$PORTKEY_PORT" --headless
fi

url_of() {
    case $1 in
        direct) echo "http://127.0.0.1:$STUB_PORT/v1/chat/completions" ;;
        marginal) echo "http://127.0.0.1:$MARGINAL_PORT/v1/chat/completions" ;;
        marginal-quiet) echo "http://127.0.0.1:$QUIET_PORT/v1/chat/completions" ;;
        marginal-nopgo) echo "http://127.0.0.1:$NOPGO_PORT/v1/chat/completions" ;;
        marginal-alt) echo "http://127.0.0.1:$ALT_PORT/v1/chat/completions" ;;
        marginal-alt2) echo "http://127.0.0.1:$ALT2_PORT/v1/chat/completions" ;;
        marginal-nometer) echo "http://127.0.0.1:$NOMETER_PORT/v1/chat/completions" ;;
        marginal-queued) echo "http://127.0.0.1:$QUEUED_PORT/v1/chat/completions" ;;
        marginal-hit) echo "http://127.0.0.1:$HIT_PORT/v1/chat/completions" ;;
        marginal-responses) echo "http://127.0.0.1:$MARGINAL_PORT/v1/responses" ;;
        marginal-messages) echo "http://127.0.0.1:$MARGINAL_PORT/v1/messages" ;;
        proxy) echo "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" ;;
        portkey) echo "http://127.0.0.1:$PORTKEY_PORT/v1/chat/completions" ;;
    esac
}
# Every path gets the same headers; only Portkey reads its own (which upstream to call).
HEADERS=(-H "Authorization: Bearer sk-bench" -H "x-portkey-provider: openai" -H "x-portkey-custom-host: http://127.0.0.1:$STUB_PORT/v1")
# The body for a mode and path: the Responses and Messages paths send the same conversation in their own dialect.
body_of() {
    local kind=chat
    case ${2:-} in marginal-responses) kind=responses ;; marginal-messages) kind=messages ;; esac
    [ "$1" = stream ] && echo "$BENCH/requests/$kind-stream.json" || echo "$BENCH/requests/$kind.json"
}
gateway_of() { case $1 in direct) echo stub ;; marginal-responses|marginal-messages) echo marginal ;; *) echo "$1" ;; esac; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/${PID[$1]}/stat"; }
servers_ticks() { local sum=0 name; for name in "${!PID[@]}"; do sum=$((sum + $(cpu_ticks "$name"))); done; echo "$sum"; }
# Busy and total ticks of the server core (when it is one core), to tell how much else ran there.
core_ticks() {
    if [[ $SERVER_CPUS =~ ^[0-9]+$ ]] && [ "$CPUS" -ge 2 ]; then
        awk -v cpu="cpu$SERVER_CPUS" '$1 == cpu { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
    else
        echo "0 0"
    fi
}
TICK=$(getconf CLK_TCK)

# Each path must give the stub's answer before it is measured.
for mode in $MODES; do
    for path in $PATHS; do
        reply=$(curl -s -w '\n%{http_code}' -X POST "$(url_of "$path")" -H 'Content-Type: application/json' "${HEADERS[@]}" --data-binary "@$(body_of "$mode" "$path")")
        code=${reply##*$'\n'}
        if [ "$code" != 200 ] || ! grep -q 'economics' <<<"$reply" \
            || { [ "$mode" = stream ] && ! grep -qE 'data: \[DONE\]|response\.completed|message_stop' <<<"$reply"; }; then
            echo "load.sh: $path ($mode) did not relay the stub's answer (HTTP $code):" >&2
            head -c 600 <<<"$reply" >&2; echo >&2; exit 1
        fi
    done
done

# ---------------------------------------------------------------------------------------------- measure
points=0; warms=0
for _ in $MODES; do for _ in $PATHS; do warms=$((warms + 1)); for _ in $CONNECTIONS; do points=$((points + 1)); done; done; done
echo "load.sh: $points points x (${WARMUP}s warm-up + ${DURATION}s) after ${PREWARM}s warming per path and mode: about $(( (points * (WARMUP + DURATION) + warms * PREWARM) / 60 + 1 )) min; output in $RUN_DIR"
if [ "$PREWARM" -gt 0 ]; then
    for mode in $MODES; do
        for path in $PATHS; do
            BENCH_BODY=$(body_of "$mode" "$path") "${CLIENT_PIN[@]}" wrk -t1 -c10 -d"${PREWARM}s" --timeout 10s -s "$BENCH/chat.lua" "${HEADERS[@]}" "$(url_of "$path")" >/dev/null
        done
    done
fi
RESULTS="$RUN_DIR/results.tsv"
printf 'mode\tpath\tconns\trps\tp50_us\tp90_us\tp99_us\tmax_us\terrors\tserver_cpu_us\tstub_cpu_us\tother_load_pct\n' >"$RESULTS"
for mode in $MODES; do
    export BENCH_BODY; BENCH_BODY=$(body_of "$mode")
    for conns in $CONNECTIONS; do
        for path in $PATHS; do
            url=$(url_of "$path")
            BENCH_BODY=$(body_of "$mode" "$path")
            # One wrk thread: it has one core, and one event loop drives 50 connections easily.
            "${CLIENT_PIN[@]}" wrk -t1 -c"$conns" -d"${WARMUP}s" --timeout 10s -s "$BENCH/chat.lua" "${HEADERS[@]}" "$url" >/dev/null
            gateway=$(gateway_of "$path")
            before_gw=$(cpu_ticks "$gateway"); before_stub=$(cpu_ticks stub); before_all=$(servers_ticks); read -r before_busy before_total < <(core_ticks)
            raw="$RUN_DIR/wrk-$mode-$path-c$conns.txt"
            "${CLIENT_PIN[@]}" wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 10s --latency -s "$BENCH/chat.lua" "${HEADERS[@]}" "$url" >"$raw"
            after_gw=$(cpu_ticks "$gateway"); after_stub=$(cpu_ticks stub); after_all=$(servers_ticks); read -r after_busy after_total < <(core_ticks)
            line=$(grep '^RESULT ' "$raw") || { echo "load.sh: wrk gave no result for $path $mode c=$conns; see $raw" >&2; exit 1; }
            awk -v mode="$mode" -v path="$path" -v conns="$conns" -v tick="$TICK" \
                -v gw=$((after_gw - before_gw)) -v stub=$((after_stub - before_stub)) -v direct="$([ "$path" = direct ] && echo 1 || echo 0)" \
                -v busy=$((after_busy - before_busy)) -v total=$((after_total - before_total)) -v ours=$((after_all - before_all)) '
                { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
                END {
                    errors = v["non2xx"] + v["connect"] + v["read"] + v["write"] + v["timeout"]
                    n = v["requests"] > 0 ? v["requests"] : 1
                    gw_us = gw * 1e6 / tick / n; stub_us = stub * 1e6 / tick / n
                    # On the direct path the "server" is the stub itself.
                    if (direct) gw_us = stub_us
                    # Whatever kept the server core busy besides our servers (other processes, steal, interrupts).
                    other = total > 0 ? (busy - ours) * 100 / total : -1
                    if (other < 0 && total > 0) other = 0
                    printf "%s\t%s\t%s\t%.0f\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%s\n", mode, path, conns, v["rps"], v["p50_us"], v["p90_us"], v["p99_us"], v["max_us"], errors, gw_us, stub_us, (total > 0 ? sprintf("%.0f", other) : "n/a")
                }' <<<"$line" >>"$RESULTS"
            tail -1 "$RESULTS" | awk -F'\t' '{ printf "  %-6s %-15s c=%-3s %9s req/s  p50 %7.3f ms  p99 %7.3f ms  errors %s  server CPU %s us/req  other load %s%%\n", $1, $2, $3, $4, $5/1000, $7/1000, $9, $10, $12 }'
        done
    done
done

# ---------------------------------------------------------------------------------------------- steady load
STEADY="$RUN_DIR/steady.tsv"
if [ -n "$RATES" ]; then
    printf 'mode\tpct\trate\tpath\trps\tp50_us\tp99_us\tp999_us\tmax_us\terrors\tsend_lag_p99_us\tserver_cpu_us\tother_load_pct\n' >"$STEADY"
    for mode in $MODES; do
        export BENCH_BODY; BENCH_BODY=$(body_of "$mode")
        # The relay's capacity in this mode: closed loop, 50 connections, as in the closed-loop points.
        raw="$RUN_DIR/capacity-$mode-proxy.txt"
        "${CLIENT_PIN[@]}" wrk -t1 -c50 -d"${DURATION}s" --timeout 10s --latency -s "$BENCH/chat.lua" "${HEADERS[@]}" "$(url_of proxy)" >"$raw"
        capacity=$(grep '^RESULT ' "$raw" | tr ' ' '\n' | awk -F= '$1 == "rps" { printf "%.0f", $2 }')
        [ -n "$capacity" ] && [ "$capacity" -gt 0 ] || { echo "load.sh: no capacity measured for the relay ($mode); see $raw" >&2; exit 1; }
        echo "  $mode relay capacity: $capacity req/s (wrk, 50 connections)"
        for pct in $RATES; do
            rate=$((capacity * pct / 100))
            for path in $PATHS; do
                [ "$path" = portkey ] && continue
                BENCH_BODY=$(body_of "$mode" "$path")
                gateway=$(gateway_of "$path")
                before_gw=$(cpu_ticks "$gateway"); before_all=$(servers_ticks); read -r before_busy before_total < <(core_ticks)
                raw="$RUN_DIR/open-$mode-$path-$pct.txt"
                "${CLIENT_PIN[@]}" dotnet "$OPENLOOP_DLL" --url "$(url_of "$path")" --body "$BENCH_BODY" --rate "$rate" \
                    --duration "$DURATION" --warmup "$WARMUP" --header "Authorization: Bearer sk-bench" >"$raw"
                after_gw=$(cpu_ticks "$gateway"); after_all=$(servers_ticks); read -r after_busy after_total < <(core_ticks)
                line=$(grep '^RESULT ' "$raw") || { echo "load.sh: the open-loop client gave no result for $path $mode $pct%; see $raw" >&2; exit 1; }
                awk -v mode="$mode" -v pct="$pct" -v rate="$rate" -v path="$path" -v tick="$TICK" -v gw=$((after_gw - before_gw)) \
                    -v busy=$((after_busy - before_busy)) -v total=$((after_total - before_total)) -v ours=$((after_all - before_all)) '
                    { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
                    END {
                        n = v["requests"] > 0 ? v["requests"] : 1
                        other = total > 0 ? (busy - ours) * 100 / total : -1
                        if (other < 0 && total > 0) other = 0
                        printf "%s\t%s\t%s\t%s\t%.0f\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t%s\n", mode, pct, rate, path, v["rps"], v["p50_us"], v["p99_us"], v["p999_us"], v["max_us"], v["errors"], v["send_lag_p99_us"], gw * 1e6 / tick / n, (total > 0 ? sprintf("%.0f", other) : "n/a")
                    }' <<<"$line" >>"$STEADY"
                tail -1 "$STEADY" | awk -F'\t' '{ printf "  %-6s %3s%% %6s req/s %-16s p50 %7.3f ms  p99 %7.3f ms  p99.9 %7.3f ms  errors %s  send lag p99 %.3f ms\n", $1, $2, $3, $4, $6/1000, $7/1000, $8/1000, $10, $11/1000 }'
            done
        done
    done
fi

# ---------------------------------------------------------------------------------------------- report
MODEL_NAME=$(lscpu | awk -F': *' '/^Model name/ { print $2; exit }')
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ] && COMMIT="$COMMIT (with uncommitted changes)"
DOTNET_RUNTIME=$(dotnet --list-runtimes | awk '/Microsoft.AspNetCore.App/ { v = $2 } END { print v }')
NODE_VERSION=$(command -v node >/dev/null && node --version || echo -)
WRK_VERSION=$( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $2 }')
REPORT="$RUN_DIR/results.md"
{
    echo "# Load test $STAMP"
    echo
    echo "- date (UTC): $(date -u '+%Y-%m-%d %H:%M')"
    echo "- machine: $CPUS cores, $MODEL_NAME, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "- pinning: $PINNING"
    echo "- commit: $COMMIT"
    echo "- versions: ASP.NET Core $DOTNET_RUNTIME, node $NODE_VERSION, wrk $WRK_VERSION, @portkey-ai/gateway $PORTKEY_VERSION (@hono/node-server $HONO_NODE_SERVER_VERSION)"
    echo "- load average before the run: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- command: \`bench/load.sh --duration $DURATION --warmup $WARMUP --prewarm $PREWARM --connections \"$CONNECTIONS\" --paths \"$PATHS\" --modes \"$MODES\"${RATES:+ --rates \"$RATES\"}\`"
    echo "- each point: ${WARMUP} s warm-up, then \`wrk -t1 -c<conns> -d${DURATION}s --latency -s bench/chat.lua\`; bodies bench/requests/chat.json and chat-stream.json"
    echo "- server CPU: user+system CPU time of the process serving the path (the stub on the direct path), per request, from /proc"
    echo "- other load: share of the server core used by anything but our servers during the point (other processes, steal); high values mean the point was disturbed"
    echo
    awk -F'\t' '
        NR == 1 { next }
        { key = $1 SUBSEP $3; if ($2 == "direct") { d50[key] = $5; d99[key] = $7 } rows[NR] = $0 }
        END {
            print "| mode | path | conns | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU µs/req | stub CPU µs/req | p50 over direct ms | p99 over direct ms | other load % |"
            print "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
            for (i = 2; i <= NR; i++) {
                split(rows[i], f, "\t"); key = f[1] SUBSEP f[3]
                over50 = (f[2] != "direct" && key in d50) ? sprintf("%+.3f", (f[5] - d50[key]) / 1000) : ""
                over99 = (f[2] != "direct" && key in d99) ? sprintf("%+.3f", (f[7] - d99[key]) / 1000) : ""
                printf "| %s | %s | %s | %s | %.3f | %.3f | %.3f | %.1f | %s | %s | %s | %s | %s | %s |\n", f[1], f[2], f[3], f[4], f[5]/1000, f[6]/1000, f[7]/1000, f[8]/1000, f[9], f[10], f[11], over50, over99, f[12]
            }
        }' "$RESULTS"
    if [ -n "$RATES" ]; then
        echo
        echo "## Steady load (open loop)"
        echo
        echo "Each path driven at a fixed rate (a percentage of the relay's capacity, measured first) by bench/Marginal.Bench.OpenLoop for ${DURATION} s after ${WARMUP} s; latency from each request's scheduled time. \"over relay\": what the path adds to the proxy path's percentile at the same rate. Send lag: how late the client itself sent (large values mean the client, not the server, was the limit)."
        echo
        awk -F'\t' '
            NR == 1 { next }
            { key = $1 SUBSEP $2; if ($4 == "proxy") { r50[key] = $6; r99[key] = $7; r999[key] = $8 } rows[NR] = $0 }
            END {
                print "| mode | % of relay | rate req/s | path | achieved req/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | p50 over relay ms | p99 over relay ms | p99.9 over relay ms | send lag p99 ms | server CPU µs/req | other load % |"
                print "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
                for (i = 2; i <= NR; i++) {
                    split(rows[i], f, "\t"); key = f[1] SUBSEP f[2]
                    o50 = (f[4] != "proxy" && key in r50) ? sprintf("%+.3f", (f[6] - r50[key]) / 1000) : ""
                    o99 = (f[4] != "proxy" && key in r99) ? sprintf("%+.3f", (f[7] - r99[key]) / 1000) : ""
                    o999 = (f[4] != "proxy" && key in r999) ? sprintf("%+.3f", (f[8] - r999[key]) / 1000) : ""
                    printf "| %s | %s | %s | %s | %s | %.3f | %.3f | %.3f | %.1f | %s | %s | %s | %s | %.3f | %s | %s |\n", f[1], f[2], f[3], f[4], f[5], f[6]/1000, f[7]/1000, f[8]/1000, f[9]/1000, f[10], o50, o99, o999, f[11]/1000, f[12], f[13]
                }
            }' "$STEADY"
    fi
    echo
    echo "## Targets"
    echo
    awk -F'\t' -v modes="$MODES" -v connections="$CONNECTIONS" '
        NR == 1 { next }
        { rps[$1, $2, $3] = $4; p50[$1, $2, $3] = $5; p99[$1, $2, $3] = $7; conns[$3] = 1; seen[$2] = 1 }
        END {
            n = split(modes, m, " "); nc = split(connections, cs, " ")
            for (i = 1; i <= n; i++) {
                mode = m[i]
                if (seen["marginal"] && seen["portkey"]) {
                    best_m = 0; best_p = 0; detail = ""
                    for (j = 1; j <= nc; j++) {
                        c = cs[j]
                        if (rps[mode, "marginal", c] > best_m) best_m = rps[mode, "marginal", c]
                        if (rps[mode, "portkey", c] > best_p) best_p = rps[mode, "portkey", c]
                        if (rps[mode, "portkey", c] > 0) detail = detail sprintf(" c=%s: %.1fx;", c, rps[mode, "marginal", c] / rps[mode, "portkey", c])
                    }
                    ratio = best_p > 0 ? best_m / best_p : 0
                    printf "- %s: Marginal sustains %.0f req/s, Portkey %.0f req/s (best over concurrency): %.1fx — target >= 10x %s. Per concurrency:%s\n", mode, best_m, best_p, ratio, (ratio >= 10 ? "MET" : "MISSED"), detail
                }
                if (seen["marginal"] && seen["direct"] && ((mode, "direct", 1) in p50)) {
                    o50 = (p50[mode, "marginal", 1] - p50[mode, "direct", 1]) / 1000
                    o99 = (p99[mode, "marginal", 1] - p99[mode, "direct", 1]) / 1000
                    printf "- %s, 1 connection: Marginal adds %.3f ms at p50 (target <= 0.1 ms: %s) and %.3f ms at p99 (target <= 1 ms: %s)\n", mode, o50, (o50 <= 0.1 ? "MET" : "MISSED"), o99, (o99 <= 1 ? "MET" : "MISSED")
                }
            }
        }' "$RESULTS"
    if [ -n "$RATES" ]; then
        awk -F'\t' '
            NR == 1 { next }
            { p50[$1, $2, $4] = $6; p99[$1, $2, $4] = $7; modes[$1] = 1 }
            END {
                for (mode in modes) {
                    if (!((mode, 50, "marginal") in p50) || !((mode, 50, "proxy") in p50)) continue
                    o50 = (p50[mode, 50, "marginal"] - p50[mode, 50, "proxy"]) / 1000
                    o99 = (p99[mode, 50, "marginal"] - p99[mode, 50, "proxy"]) / 1000
                    printf "- %s, steady load at 50%% of the relay'"'"'s capacity: Marginal adds %.3f ms at p50 (target <= 0.3 ms: %s) and %.3f ms at p99 (target <= 1 ms: %s) over the relay\n", mode, o50, (o50 <= 0.3 ? "MET" : "MISSED"), o99, (o99 <= 1 ? "MET" : "MISSED")
                }
            }' "$STEADY"
    fi
} >"$REPORT"

echo
cat "$REPORT"
echo
echo "load.sh: report $REPORT; raw wrk output and server logs in $RUN_DIR"
