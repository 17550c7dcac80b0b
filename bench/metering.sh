#!/usr/bin/env bash
# What recording costs, measured interleaved: three `marginal serve` processes side by side over the same stub —
# recording before answering (storage.acknowledge: committed, the default), recording once queued (queued), and not
# recording (storage.record_usage: false) — each measured in turn with wrk, several rounds, so that drift of the
# machine falls on all three alike. Prints one line per point: round mode conns gateway req/s p50_us.
# Pinning as in bench/load.sh: wrk on CPU 0, stub and gateways on CPU 1, all at nice -19. Loopback only.
# Usage: bench/metering.sh [ROUNDS (3)] [SECONDS per point (8)] [WARM-UP seconds per gateway and mode (25)]
set -euo pipefail
ROUNDS=${1:-3}; SECONDS_PER_POINT=${2:-8}; WARM=${3:-25}
BENCH=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$BENCH")
RUN=$(mktemp -d /tmp/marginal-metering-XXXXXX)
dotnet build "$ROOT/src/Marginal.Cli" -c Release >/dev/null
dotnet build "$BENCH/Marginal.Bench.Stub" -c Release >/dev/null
declare -A PORT=([committed]=19011 [nometer]=19012 [queued]=19013)
declare -A STORAGE=([committed]="  acknowledge: committed" [nometer]="  record_usage: false" [queued]="  acknowledge: queued")
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
nice -n -19 taskset -c 1 dotnet "$BENCH/Marginal.Bench.Stub/bin/Release/net10.0/Marginal.Bench.Stub.dll" 19001 >"$RUN/stub.log" 2>&1 &
PIDS+=($!)
for name in committed nometer queued; do
    mkdir -p "$RUN/$name"
    cat >"$RUN/$name/marginal.yaml" <<YAML
server:
  urls: http://127.0.0.1:${PORT[$name]}
  auth: none
storage:
  path: $RUN/$name/marginal.db
${STORAGE[$name]}
providers:
  stub:
    kind: openai
    base_url: http://127.0.0.1:19001/v1
models:
  gpt-4o-mini:
    provider: stub
    price: deepseek-chat
YAML
    nice -n -19 taskset -c 1 dotnet "$ROOT/src/Marginal.Cli/bin/Release/net10.0/marginal.dll" serve --config "$RUN/$name/marginal.yaml" >"$RUN/$name.log" 2>&1 &
    PIDS+=($!)
done
sleep 6
body() { [ "$1" = stream ] && echo "$BENCH/requests/chat-stream.json" || echo "$BENCH/requests/chat.json"; }
load() { BENCH_BODY=$(body "$1") nice -n -19 taskset -c 0 wrk -t1 -c"$2" -d"$3"s --timeout 10s -s "$BENCH/chat.lua" "http://127.0.0.1:${PORT[$4]}/v1/chat/completions"; }
for mode in json stream; do for name in committed nometer queued; do load "$mode" 10 "$WARM" "$name" >/dev/null; done; done
for round in $(seq "$ROUNDS"); do for mode in json stream; do for conns in 10 50; do for name in committed nometer queued; do
    result=$(load "$mode" "$conns" "$SECONDS_PER_POINT" "$name" | grep RESULT)
    echo "$round $mode $conns $name $(sed 's/.*rps=\([0-9.]*\).*p50_us=\([0-9]*\).*/\1 \2/' <<<"$result")"
done; done; done; done
