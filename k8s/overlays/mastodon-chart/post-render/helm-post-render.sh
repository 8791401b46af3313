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
  kustomize build "$work" > "$work/out.yaml"
else
  kubectl kustomize "$work" > "$work/out.yaml"
fi
# A patch whose target names no object changes nothing, and the release would then go
# on to stop its streaming pods with nothing in their place: refuse instead.
if ! grep -q 'app.kubernetes.io/name: sluice' "$work/out.yaml"; then
  echo "helm-post-render.sh: no Service of this release was pointed at Sluice's gateways;" >&2
  echo "  the chart's streaming Service is <fullname>-streaming: set its name in $here/kustomization.yaml" >&2
  exit 1
fi
cat "$work/out.yaml"
