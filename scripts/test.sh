#!/usr/bin/env bash
# Builds Sluice with AddressSanitizer and UndefinedBehaviorSanitizer (Debug) and
# runs every test suite through ctest: unit tests, integration tests against real
# Redis and PostgreSQL servers that the suites start themselves (temporary
# directories, loopback, free ports), and end-to-end tests of the all-in-one and
# split deployments. Then the small regression benchmark, which reports and
# never fails on timing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"

build_dir="${SLUICE_TEST_BUILD_DIR:-$root/build-test}"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
cmake --build "$build_dir"

# gRPC keeps some process-wide objects alive until exit on purpose.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd "$build_dir"
ctest --output-on-failure --timeout 900
