#!/usr/bin/env bash
# The systemd units of dist/ keep the layout of Mastodon 4.2 and later (ctest
# sluice_dist_units): mastodon-streaming.service is a oneshot that only wants
# mastodon-streaming@4000.service, and each mastodon-streaming@PORT runs Sluice and is
# part of it. Were mastodon-streaming.service to run Sluice itself on port 4000, a
# `systemctl restart mastodon-streaming` on a host installed from Mastodon's units would
# start it beside the @4000 instance, and one of the two would fail to bind.
#   tests/dist/check.sh [repository root]
set -euo pipefail
root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
failures=0
expect() {  # expect FILE LINE: FILE has LINE, exactly
  grep -qxF -- "$2" "$root/dist/$1" || { echo "dist/$1 lacks: $2"; failures=$((failures + 1)); }
}
refuse() {  # refuse FILE PATTERN: no line of FILE matches PATTERN
  if grep -qE -- "$2" "$root/dist/$1"; then echo "dist/$1 must not have: $(grep -E -- "$2" "$root/dist/$1")"; failures=$((failures + 1)); fi
}

expect mastodon-streaming.service "Type=oneshot"
expect mastodon-streaming.service "RemainAfterExit=yes"
expect mastodon-streaming.service "Wants=mastodon-streaming@4000.service"
refuse mastodon-streaming.service '^ExecStart=.*sluice'
refuse mastodon-streaming.service '^Environment="PORT='

expect mastodon-streaming@.service "PartOf=mastodon-streaming.service"
expect mastodon-streaming@.service "ReloadPropagatedFrom=mastodon-streaming.service"
expect mastodon-streaming@.service 'Environment="PORT=%i"'
expect mastodon-streaming@.service "ExecStart=/usr/local/bin/sluice"

# The units that run the auth tier let memfd_create through their @ipc filter: with
# NODE_EXTRA_CA_CERTS and TLS to PostgreSQL it makes the CA bundle there, and a unit
# that refused it would stop the tier at start.
expect mastodon-streaming@.service "SystemCallFilter=memfd_create"
expect sluice-auth.service "SystemCallFilter=memfd_create"

# Every unit is one systemd can read (no unknown section or key). systemd-analyze
# comes with scripts/install-deps.sh: without it this check would pass unchecked.
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze is missing (install the systemd package): the units' syntax is not checked"
  failures=$((failures + 1))
else
  for unit in "$root"/dist/*.service "$root"/dist/*.target; do
    # Missing binaries and users of this host are not the unit's fault: only syntax counts.
    out="$(systemd-analyze verify "$unit" 2>&1 | grep -E 'Unknown (key|section)|Invalid|Failed to parse' || true)"
    if [ -n "$out" ]; then echo "$out"; failures=$((failures + 1)); fi
  done
fi

if [ "$failures" -ne 0 ]; then
  echo "FAIL: $failures problem(s) in dist/"
  exit 1
fi
echo "dist/ units: the layout of Mastodon 4.2 and later"
