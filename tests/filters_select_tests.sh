#!/usr/bin/env bash
# Fails when a pattern of a --gtest_filter list selects no test of `binary`: gtest runs
# an empty selection and passes, so a renamed suite would silently drop out of the runs
# the list defines (the release-schema runs in tests/CMakeLists.txt).
# Usage: filters_select_tests.sh BINARY 'PATTERN:PATTERN:...'
set -euo pipefail
binary="$1"
IFS=: read -r -a patterns <<< "$2"
status=0
for pattern in "${patterns[@]}"; do
  if ! "$binary" --gtest_list_tests "--gtest_filter=$pattern" | grep -q '^  '; then
    echo "no test matches '$pattern'"
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "each of ${#patterns[@]} patterns selects at least one test"
exit "$status"
