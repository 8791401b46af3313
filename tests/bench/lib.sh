# Sourced by the load tool's own tests: a scratch directory ($dir) removed on exit along
# with every background job, a throwaway Redis on a free port ($redis_port: the tool
# publishes its events there), and scripts/lib/throwaway.sh's free_port and
# wait_for_port (a positive marker: the port accepts a connection).
# shellcheck source=../../scripts/lib/throwaway.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib/throwaway.sh"
dir=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
redis_port=$(free_port)
start_redis "$dir" "$redis_port"
wait_for_port "$redis_port" Redis
