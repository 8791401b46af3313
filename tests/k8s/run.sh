#!/usr/bin/env bash
# The k8s/ check as one command (and one ctest): installs the pinned npm packages
# when missing, renders every kustomization with `kubectl kustomize`, validates every
# object strictly and makes sure each case under tests/k8s/broken/ is refused.
#   tests/k8s/run.sh [repository root]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${1:-$(cd "$here/../.." && pwd)}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm
fi
if ! kubectl kustomize --help >/dev/null 2>&1; then
  echo "kubectl with its built-in kustomize is needed (kubectl kustomize)" >&2
  exit 1
fi
"$here/install-deps.sh"
exec node "$here/check.mjs" "$root"
