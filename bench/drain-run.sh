#!/usr/bin/env bash
# Measures a gateway drain (docs/drain.md, "Measured"): throwaway Redis and PostgreSQL
# with N accounts and one token each, sluice-broker and sluice-auth (admin port on, for
# sluice_auth_queries_total and sluice_auth_cache_*), then bench/drain_reconnect.py, which
# starts two sluice-gateway processes on one port (SLUICE_REUSE_PORT=true), connects N
# reconnecting SSE/WebSocket clients to the first, starts the second, SIGTERMs the first
# and reports reconnects, auth queries and CPU per second. Everything it starts is
# stopped on exit; loopback only.
#
#   bench/drain-run.sh [--build-dir DIR] [--accounts N] [--logs DIR] [drain_reconnect.py options]
#   bench/drain-run.sh --build-dir build-rel --clients 10000 --drain-seconds 20 --json-out drain20.json
#   bench/drain-run.sh --build-dir build-rel --clients 10000 --drain-seconds 0  --json-out storm.json
#
# --accounts defaults to --clients (one distinct token per client). The binaries must be
# built (sluice-gateway, sluice-broker, sluice-auth; Release for figures).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$root/build-release"
accounts=""
keep_logs=""
log_level="warn"
args=()
clients=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="$(cd "$2" && pwd)"; shift ;;
    --accounts) accounts="$2"; shift ;;
    --logs) keep_logs="$2"; shift ;;
    --log-level) log_level="$2"; shift ;;
    --clients) clients="$2"; args+=("$1" "$2"); shift ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$1") ;;
  esac
  shift
done
accounts="${accounts:-$clients}"
bin="$build_dir/bin"
for exe in sluice-gateway sluice-broker sluice-auth; do
  [ -x "$bin/$exe" ] || { echo "drain-run.sh: $bin/$exe is missing" >&2; exit 2; }
done

scratch="$(mktemp -d /tmp/sluice-drain-XXXXXX)"
# shellcheck source=../scripts/lib/throwaway.sh
source "$root/scripts/lib/throwaway.sh"
pids=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_bench_processes
  if [ -n "$keep_logs" ]; then mkdir -p "$keep_logs"; cp "$scratch"/*.log "$keep_logs"/ 2>/dev/null || true; fi
  rm -rf "$scratch"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_bench_servers "$scratch" mastodon_drain
tokens_file="$scratch/tokens.txt"
create_bench_accounts "$pg_port" mastodon_drain "$accounts" "$tokens_file"

broker_port="$(free_port)"; auth_port="$(free_port)"; auth_admin="$(free_port)"
common_env=(REDIS_HOST=127.0.0.1 REDIS_PORT="$redis_port" LOG_LEVEL="$log_level" NODE_ENV=production)
env "${common_env[@]}" SLUICE_BROKER_LISTEN="127.0.0.1:$broker_port" SLUICE_BROKER_ADMIN_LISTEN= \
  "$bin/sluice-broker" >"$scratch/broker.log" 2>&1 &
pids+=($!)
env "${common_env[@]}" DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/mastodon_drain" \
  SLUICE_AUTH_LISTEN="127.0.0.1:$auth_port" SLUICE_AUTH_ADMIN_LISTEN="127.0.0.1:$auth_admin" \
  SLUICE_BROKER_ADDR="127.0.0.1:$broker_port" "$bin/sluice-auth" >"$scratch/auth.log" 2>&1 &
auth_pid=$!
pids+=($!)
wait_for_port "$broker_port" sluice-broker
wait_for_port "$auth_port" sluice-auth

port="$(free_port)"; admin_a="$(free_port)"; admin_b="$(free_port)"
echo "drain-run.sh: Redis :$redis_port, PostgreSQL :$pg_port, broker :$broker_port, auth :$auth_port (admin :$auth_admin), gateways :$port (admin :$admin_a, :$admin_b), $accounts accounts" >&2
set +e
env "${common_env[@]}" SLUICE_BROKER_ADDR="127.0.0.1:$broker_port" SLUICE_AUTH_ADDR="127.0.0.1:$auth_port" \
  python3 "$root/bench/drain_reconnect.py" --gateway-bin "$bin/sluice-gateway" --port "$port" \
  --admin-a "$admin_a" --admin-b "$admin_b" --auth-admin "127.0.0.1:$auth_admin" --auth-pid "$auth_pid" \
  --pg-pid "$postmaster_pid" --tokens-file "$tokens_file" --logdir "$scratch" "${args[@]}"
status=$?
set -e
problems="$(grep -hiE '"level":"(warn|error|fatal)"' "$scratch"/gateway-*.log "$scratch"/broker.log "$scratch"/auth.log 2>/dev/null | head -n 20 || true)"
[ -n "$problems" ] && { echo "drain-run.sh: server warnings/errors (first 20):" >&2; echo "$problems" >&2; }
exit "$status"
