#!/usr/bin/env bash
# Builds Sluice (Release) and runs the all-in-one server on PORT (default 4000).
# Unless a Redis (REDIS_URL / REDIS_HOST / REDIS_SENTINELS) or a PostgreSQL
# (DATABASE_URL / DB_HOST / DB_NAME) is configured, it starts throwaway ones on
# loopback, loads Mastodon's tables, creates a demo account and token, and
# prints how to stream with them. Everything it started is stopped on exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/install-deps.sh"

build_dir="${SLUICE_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
cmake --build "$build_dir" --target sluice

scratch="$(mktemp -d /tmp/sluice-local-XXXXXX)"
# shellcheck source=lib/throwaway.sh
source "$root/scripts/lib/throwaway.sh"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_postgres "$scratch"
  wait 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT INT TERM

if [ -z "${REDIS_URL:-}${REDIS_HOST:-}${REDIS_SENTINELS:-}" ]; then
  redis_port="$(free_port)"
  start_redis "$scratch" "$redis_port"
  pids+=($!)
  wait_for_port "$redis_port" Redis
  export REDIS_HOST=127.0.0.1 REDIS_PORT="$redis_port"
  echo "Started a throwaway Redis on 127.0.0.1:$redis_port"
fi

demo_token=""
if [ -z "${DATABASE_URL:-}${DB_HOST:-}${DB_NAME:-}" ]; then
  pg_port="$(free_port)"
  start_postgres "$scratch" "$pg_port" mastodon_development
  pids+=("$postgres_wrapper_pid")
  demo_token="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  psql -h 127.0.0.1 -p "$pg_port" -U postgres -d mastodon_development -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO accounts (id, username) VALUES (1, 'demo');
INSERT INTO users (id, email, account_id) VALUES (1, 'demo@localhost', 1);
INSERT INTO oauth_access_tokens (token, scopes, resource_owner_id) VALUES ('$demo_token', 'read write follow', 1);
SQL
  export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/mastodon_development"
  echo "Started a throwaway PostgreSQL on 127.0.0.1:$pg_port with Mastodon's tables"
fi

port="${PORT:-4000}"
export PORT="$port"
if [ -n "$demo_token" ]; then
  cat <<TXT

Demo account 'demo' (id 1), access token: $demo_token

  Stream:   curl -N -H 'Authorization: Bearer $demo_token' http://127.0.0.1:$port/api/v1/streaming/public
  Publish:  redis-cli -p ${REDIS_PORT:-6379} PUBLISH timeline:public '{"event":"delete","payload":"1"}'

TXT
fi
"$build_dir/bin/sluice" &
pids+=($!)
wait "${pids[-1]}"
