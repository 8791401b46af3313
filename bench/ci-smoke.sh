#!/usr/bin/env bash
# CI regression benchmark: 200 listeners on `user` (half SSE, half WebSocket),
# 50 events at 50/s, against the all-in-one server of an existing build directory
# (Release, or the Debug+ASan build: nothing here depends on timing).
#
#   bench/ci-smoke.sh BUILD_DIR
#
# Prints the figures. Exits 0 when the tool ran and every connection was made and
# stayed up; a slow server, late or lost events do NOT fail it (they are printed).
# Exits 1 when a connection failed or dropped, or the server died; 2 on a bad
# call; 3 when the tool itself could not run.
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
# reports it as dead) and run.sh prints the sanitizer lines from the server log.

output="$(mktemp /tmp/sluice-ci-smoke-XXXXXX.out)"
trap 'rm -f "$output"' EXIT

"$root/bench/run.sh" --no-build --build-dir "$build_dir" --log-level warn -- \
  --clients 200 --transport mixed --stream user --connect-rate 400 --connect-timeout-ms 30000 \
  --events 50 --rate 50 --settle-ms 1000 --drain-ms 10000 --max-seconds 240 --no-progress | tee "$output"
status=${PIPESTATUS[0]}

result="$(grep '^SLUICE_BENCH_RESULT ' "$output" | tail -n 1)"
if [ -z "$result" ]; then
  echo "ci-smoke: FAIL: sluice-bench produced no result (exit $status)" >&2
  exit 3
fi
json="${result#SLUICE_BENCH_RESULT }"
summary="$(python3 - "$json" <<'PY' 2>/dev/null
import json, sys
r = json.loads(sys.argv[1])
c, d, l = r["connections"], r["delivery"], r["latency_ms"]
print(f"connections ok={c['ok']} failed={c['failed']} dropped={c['dropped']}; "
      f"delivered {d['delivered']}/{d['expected']}; latency p50={l['p50']}ms p99={l['p99']}ms max={l['max']}ms")
PY
)"
[ -n "$summary" ] && echo "ci-smoke: $summary"
case "$status" in
  0) echo "ci-smoke: PASS"; exit 0 ;;
  1) echo "ci-smoke: FAIL: not every connection got through and stayed up (or the server died)" >&2; exit 1 ;;
  *) echo "ci-smoke: FAIL: sluice-bench exit status $status" >&2; exit 3 ;;
esac
