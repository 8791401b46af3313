#!/bin/sh
# Helm post-renderer: reads the chart's rendered manifests on stdin, writes them with
# the patches of this directory applied (kustomization.yaml) on stdout.
# Needs kubectl (with its built-in kustomize) or kustomize on PATH.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/kustomization.yaml" "$here"/*.patch.yaml "$work/"
cat > "$work/all.yaml"
if command -v kustomize >/dev/null 2>&1; then
  kustomize build "$work"
else
  kubectl kustomize "$work"
fi
