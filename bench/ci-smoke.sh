#!/usr/bin/env bash
# CI regression benchmark, a small realistic load: 5 accounts with their own tokens and
# filter rows (run.sh --filter-profile), 210 listeners (half SSE, half WebSocket) drawn
# by weight over user, user:notification, public, hashtag:cafe, hashtag:local:cafe and
# each account's own list, 51 events at 50/s on each of their channels (update,
# status.update and delete in turn), against the all-in-one server of an existing build
# directory (Release, or the Debug+ASan build: nothing here depends on timing).
#
#   bench/ci-smoke.sh BUILD_DIR
#
# Every event is verified per client (docs/benchmarks.md#per-event-verification):
# sequence (missing, duplicated, reordered), event name, exact payload ("filtered":[]
# on public and hashtag), WebSocket stream echo, and nothing from channels a client
# does not hear. Prints the figures. Exits 0 when every connection was made and stayed
# up AND every event arrived exactly once, in order and correct; timing (latency,
# throughput) never fails it, it is only printed. Exits 1 when a connection failed or
# dropped, or the server died; 4 when an event was missing, duplicated, reordered,
# unexpected or wrong; 5 when the kernel's receive times (the arrival latency) are
# missing for some event or later than its receipt, a check of the tool's own measure,
# or the result lacks a field checked here; 6 when, all else passing, a Sluice process
# stopped with SIGTERM after the run exited with a status other than 0 or left a
# sanitizer report in its log; 2 on a bad call; 3 when the tool itself could not run.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 BUILD_DIR   (a configured build with bin/sluice and bin/sluice-bench)" >&2
  exit 2
fi
build_dir="$(cd "$1" && pwd)"
for exe in sluice sluice-bench; do
  if [ ! -x "$build_dir/bin/$exe" ]; then
    echo "ci-smoke: $build_dir/bin/$exe is missing; build targets sluice and sluice-bench first" >&2
    exit 3
  fi
done

# With a sanitizer build, a server that hits a sanitizer error aborts (the run then
# reports it as dead); after the run, run.sh stops each Sluice process and fails (6) on an
# exit status other than 0 or a sanitizer report in its log (leaks show only at exit).

output="$(mktemp /tmp/sluice-ci-smoke-XXXXXX.out)"
trap 'rm -f "$output"' EXIT

"$root/bench/run.sh" --no-build --build-dir "$build_dir" --log-level warn --accounts 5 --filter-profile -- \
  --clients 210 --transport mixed \
  --stream 'user*2,user:notification,public*2,hashtag:cafe,hashtag:local:cafe,list:own' \
  --event-mix update,status.update,delete --connect-rate 400 --connect-timeout-ms 30000 \
  --events 51 --rate 50 --settle-ms 1000 --drain-ms 10000 --linger-ms 2000 --max-seconds 240 --no-progress --fail-on-mismatch \
  | tee "$output"
status=${PIPESTATUS[0]}

result="$(grep '^SLUICE_BENCH_RESULT ' "$output" | tail -n 1)"
if [ -z "$result" ]; then
  echo "ci-smoke: FAIL: sluice-bench produced no result (exit $status)" >&2
  exit 3
fi
json="${result#SLUICE_BENCH_RESULT }"
summary="$(python3 - "$json" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
c, d, l = r["connections"], r["delivery"], r["latency_ms"]
print(f"connections ok={c['ok']} failed={c['failed']} dropped={c['dropped']}; "
      f"delivered {d['delivered']}/{d['expected']} missing={d['missing']} duplicated={d['duplicated']} "
      f"reordered={d['reordered']} wrong_event={d['wrong_event']} wrong_payload={d['wrong_payload']} "
      f"wrong_stream={d['wrong_stream']} unexpected={d['unexpected']} foreign={d['foreign_messages']}; "
      f"latency p50={l['p50']}ms p99={l['p99']}ms max={l['max']}ms (report only)")
# The kernel's receive time of each event comes before the tool reads it, so every
# arrival percentile is at most the receipt's; and the kernel gives one for every read.
a = r["arrival_latency_ms"]
if a["count"] != l["count"] or any(a[k] > l[k] for k in ("p50", "p99", "max")):
    print(f"ARRIVAL-MISMATCH arrival {a} against receipts {l}")
PY
)" || summary_status=$?
[ -n "$summary" ] && echo "ci-smoke: $summary"
if [ "${summary_status:-0}" -ne 0 ]; then
  # A result without the fields checked here cannot be judged: that is a failure too.
  echo "ci-smoke: FAIL: the result could not be read (python exit ${summary_status})" >&2
  exit 5
fi
if grep -q ARRIVAL-MISMATCH <<<"$summary"; then
  echo "ci-smoke: FAIL: the kernel's receive times are missing for some events or later than their receipts" >&2
  exit 5
fi
case "$status" in
  0) echo "ci-smoke: PASS"; exit 0 ;;
  1) echo "ci-smoke: FAIL: not every connection got through and stayed up (or the server died)" >&2; exit 1 ;;
  6) echo "ci-smoke: FAIL: a Sluice process did not exit cleanly at SIGTERM (a sanitizer report, or an exit status other than 0)" >&2; exit 6 ;;
  4) echo "ci-smoke: FAIL: events lost or wrong (missing, duplicated, reordered, unexpected, wrong event/payload/stream), or messages without the run's marker (foreign)" >&2; exit 4 ;;
  *) echo "ci-smoke: FAIL: sluice-bench exit status $status" >&2; exit 3 ;;
esac
