#!/usr/bin/env bash
# A --bench-wrapper for bench/run.sh that samples the server with `perf record` while
# sluice-bench runs, to see where a delivery's CPU goes (docs/benchmarks.md, "Where the
# time goes"). Every --server-pid the tool is given is recorded (call graphs by frame
# pointer are poor in -O2 builds, so DWARF unwinding is used), into $PROFILE_OUT
# (default ./perf.data); `perf report -i FILE --no-children --sort dso,sym` reads it.
#
#   PROFILE_OUT=/tmp/p.data bench/run.sh --no-build --bench-wrapper bench/profile-wrapper.sh \
#     --clients 1000 --transport sse --stream user --events 600 --rate 10
#
# Sampling costs the server a few per cent; compare CPU figures only between runs made
# without it.
set -u
pids=""; prev=""
for a in "$@"; do
  [ "$prev" = "--server-pid" ] && pids="${pids:+$pids,}$a"
  prev="$a"
done
out="${PROFILE_OUT:-perf.data}"
if [ -z "$pids" ]; then
  echo "profile-wrapper: no --server-pid among the tool's arguments" >&2
  exec "$@"
fi
perf record -q -F "${PROFILE_HZ:-499}" --call-graph dwarf,8192 -p "$pids" -o "$out" 2>/dev/null &
recorder=$!
"$@"
status=$?
kill -INT "$recorder" 2>/dev/null
wait "$recorder" 2>/dev/null
exit "$status"
