#!/usr/bin/env bash
# Side loads for the figures of docs/reliability.md, run around sluice-bench by
# bench/run.sh (--bench-wrapper "bench/reliability-wrapper.sh MODE"). sluice-bench
# holds the valid clients and verifies every event they get; meanwhile:
#
#   flood  after FLOOD_DELAY s (default 15), sluice-flood makes FLOOD_RATE (10000)
#          invalid-token attempts per second for FLOOD_SECONDS (30) from FLOOD_ADDRESSES
#          (50000) forwarded addresses; PostgreSQL queries (sluice_auth_queries_total)
#          and the server's RSS are sampled around it (and each second during it, so
#          a plateau can be told from growth).
#   stall  STALLED (default 1) clients connect to the user stream of the first token
#          and never read; after sluice-bench, waits up to STALL_WAIT s (120) for them
#          to be disconnected, and reports the slow-client disconnects and peak RSS.
#
# Prints one line per figure, prefixed "reliability:", after sluice-bench's own report;
# exits with sluice-bench's status.
set -uo pipefail
mode="$1"; shift
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bench=("$@")

port="" server_pid="" tokens_file=""
for ((i = 0; i < ${#bench[@]}; i++)); do
  case "${bench[i]}" in
    --port) port="${bench[i+1]}" ;;
    --server-pid) [ -z "$server_pid" ] && server_pid="${bench[i+1]}" ;;
    --tokens-file) tokens_file="${bench[i+1]}" ;;
  esac
done
[ -n "$port" ] && [ -n "$server_pid" ] || { echo "reliability-wrapper: needs --port and --server-pid" >&2; exit 2; }
metric_sum() { # NAME: the sum of every series of a metric on /metrics
  curl -s "http://127.0.0.1:$port/metrics" | awk -v name="$1" '$1 ~ "^"name"([{]|$)" {sum += $2} END {printf "%d", sum}'
}
rss_kib() { ps -o rss= -p "$server_pid" 2>/dev/null | tr -d ' '; }

"${bench[@]}" &
bench_pid=$!

case "$mode" in
  flood)
    flood_bin="$(dirname "${bench[0]}")/sluice-flood"
    sleep "${FLOOD_DELAY:-15}"
    queries_before="$(metric_sum sluice_auth_queries_total)"
    rss_before="$(rss_kib)"
    samples="$(mktemp)"
    ( while kill -0 "$server_pid" 2>/dev/null; do rss_kib >>"$samples"; sleep 1; done ) &
    sampler=$!
    flood_json="$("$flood_bin" --port "$port" --rate "${FLOOD_RATE:-10000}" --seconds "${FLOOD_SECONDS:-30}" \
      --addresses "${FLOOD_ADDRESSES:-50000}")"
    queries_after="$(metric_sum sluice_auth_queries_total)"
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
    rss_max="$(sort -n "$samples" | tail -n 1)"
    rss_after="$(rss_kib)"
    rss_timeline="$(tr '\n' ' ' <"$samples")"
    rm -f "$samples"
    wait "$bench_pid"; status=$?
    echo "reliability: flood $flood_json"
    echo "reliability: postgresql queries during the flood: $((queries_after - queries_before))"
    echo "reliability: server RSS KiB before/max/after the flood: $rss_before/$rss_max/$rss_after"
    echo "reliability: server RSS KiB each second of the flood: $rss_timeline"
    echo "reliability: refusals $(curl -s "http://127.0.0.1:$port/metrics" | grep '^sluice_admission_refusals_total' | tr '\n' ' ')"
    ;;
  stall)
    token="$(grep -v '^#' "$tokens_file" | head -n 1 | awk '{print $1}')"
    for _ in $(seq 1 "${STALLED:-1}"); do
      python3 - "$port" "$token" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(("GET /api/v1/streaming/user HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % sys.argv[2]).encode())
time.sleep(600)  # never reads
PY
    done
    samples="$(mktemp)"
    ( while kill -0 "$server_pid" 2>/dev/null; do rss_kib >>"$samples"; sleep 0.5; done ) &
    sampler=$!
    wait "$bench_pid"; status=$?
    # The never-reading clients go once behind for SLUICE_CLIENT_MAX_LAG_SECONDS.
    started=$SECONDS
    while [ "$(metric_sum sluice_slow_client_disconnects_total)" -lt "${STALLED:-1}" ] && [ $((SECONDS - started)) -lt "${STALL_WAIT:-120}" ]; do
      sleep 1
    done
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
    echo "reliability: server RSS KiB max during the run: $(sort -n "$samples" | tail -n 1)"
    echo "reliability: slow-client disconnects: $(metric_sum sluice_slow_client_disconnects_total) after $((SECONDS - started)) s more"
    echo "reliability: server RSS KiB now: $(rss_kib)"
    rm -f "$samples"
    pkill -f "time.sleep\(600\)" 2>/dev/null || true
    ;;
  *) echo "reliability-wrapper: unknown mode $mode (flood, stall)" >&2; exit 2 ;;
esac
exit "$status"
