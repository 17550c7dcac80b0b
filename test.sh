#!/usr/bin/env bash
# Runs every test in the solution and ends with one line: "N passed, N failed".
# Services the tests need are started here (none yet: the gateway tests use loopback fakes).
set -uo pipefail
cd "$(dirname "$0")"
log=$(mktemp)
dotnet test Marginal.slnx -c "${CONFIGURATION:-Release}" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
rm -f "$log"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
exit "$status"
