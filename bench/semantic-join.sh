#!/usr/bin/env bash
# What a node joining a cluster pays for the shared semantic cache: a throwaway redis-server on loopback holds N
# synthetic live entries in `<prefix>:semantic-entries` (384-dimension unit vectors, 100 scopes, as a node writes
# them), then one `marginal serve` with `redis:` and the semantic cache on starts against it. ready_ms: from process
# start to `/readyz` answering 200; load_ms: the node's own log of loading every entry into its in-process index (in
# the background, after start); rss_mb: the node's resident memory once loaded. Each N in turn, several rounds, so
# drift falls on all alike. Prints one line per point: round entries ready_ms load_ms rss_mb.
# Usage: bench/semantic-join.sh [ROUNDS (2)] [ENTRY COUNTS ("0 10000 100000")]
set -euo pipefail
ROUNDS=${1:-2}; COUNTS=${2:-"0 10000 100000"}
BENCH=$(cd "$(dirname "$0")" && pwd); ROOT=$(dirname "$BENCH")
RUN=$(mktemp -d /tmp/marginal-semantic-join-XXXXXX)
REDIS_PORT=19381; NODE_PORT=19382; PREFIX=bench
dotnet build "$ROOT/src/Marginal.Cli" -c Release >/dev/null
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$RUN"' EXIT
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --dir "$RUN" >"$RUN/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p $REDIS_PORT ping >/dev/null 2>&1 && break; sleep 0.1; done
cat >"$RUN/marginal.yaml" <<YAML
server:
  urls: http://127.0.0.1:$NODE_PORT
  auth: none
storage:
  path: $RUN/marginal.db
redis:
  connection_string_env: MARGINAL_BENCH_REDIS
  key_prefix: $PREFIX
cache:
  semantic: { enabled: true, max_entries: 100000 }
  routes:
    gpt-4o-mini: { semantic: true }
providers:
  stub:
    kind: openai
    base_url: http://127.0.0.1:9/v1
models:
  gpt-4o-mini:
    provider: stub
    price: deepseek-chat
YAML
# N entries as Redis commands (RESP) for redis-cli --pipe: ZADD <set> <expiry ms> <entry JSON>.
fill() {
    python3 - "$1" "$PREFIX" <<'PY' | redis-cli -p $REDIS_PORT --pipe >/dev/null
import base64, json, math, random, struct, sys, time
n, prefix = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
expires = int(time.time() * 1000) + 3_600_000
key = f"{prefix}:semantic-entries".encode()
out = sys.stdout.buffer
def resp(*parts):
    out.write(b"*%d\r\n" % len(parts))
    for p in parts:
        out.write(b"$%d\r\n%s\r\n" % (len(p), p))
for i in range(n):
    v = [rng.gauss(0, 1) for _ in range(384)]
    norm = math.sqrt(sum(x * x for x in v))
    vector = base64.b64encode(struct.pack("<384f", *(x / norm for x in v))).decode()
    entry = json.dumps({"Node": "bench", "Scope": f"scope{i % 100:040d}", "Prompt": f"synthetic prompt number {i} about a topic",
                        "Vector": vector, "Embeddings": "minilm", "AnswerKey": f"semantic:{i}", "ExpiresMs": expires + i}, separators=(",", ":"))
    resp(b"ZADD", key, str(expires + i).encode(), entry.encode())
PY
}
export MARGINAL_BENCH_REDIS="127.0.0.1:$REDIS_PORT"
echo "round entries ready_ms load_ms rss_mb"
for round in $(seq "$ROUNDS"); do
    for n in $COUNTS; do
        redis-cli -p $REDIS_PORT flushall >/dev/null
        [ "$n" -gt 0 ] && fill "$n"
        start=$(date +%s%N)
        dotnet "$ROOT/src/Marginal.Cli/bin/Release/net10.0/marginal.dll" serve --config "$RUN/marginal.yaml" >"$RUN/node.log" 2>&1 &
        node=$!
        for _ in $(seq 1200); do
            curl -fs -o /dev/null "http://127.0.0.1:$NODE_PORT/readyz" && break
            kill -0 $node 2>/dev/null || { cat "$RUN/node.log"; exit 1; }
            sleep 0.05
        done
        ready=$(( ($(date +%s%N) - start) / 1000000 ))
        for _ in $(seq 1200); do grep -q "shared semantic cache entries in" "$RUN/node.log" && break; sleep 0.05; done
        load=$(grep -o "entries in [0-9]* ms" "$RUN/node.log" | awk '{print $3}')
        rss=$(awk '/VmRSS/ {printf "%d", $2 / 1024}' /proc/$node/status)
        echo "$round $n $ready ${load:--} $rss"
        kill $node; wait $node 2>/dev/null || true
    done
done
