# Sourced by scripts/run-local.sh and bench/run.sh: throwaway Redis and PostgreSQL
# servers on loopback in a scratch directory. PostgreSQL refuses to run as root, so
# it runs as the `postgres` user then.

# What a sanitizer build writes into a server's log when it finds something (an extended
# regular expression, for grep -E).
sanitizer_report='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:'

# A port nothing listens on now (the kernel's pick; python3 is a dependency of every script here).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # port what
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "${2:-a server} is not listening on port $1" >&2
  return 1
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_redis SCRATCH PORT: runs redis-server in the background; its pid is in $!.
start_redis() {
  redis-server --port "$2" --bind 127.0.0.1 --save "" --appendonly no --dir "$1" --logfile "$1/redis.log" &
}

# start_postgres SCRATCH PORT DATABASE [postgres -c settings...]: initdb into
# SCRATCH/pg, start on PORT, create DATABASE with Mastodon's tables
# (sql/schema/mastodon-main.sql). Sets postgres_wrapper_pid (to wait for) and
# postmaster_pid (to signal: SIGINT is a fast shutdown).
start_postgres() {
  local scratch="$1" port="$2" database="$3"
  shift 3
  local root bin
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  mkdir -p "$scratch/pg"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$scratch"; fi
  as_postgres "$bin/initdb" -D "$scratch/pg" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    --no-sync >"$scratch/initdb.log"
  local settings=()
  for setting in "$@"; do settings+=(-c "$setting"); done
  # Started directly, not through a shell function, so that $! is the real wrapper.
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$bin/postgres" -D "$scratch/pg" -p "$port" -k "$scratch" \
      -c listen_addresses=127.0.0.1 -c fsync=off "${settings[@]}" >"$scratch/postgres.log" 2>&1 &
  else
    "$bin/postgres" -D "$scratch/pg" -p "$port" -k "$scratch" -c listen_addresses=127.0.0.1 -c fsync=off \
      "${settings[@]}" >"$scratch/postgres.log" 2>&1 &
  fi
  postgres_wrapper_pid=$!
  wait_for_port "$port" PostgreSQL || return 1
  for _ in $(seq 1 100); do
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qtAc "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.1
  done
  postmaster_pid="$(head -n 1 "$scratch/pg/postmaster.pid" 2>/dev/null || true)"
  psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE $database" >/dev/null
  psql -h 127.0.0.1 -p "$port" -U postgres -d "$database" -q -v ON_ERROR_STOP=1 \
    -f "$root/sql/schema/mastodon-main.sql" >/dev/null
}

# stop_postgres SCRATCH: fast shutdown of the postmaster, waiting for it to go.
stop_postgres() {
  local pidfile="$1/pg/postmaster.pid"
  [ -f "$pidfile" ] || return 0
  kill -INT "$(head -n 1 "$pidfile")" 2>/dev/null || true
  for _ in $(seq 1 100); do [ -f "$pidfile" ] || break; sleep 0.1; done
}

# Accounts 1..COUNT ('bench1'…), one user and one 'read write follow' token each, and
# list i owned by account i; then the tokens, "TOKEN ACCOUNT_ID" per line, into
# TOKENS_FILE. For the benchmarks (bench/run.sh, bench/drain-run.sh).
#   create_bench_accounts PG_PORT DATABASE COUNT TOKENS_FILE
create_bench_accounts() {
  local port="$1" database="$2" count="$3" tokens_file="$4"
  local psql_args=(-h 127.0.0.1 -p "$port" -U postgres -d "$database" -q -v ON_ERROR_STOP=1)
  psql "${psql_args[@]}" >/dev/null <<SQL
INSERT INTO accounts (id, username) SELECT i, 'bench' || i FROM generate_series(1, $count) AS i;
INSERT INTO users (id, email, account_id) SELECT i, 'bench' || i || '@localhost', i FROM generate_series(1, $count) AS i;
INSERT INTO oauth_access_tokens (token, scopes, resource_owner_id)
  SELECT md5(random()::text || clock_timestamp()::text || i) || md5(i::text || random()::text), 'read write follow', i
  FROM generate_series(1, $count) AS i;
INSERT INTO lists (id, account_id, title) SELECT i, i, 'bench list ' || i FROM generate_series(1, $count) AS i;
SELECT setval('accounts_id_seq', $count); SELECT setval('users_id_seq', $count);
SELECT setval('lists_id_seq', $count);
ANALYZE;
SQL
  psql "${psql_args[@]}" -tA -F ' ' -c "SELECT t.token, u.account_id FROM oauth_access_tokens t JOIN users u ON u.id = t.resource_owner_id ORDER BY u.account_id" >"$tokens_file"
}

# Redis and PostgreSQL for a benchmark, on free loopback ports, with the descriptor
# limit raised: sets redis_port, pg_port and pg_wrapper_pid and appends both server
# processes to the caller's `pids` array (stopped by the caller's cleanup).
#   start_bench_servers SCRATCH DATABASE
start_bench_servers() {
  local scratch="$1" database="$2"
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  redis_port="$(free_port)"
  start_redis "$scratch" "$redis_port"
  pids+=($!)
  wait_for_port "$redis_port" Redis
  pg_port="$(free_port)"
  start_postgres "$scratch" "$pg_port" "$database" max_connections=200
  pg_wrapper_pid=$postgres_wrapper_pid
  pids+=("$pg_wrapper_pid")
}

# stop_process PID SIGNAL [SECONDS]: signal it, wait up to SECONDS (10), then SIGKILL.
stop_process() {
  kill "-$2" "$1" 2>/dev/null || return 0
  for _ in $(seq 1 $((${3:-10} * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

# Stops every process in the caller's `pids` array, newest first (Sluice before its
# databases); PostgreSQL through its postmaster (fast shutdown), not through the
# runuser wrapper that started it (pg_wrapper_pid, postmaster_pid).
stop_bench_processes() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    if [ "${pids[$i]}" = "${pg_wrapper_pid:-}" ] && [ -n "${postmaster_pid:-}" ]; then
      stop_process "$postmaster_pid" INT
    fi
    stop_process "${pids[$i]}" TERM
  done
  wait 2>/dev/null || true
}
