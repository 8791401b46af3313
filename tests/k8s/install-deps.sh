#!/usr/bin/env bash
# Installs the checker's pinned npm packages (package-lock.json) into
# tests/k8s/node_modules (gitignored). Does nothing when that exact lock is installed.
# Needs node and npm, and kubectl with its built-in kustomize.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if cmp -s package-lock.json node_modules/.sluice-installed-lock 2>/dev/null; then
  exit 0
fi
# @kubernetes/client-node declares a newer Node than some machines have; the checker
# only loads its generated models (plain classes), which need no more than Node 18.
npm ci --no-audit --no-fund --engine-strict=false --loglevel=error
cp package-lock.json node_modules/.sluice-installed-lock
