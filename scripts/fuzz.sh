#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang in build-fuzz/ and runs
# each for N seconds (default 30). Seeds come from tests/fuzz/corpus/<name>; the
# growing corpora persist in build-fuzz/corpus/<name>;
# crashes land in build-fuzz/artifacts/. Exits non-zero if any fuzzer fails.
#   scripts/fuzz.sh [seconds] [fuzzer ...]      e.g. scripts/fuzz.sh 60 hashtag
set -euo pipefail

seconds="${1:-30}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${SLUICE_FUZZ_BUILD_DIR:-$root/build-fuzz}"
all=()
for harness in "$root"/tests/fuzz/*_fuzz.cpp; do
  name="$(basename "$harness" _fuzz.cpp)"
  all+=("$name")
done
fuzzers=("${@:-${all[@]}}")

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DSLUICE_FUZZ=ON >/dev/null
targets=()
for name in "${fuzzers[@]}"; do targets+=("fuzz_$name"); done
nice cmake --build "$build" --target "${targets[@]}" -j"${SLUICE_FUZZ_JOBS:-2}"

status=0
for name in "${fuzzers[@]}"; do
  corpus="$build/corpus/$name"
  artifacts="$build/artifacts/$name/"
  mkdir -p "$corpus" "$artifacts"
  echo "== fuzz_$name for ${seconds}s"
  seeds=()
  [[ -d "$root/tests/fuzz/corpus/$name" ]] && seeds=("$root/tests/fuzz/corpus/$name")
  if ! "$build/bin/fuzz_$name" "$corpus" "${seeds[@]}" -max_total_time="$seconds" -artifact_prefix="$artifacts" \
      -print_final_stats=1 -max_len=65536 -rss_limit_mb=4096 2>"$build/fuzz_$name.log"; then
    echo "   FAILED: see $build/fuzz_$name.log and $artifacts"
    status=1
  fi
  grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$build/fuzz_$name.log" || true
done
exit "$status"
