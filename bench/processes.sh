# Process helpers sourced by bench/load.sh and bench/soak.sh. The caller sets SCRIPT (its name, for messages) and
# RUN_DIR (where each process logs), and declares the associative array PID (name -> process id).

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start name port command...: runs the command in the background, logging to RUN_DIR/name.log, and waits until it
# listens on 127.0.0.1:port (START_TIMEOUT seconds, 30 by default).
start() {
    local name=$1 port=$2; shift 2
    port_free "$port" || { echo "$SCRIPT: port $port (for $name) is already in use" >&2; exit 1; }
    "$@" >"$RUN_DIR/$name.log" 2>&1 &
    PID[$name]=$!
    for _ in $(seq $((${START_TIMEOUT:-30} * 4))); do
        if ! kill -0 "${PID[$name]}" 2>/dev/null; then
            echo "$SCRIPT: $name exited at start; see $RUN_DIR/$name.log" >&2; tail -5 "$RUN_DIR/$name.log" >&2; exit 1
        fi
        if ! port_free "$port"; then return 0; fi
        sleep 0.25
    done
    echo "$SCRIPT: $name did not listen on 127.0.0.1:$port within ${START_TIMEOUT:-30} s" >&2; exit 1
}

# Stops every process in PID: TERM, up to 5 s to exit, then KILL.
stop_processes() {
    local name
    for name in "${!PID[@]}"; do
        kill "${PID[$name]}" 2>/dev/null || true
    done
    for name in "${!PID[@]}"; do
        for _ in $(seq 50); do kill -0 "${PID[$name]}" 2>/dev/null || break; sleep 0.1; done
        kill -9 "${PID[$name]}" 2>/dev/null || true
    done
}
