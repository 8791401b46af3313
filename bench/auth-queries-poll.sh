#!/usr/bin/env bash
# A --bench-wrapper for bench/run.sh that counts the server's PostgreSQL queries while
# sluice-bench runs: it polls GET /metrics on the target port (the all-in-one serves it
# on the client port) once a second and writes "<unix time> <Σ sluice_auth_queries_total>"
# lines to $METRICS_OUT (default ./auth-queries.txt), then the final value and the
# per-query series after the tool exits. Compare the value after the connect phase with
# the final one to get the queries made while events were published.
#
#   METRICS_OUT=q.txt bench/run.sh --filter-profile --bench-wrapper bench/auth-queries-poll.sh \
#     --clients 10000 --transport sse --stream public --events 200 --rate 10
#
# Split tiers: the gateway port does not serve the auth tier's counters (use
# SLUICE_AUTH_ADMIN_LISTEN instead); the poller then reads 0.
port=""; prev=""
for a in "$@"; do [ "$prev" = "--port" ] && port="$a"; prev="$a"; done
out="${METRICS_OUT:-auth-queries.txt}"
: >"$out"
total() { curl -s --max-time 1 "http://127.0.0.1:$port/metrics" | grep '^sluice_auth_queries_total' | awk '{s += $NF} END {print s + 0}'; }
(
  while true; do
    echo "$(date +%s.%N) $(total)" >>"$out"
    sleep 1
  done
) &
poller=$!
echo "$(date +%s.%N) BENCHSTART" >>"$out"
"$@"
status=$?
kill "$poller" 2>/dev/null
wait "$poller" 2>/dev/null
echo "$(date +%s.%N) $(total) FINAL" >>"$out"
curl -s --max-time 1 "http://127.0.0.1:$port/metrics" | grep '^sluice_auth_queries_total' >>"$out"
exit "$status"
