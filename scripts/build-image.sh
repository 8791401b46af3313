#!/usr/bin/env bash
# Builds the Sluice container image from the Dockerfile with podman (or docker).
#   scripts/build-image.sh [TAG]          TAG defaults to sluice:dev
# Environment: CONTAINER_ENGINE=podman|docker (default: podman when present),
# BUILD_NETWORK (default: host, so apt inside the build uses the machine's network
# setup, as podman needs on machines without a bridge), BUILD_JOBS (compile jobs,
# default: the number of CPUs). Compiler output is cached between builds in a build
# cache mount (ccache), so rebuilding after a source change is quick.
# Then, for Kubernetes, push it and set it in your overlay:
#   podman push sluice:dev REGISTRY/sluice:TAG
#   (cd k8s/overlays/standalone && kustomize edit set image sluice=REGISTRY/sluice:TAG)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tag="${1:-sluice:dev}"
engine="${CONTAINER_ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman; elif command -v docker >/dev/null; then engine=docker; else
    echo "neither podman nor docker found" >&2; exit 1
  fi
fi
"$engine" build --network="${BUILD_NETWORK:-host}" --build-arg BUILD_JOBS="${BUILD_JOBS:-$(nproc)}" \
  -f "$root/Dockerfile" -t "$tag" "$root"
"$engine" image inspect --format '{{.Id}} {{.Size}} bytes' "$tag"
echo "built $tag"
