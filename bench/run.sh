#!/usr/bin/env bash
# Runs one sluice-bench scenario against a freshly started Sluice (or, with --reference,
# Mastodon's own Node.js streaming server):
#   - a throwaway Redis and PostgreSQL on free loopback ports (temp dir, removed on exit),
#   - Mastodon's tables (sql/schema/mastodon-main.sql), N accounts with one token each,
#     optionally a realistic filtering profile,
#   - the Release server: all-in-one (default), --split (gateway + broker + auth), or
#     --gateways K (K sluice-gateway processes sharing the port with SO_REUSEPORT in
#     front of one broker and one auth),
#   - sluice-bench with the tokens, Redis, target and --server-pid for every Sluice process
#     added; every other argument is passed to sluice-bench as it stands.
# Everything it started is stopped on exit. The exit status is sluice-bench's, except: 1
# when it passed but a server process died during the run, 6 when it passed but a Sluice
# process did not exit cleanly at SIGTERM after it (a sanitizer report, a status other than 0).
#
#   bench/run.sh [run.sh options] [sluice-bench options]
#
# run.sh options:
#   --split               three tiers instead of the all-in-one
#   --gateways K          K gateway processes (implies --split; SLUICE_REUSE_PORT=true)
#   --gateway-threads T   SLUICE_GATEWAY_THREADS for each gateway / the all-in-one
#   --accounts N          accounts, one token each (default 1); clients use them round-robin;
#                         account i owns list i (for --stream list:i)
#   --filter-profile      chosen_languages, blocks, mutes, domain blocks and a keyword filter
#                         for every account, partly its own (none matches the bench payload)
#   --build-dir DIR       where bin/sluice* are (default build-release)
#   --no-build            do not (re)build; use what is in --build-dir
#   --log-level L         server LOG_LEVEL (default warn: one log line per connection
#                         would measure the logger)
#   --server-env K=V      extra environment for the server processes (repeatable)
#   --logs DIR            keep the server / Redis / PostgreSQL logs in DIR
#   --bench-wrapper CMD   run sluice-bench under CMD (e.g. "taskset -c 1")
#   --floor BIN           instead of Sluice, the bare fan-out floor
#                         (../shared/tools/fanout-floor.cpp, built as BIN) on the first
#                         account's user channel: what a delivery costs on this machine.
#                         It sends every payload as Redis carried it, so the per-event
#                         check reports wrong_payload; delivery counts and timings hold.
#   --reference DIR       instead of Sluice, Mastodon's streaming server: `node DIR/index.js`
#                         (node from PATH; DIR holds its files and node_modules, kept outside
#                         this repository) with its production settings: NODE_ENV=production,
#                         LOG_LEVEL (as above), PORT, BIND=127.0.0.1, REDIS_HOST/REDIS_PORT,
#                         DATABASE_URL, DB_POOL left at its default (--server-env to change).
#                         If its token query joins `devices` (Mastodon before 4.3), an empty
#                         `devices` table is created. One process; sluice-bench measures it.
#   -h, --help
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

split=0
gateways=1
gateway_threads=""
accounts=1
filter_profile=0
build_dir="$root/build-release"
build=1
log_level="warn"
keep_logs=""
bench_wrapper=""
floor_bin=""
reference_dir=""
server_env=()
bench_args=()

usage() { sed -n '2,/^#   -h, --help$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --split) split=1 ;;
    --gateways) gateways="$2"; split=1; shift ;;
    --gateway-threads) gateway_threads="$2"; shift ;;
    --accounts) accounts="$2"; shift ;;
    --filter-profile) filter_profile=1 ;;
    --build-dir) build_dir="$(cd "$2" && pwd)"; shift ;;
    --no-build) build=0 ;;
    --log-level) log_level="$2"; shift ;;
    --server-env) server_env+=("$2"); shift ;;
    --logs) keep_logs="$2"; shift ;;
    --bench-wrapper) bench_wrapper="$2"; shift ;;
    --floor) floor_bin="$2"; shift ;;
    --reference) reference_dir="$(cd "$2" && pwd)"; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; bench_args+=("$@"); break ;;
    *) bench_args+=("$1") ;;
  esac
  shift
done

case "$gateways" in ''|*[!0-9]*) echo "run.sh: --gateways needs a number" >&2; exit 2 ;; esac
case "$accounts" in ''|*[!0-9]*) echo "run.sh: --accounts needs a number" >&2; exit 2 ;; esac
[ "$gateways" -ge 1 ] && [ "$accounts" -ge 1 ] || { echo "run.sh: --gateways and --accounts must be >= 1" >&2; exit 2; }
if [ -n "$reference_dir" ]; then
  if [ "$split" -eq 1 ] || [ -n "$floor_bin" ]; then
    echo "run.sh: --reference goes with neither --split/--gateways nor --floor" >&2; exit 2
  fi
  [ -f "$reference_dir/index.js" ] || { echo "run.sh: $reference_dir/index.js is missing" >&2; exit 2; }
  [ -d "$reference_dir/node_modules" ] || { echo "run.sh: $reference_dir/node_modules is missing (npm install there first)" >&2; exit 2; }
  command -v node >/dev/null || { echo "run.sh: --reference needs node on PATH" >&2; exit 2; }
fi

if [ "$build" -eq 1 ]; then
  targets=(sluice-bench)
  if [ -n "$reference_dir" ]; then :
  elif [ "$split" -eq 1 ]; then targets+=(sluice-gateway sluice-broker sluice-auth); else targets+=(sluice); fi
  if [ ! -f "$build_dir/build.ninja" ]; then
    nice cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
  fi
  nice cmake --build "$build_dir" --target "${targets[@]}" >&2
fi
bin="$build_dir/bin"
servers="sluice"
[ "$split" -eq 1 ] && servers="sluice-gateway sluice-broker sluice-auth"
[ -n "$reference_dir" ] && servers=""
for exe in sluice-bench $servers; do
  [ -x "$bin/$exe" ] || { echo "run.sh: $bin/$exe is missing (build it, or drop --no-build)" >&2; exit 2; }
done

scratch="$(mktemp -d /tmp/sluice-bench-XXXXXX)"
# shellcheck source=../scripts/lib/throwaway.sh
source "$root/scripts/lib/throwaway.sh"
pids=()        # every process we started, stopped in reverse order on exit
server_pids=() # the server processes (measured by sluice-bench)

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_bench_processes
  if [ -n "$keep_logs" ]; then
    mkdir -p "$keep_logs"
    cp "$scratch"/*.log "$keep_logs"/ 2>/dev/null || true
  fi
  rm -rf "$scratch"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_bench_servers "$scratch" mastodon_bench
psql_db() { psql -h 127.0.0.1 -p "$pg_port" -U postgres -d mastodon_bench -q -v ON_ERROR_STOP=1 "$@"; }

tokens_file="$scratch/tokens.txt"
create_bench_accounts "$pg_port" mastodon_bench "$accounts" "$tokens_file"
if [ "$filter_profile" -eq 1 ]; then
  # Three other accounts, each blocked, muted and (one) on a blocked domain; a keyword
  # filter in every context. On top of that, each account's own rows, different from
  # account to account (chosen by its id): one block and one mute among 50 more accounts,
  # a domain block among 10 domains, a second keyword of its own, and chosen languages
  # {en} or {en,de}. The bench payload's author (alice / carol@remote.example), language
  # (en) and text match none of them, so every event must still be delivered after the
  # server has checked all of it.
  psql_db >/dev/null <<SQL
UPDATE users SET chosen_languages = CASE WHEN account_id % 2 = 0 THEN '{en}'::varchar[] ELSE '{en,de}'::varchar[] END;
INSERT INTO accounts (username, domain) VALUES ('spammer', NULL), ('troll', NULL), ('loud', 'blocked.example');
INSERT INTO blocks (account_id, target_account_id)
  SELECT u.account_id, a.id FROM users u CROSS JOIN accounts a WHERE a.username IN ('spammer', 'troll');
INSERT INTO mutes (account_id, target_account_id)
  SELECT u.account_id, a.id FROM users u CROSS JOIN accounts a WHERE a.username IN ('troll', 'loud');
INSERT INTO account_domain_blocks (account_id, domain) SELECT account_id, 'blocked.example' FROM users;
INSERT INTO custom_filters (account_id, phrase, context, action)
  SELECT account_id, 'Bench filter', '{home,notifications,public,thread,account}', 0 FROM users;
INSERT INTO custom_filter_keywords (custom_filter_id, keyword, whole_word)
  SELECT id, 'zzqxneverinbenchpayload', true FROM custom_filters;
INSERT INTO accounts (username, domain)
  SELECT 'other' || i, CASE WHEN i % 5 = 0 THEN 'other' || i || '.example' END FROM generate_series(0, 49) AS i;
INSERT INTO blocks (account_id, target_account_id)
  SELECT u.account_id, a.id FROM users u JOIN accounts a ON a.username = 'other' || (u.account_id * 7 % 50);
INSERT INTO mutes (account_id, target_account_id)
  SELECT u.account_id, a.id FROM users u JOIN accounts a ON a.username = 'other' || ((u.account_id * 13 + 1) % 50);
INSERT INTO account_domain_blocks (account_id, domain)
  SELECT account_id, 'spam' || (account_id % 10) || '.example' FROM users;
INSERT INTO custom_filter_keywords (custom_filter_id, keyword, whole_word)
  SELECT id, 'zzqown' || account_id, false FROM custom_filters;
ANALYZE;
SQL
fi
if [ -n "$reference_dir" ] && grep -q 'JOIN devices' "$reference_dir/index.js"; then
  # Mastodon's devices table (end-to-end encryption; dropped in 4.3), left empty: the
  # reference's token query LEFT JOINs it. Taken from 4.2's schema, where it is defined once.
  sed -n '/^CREATE TABLE devices (/,/^);/p; /^CREATE INDEX index_devices_on_/p' \
    "$root/sql/schema/mastodon-4.2.sql" | psql_db >/dev/null
fi
database_url="postgres://postgres@127.0.0.1:$pg_port/mastodon_bench"

# --- Server (Sluice, the floor or the reference) ---------------------------------
port="$(free_port)"
common_env=(REDIS_HOST=127.0.0.1 REDIS_PORT="$redis_port" LOG_LEVEL="$log_level" NODE_ENV=production)
gateway_env=(PORT="$port" BIND=127.0.0.1)
[ -n "$gateway_threads" ] && gateway_env+=(SLUICE_GATEWAY_THREADS="$gateway_threads")

start_server() { # name env... -- command
  local name="$1"; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  # env execs the command: $! is the server process itself, as sluice-bench must measure it.
  env "${envs[@]}" "${server_env[@]}" "$@" >"$scratch/$name.log" 2>&1 &
  pids+=($!)
  server_pids+=($!)
}

if [ -n "$floor_bin" ]; then
  start_server floor -- "$floor_bin" "$port" "$redis_port" "timeline:1"
  topology="fan-out floor"
elif [ -n "$reference_dir" ]; then
  start_server reference "${common_env[@]}" "${gateway_env[@]}" DATABASE_URL="$database_url" \
    -- node "$reference_dir/index.js"
  topology="Mastodon's streaming server, $reference_dir"
elif [ "$split" -eq 0 ]; then
  start_server sluice "${common_env[@]}" "${gateway_env[@]}" DATABASE_URL="$database_url" \
    SLUICE_BROKER_ADMIN_LISTEN= SLUICE_AUTH_ADMIN_LISTEN= SLUICE_GATEWAY_ADMIN_LISTEN= -- "$bin/sluice"
  topology="all-in-one"
else
  broker_port="$(free_port)"
  auth_port="$(free_port)"
  start_server broker "${common_env[@]}" SLUICE_BROKER_LISTEN="127.0.0.1:$broker_port" SLUICE_BROKER_ADMIN_LISTEN= \
    -- "$bin/sluice-broker"
  start_server auth "${common_env[@]}" DATABASE_URL="$database_url" SLUICE_AUTH_LISTEN="127.0.0.1:$auth_port" \
    SLUICE_AUTH_ADMIN_LISTEN= SLUICE_BROKER_ADDR="127.0.0.1:$broker_port" -- "$bin/sluice-auth"
  wait_for_port "$broker_port" sluice-broker
  wait_for_port "$auth_port" sluice-auth
  reuse=()
  [ "$gateways" -gt 1 ] && reuse=(SLUICE_REUSE_PORT=true)
  for g in $(seq 1 "$gateways"); do
    start_server "gateway$g" "${common_env[@]}" "${gateway_env[@]}" "${reuse[@]}" SLUICE_GATEWAY_ADMIN_LISTEN= \
      SLUICE_BROKER_ADDR="127.0.0.1:$broker_port" SLUICE_AUTH_ADDR="127.0.0.1:$auth_port" -- "$bin/sluice-gateway"
  done
  topology="split: $gateways gateway(s) + broker + auth"
fi
wait_for_port "$port" "the server"
for _ in $(seq 1 100); do
  [ -n "$floor_bin" ] && break  # the floor streams on any path: no health answer
  curl -sf "http://127.0.0.1:$port/api/v1/streaming/health" >/dev/null 2>&1 && break
  sleep 0.1
done
for pid in "${server_pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || { echo "run.sh: a server process exited at start:" >&2; tail -n 20 "$scratch"/*.log >&2; exit 3; }
done
echo "run.sh: $([ -n "$reference_dir" ] && echo Reference || echo Sluice) ($topology) on 127.0.0.1:$port, pids ${server_pids[*]}; Redis :$redis_port; PostgreSQL :$pg_port; $accounts account(s)$([ "$filter_profile" -eq 1 ] && echo ", filtering profile")" >&2

# --- Bench -----------------------------------------------------------------
pid_args=()
for pid in "${server_pids[@]}"; do pid_args+=(--server-pid "$pid"); done
set +e
# shellcheck disable=SC2086 # the wrapper is a command line on purpose
$bench_wrapper "$bin/sluice-bench" --host 127.0.0.1 --port "$port" --redis-host 127.0.0.1 --redis-port "$redis_port" \
  --tokens-file "$tokens_file" "${pid_args[@]}" "${bench_args[@]}"
status=$?
set -e

# --- Server health after the run --------------------------------------------
for pid in "${server_pids[@]}"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "run.sh: server process $pid DIED during the run" >&2
    status=$((status == 0 ? 1 : status))
  fi
done
# --- Sluice's own shutdown ------------------------------------------------------
# A sanitizer build reports leaks and some errors only as a process exits: stop each
# Sluice process (gateways first, as started last), and fail (status 6) on an exit status
# other than 0 or a sanitizer report in its log. The floor and the reference are not
# Sluice's to judge: the cleanup stops them.
if [ -z "$floor_bin" ] && [ -z "$reference_dir" ]; then
  for ((i = ${#server_pids[@]} - 1; i >= 0; i--)); do
    pid=${server_pids[$i]}
    running=0
    if kill -TERM "$pid" 2>/dev/null; then
      running=1
      for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null && echo "run.sh: server process $pid did not exit within 60 s of SIGTERM" >&2
    fi
    exit_status=0
    wait "$pid" || exit_status=$?
    # Reaped: the cleanup must not signal its number again (another process may get it).
    remaining=()
    for other in "${pids[@]}"; do [ "$other" = "$pid" ] || remaining+=("$other"); done
    pids=("${remaining[@]}")
    # One that died during the run is reported above (status 1).
    if [ "$running" -eq 1 ] && [ "$exit_status" -ne 0 ]; then
      echo "run.sh: server process $pid exited with status $exit_status after SIGTERM" >&2
      [ "$status" -eq 0 ] && status=6
    fi
  done
  if grep -qE "$sanitizer_report" "$scratch"/*.log 2>/dev/null; then
    echo "run.sh: a sanitizer reported in the server logs:" >&2
    grep -hE -A3 "$sanitizer_report" "$scratch"/*.log | head -n 40 >&2
    [ "$status" -eq 0 ] && status=6
  fi
fi
problems="$(grep -hiE '"level":"(warn|error|fatal)"|\b(warn|error|fatal)\b|'"$sanitizer_report" "$scratch"/sluice*.log "$scratch"/gateway*.log "$scratch"/broker.log "$scratch"/auth.log "$scratch"/reference.log 2>/dev/null | head -n 20 || true)"
if [ -n "$problems" ]; then
  echo "run.sh: server log warnings/errors (first 20):" >&2
  echo "$problems" >&2
fi
exit "$status"
