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
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # postgres runs under runuser in a subshell: stop the postmaster itself (fast shutdown).
  if [ -f "$scratch/pg/postmaster.pid" ]; then
    kill -INT "$(head -n 1 "$scratch/pg/postmaster.pid")" 2>/dev/null || true
    for _ in $(seq 1 100); do [ -f "$scratch/pg/postmaster.pid" ] || break; sleep 0.1; done
  fi
  wait 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT INT TERM

free_port() {
  /usr/bin/python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

wait_for_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing is listening on port $1" >&2
  return 1
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ -z "${REDIS_URL:-}${REDIS_HOST:-}${REDIS_SENTINELS:-}" ]; then
  redis_port="$(free_port)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$scratch" \
    --logfile "$scratch/redis.log" &
  pids+=($!)
  wait_for_port "$redis_port"
  export REDIS_HOST=127.0.0.1 REDIS_PORT="$redis_port"
  echo "Started a throwaway Redis on 127.0.0.1:$redis_port"
fi

demo_token=""
if [ -z "${DATABASE_URL:-}${DB_HOST:-}${DB_NAME:-}" ]; then
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  pg_port="$(free_port)"
  mkdir -p "$scratch/pg"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$scratch"; fi
  as_postgres "$pg_bin/initdb" -D "$scratch/pg" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    --no-sync >"$scratch/initdb.log"
  as_postgres "$pg_bin/postgres" -D "$scratch/pg" -p "$pg_port" -k "$scratch" -c listen_addresses=127.0.0.1 \
    -c fsync=off >"$scratch/postgres.log" 2>&1 &
  pids+=($!)
  wait_for_port "$pg_port"
  for _ in $(seq 1 100); do
    psql -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qtAc "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.1
  done
  psql -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qc "CREATE DATABASE mastodon_development" >/dev/null
  psql -h 127.0.0.1 -p "$pg_port" -U postgres -d mastodon_development -q -v ON_ERROR_STOP=1 \
    -f "$root/sql/mastodon-schema.sql" >/dev/null
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
