#!/usr/bin/env bash
# What instances cost a Sluice fleet (docs/hosting.md#cost): runs sluice-auth,
# sluice-broker and sluice-gateway (Release, from BUILD_DIR) with a tenants file of N
# instances, opens CLIENTS idle SSE `user` streams per instance on the gateway (each
# with its instance's Host and one of CLIENTS tokens: bench/tenants/hold_streams.py),
# proves every stream live in its own instance with one `update` published on each
# client's channel, and reports each tier's resident memory, the Redis connections per
# Redis server and PostgreSQL's connections. The same with 1 instance gives the base;
# the difference over N-1 is the cost of one instance with its clients.
#
#   bench/tenants-cost.sh [--build-dir DIR] [--tenants N] [--clients N] [--redis-servers N]
#
# Instances: all but (redis-servers - 1) share the first Redis under namespaces; each
# of the others has a Redis of its own. All use one PostgreSQL database (each still
# gets its own pool and caches in auth).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/lib/throwaway.sh"

build_dir="$root/build-release"
tenants=500
clients=10
redis_servers=5
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --tenants) tenants="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --redis-servers) redis_servers="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
for binary in sluice-auth sluice-broker sluice-gateway; do
  [ -x "$build_dir/bin/$binary" ] || { echo "build $binary in $build_dir first" >&2; exit 2; }
done
[ "$redis_servers" -ge 1 ] && [ "$tenants" -ge "$redis_servers" ] || { echo "need tenants >= redis-servers >= 1" >&2; exit 2; }

scratch="$(mktemp -d /tmp/sluice-tenants-cost-XXXXXX)"
pids=()
cleanup() {
  exec 7>&- 2>/dev/null || true
  stop_bench_processes
  stop_postgres "$scratch"
  rm -rf "$scratch"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

redis_ports=()
for i in $(seq 1 "$redis_servers"); do
  mkdir -p "$scratch/redis$i"
  port="$(free_port)"
  start_redis "$scratch/redis$i" "$port"
  pids+=($!)
  wait_for_port "$port" Redis
  redis_ports+=("$port")
done
pg_port="$(free_port)"
start_postgres "$scratch" "$pg_port" mastodon_bench max_connections=300
pg_wrapper_pid=$postgres_wrapper_pid
pids+=("$pg_wrapper_pid")
create_bench_accounts "$pg_port" mastodon_bench "$clients" "$scratch/tokens"
accounts="$(cut -d' ' -f2 "$scratch/tokens" | paste -sd,)"
tokens="$(cut -d' ' -f1 "$scratch/tokens" | paste -sd,)"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
redis_clients() { redis-cli -p "$1" CLIENT LIST | grep -vc 'cmd=client|list' || true; }
pg_connections() {
  psql -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qtAc \
    "SELECT count(*) FROM pg_stat_activity WHERE datname = 'mastodon_bench' AND pid <> pg_backend_pid()"
}

# measure COUNT: one run with COUNT instances; prints a JSON line.
measure() {
  local count="$1" file="$scratch/tenants-$1.json"
  python3 - "$count" "$redis_servers" "$pg_port" "${redis_ports[@]}" >"$file" <<'PY'
import json, sys
count, servers, pg_port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ports = sys.argv[4:]
own = min(servers - 1, count - 1)
tenants = {}
for i in range(count):
    name = "t%04d" % i
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:%s/mastodon_bench" % pg_port, "DB_POOL": "2"}
    if i < own:
        env["REDIS_URL"] = "redis://127.0.0.1:%s/0" % ports[1 + i]
    else:
        env["REDIS_URL"] = "redis://127.0.0.1:%s/0" % ports[0]
        env["REDIS_NAMESPACE"] = name
    tenants[name] = {"hosts": [name + ".example"], "env": env}
print(json.dumps({"tenants": tenants}))
PY
  local auth_port broker_port gateway_port
  auth_port="$(free_port)"
  broker_port="$(free_port)"
  gateway_port="$(free_port)"
  SLUICE_TENANTS_FILE="$file" SLUICE_AUTH_LISTEN="127.0.0.1:$auth_port" SLUICE_AUTH_ADMIN_LISTEN="" \
    LOG_LEVEL=warn "$build_dir/bin/sluice-auth" >"$scratch/auth-$count.log" 2>&1 &
  local auth_pid=$!
  pids+=("$auth_pid")
  SLUICE_TENANTS_FILE="$file" SLUICE_BROKER_LISTEN="127.0.0.1:$broker_port" SLUICE_BROKER_ADMIN_LISTEN="" \
    LOG_LEVEL=warn "$build_dir/bin/sluice-broker" >"$scratch/broker-$count.log" 2>&1 &
  local broker_pid=$!
  pids+=("$broker_pid")
  wait_for_port "$auth_port" sluice-auth
  wait_for_port "$broker_port" sluice-broker
  # Every client comes from 127.0.0.1: the per-address cap is off.
  SLUICE_TENANTS_FILE="$file" SLUICE_AUTH_ADDR="127.0.0.1:$auth_port" SLUICE_BROKER_ADDR="127.0.0.1:$broker_port" \
    PORT="$gateway_port" BIND=127.0.0.1 SLUICE_GATEWAY_ADMIN_LISTEN="" SLUICE_MAX_CONNECTIONS_PER_IP=0 \
    LOG_LEVEL=warn "$build_dir/bin/sluice-gateway" >"$scratch/gateway-$count.log" 2>&1 &
  local gateway_pid=$!
  pids+=("$gateway_pid")
  wait_for_port "$gateway_port" sluice-gateway
  local auth_idle broker_idle gateway_idle
  sleep 1
  auth_idle="$(rss_kib "$auth_pid")"
  broker_idle="$(rss_kib "$broker_pid")"
  gateway_idle="$(rss_kib "$gateway_pid")"

  # The clients hold their streams until their stdin closes (fd 7).
  local fifo="$scratch/load-$count.in" out="$scratch/load-$count.out"
  mkfifo "$fifo"
  python3 "$root/bench/tenants/hold_streams.py" --port "$gateway_port" --tenants "$file" --tokens "$tokens" \
    <"$fifo" >"$out" 2>"$scratch/load-$count.err" &
  local load_pid=$!
  exec 7>"$fifo"
  # PostgreSQL's connections sampled while the lookups run: the most at any time.
  local pg_most=0 pg_sample
  for _ in $(seq 1 1200); do
    [ -s "$out" ] && break
    pg_sample="$(pg_connections)"
    [ "$pg_sample" -gt "$pg_most" ] && pg_most=$pg_sample
    sleep 0.05
  done
  [ -s "$out" ] || { cat "$scratch/load-$count.err" >&2; exit 1; }
  # Settled when the first Redis has every channel of its instances subscribed.
  local own=$(( ${#redis_ports[@]} - 1 < count - 1 ? ${#redis_ports[@]} - 1 : count - 1 ))
  local want=$(( (count - own) * 2 * clients )) subscribed=0
  for _ in $(seq 1 600); do
    subscribed="$(redis-cli -p "${redis_ports[0]}" PUBSUB CHANNELS | grep -c . || true)"
    [ "$subscribed" -ge "$want" ] && break
    sleep 0.1
  done
  local auth_busy broker_busy gateway_busy pg_now redis_list="" i
  auth_busy="$(rss_kib "$auth_pid")"
  broker_busy="$(rss_kib "$broker_pid")"
  gateway_busy="$(rss_kib "$gateway_pid")"
  pg_now="$(pg_connections)"
  for i in "${!redis_ports[@]}"; do redis_list+="${redis_list:+,}$(redis_clients "${redis_ports[$i]}")"; done

  # One `update` per client channel, in its own instance's Redis and namespace; the
  # receivers Redis counted for them go into the result.
  local published
  published="$(python3 - "$file" "$accounts" <<'PY'
import json, socket, sys
tenants = json.load(open(sys.argv[1]))["tenants"]
accounts = sys.argv[2].split(",")
message = json.dumps({"event": "update", "payload": {"id": "1"}})
def command(*args):
    out = "*%d\r\n" % len(args)
    for arg in args:
        data = arg.encode()
        out += "$%d\r\n" % len(data) + arg + "\r\n"
    return out.encode()
by_port = {}
for name, tenant in tenants.items():
    env = tenant["env"]
    port = int(env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    ns = env.get("REDIS_NAMESPACE", "")
    for account in accounts:
        by_port.setdefault(port, []).append(command("PUBLISH", (ns + ":" if ns else "") + "timeline:" + account, message))
publishes = receivers = 0
for port, commands in by_port.items():
    with socket.create_connection(("127.0.0.1", port)) as redis:
        redis.sendall(b"".join(commands))
        replies = b""
        while replies.count(b"\r\n") < len(commands):
            replies += redis.recv(65536)
    publishes += len(commands)
    receivers += sum(int(line[1:]) for line in replies.split(b"\r\n") if line.startswith(b":"))
print(json.dumps({"publishes": publishes, "receivers": receivers}))
PY
)"
  for _ in $(seq 1 1300); do
    [ "$(wc -l <"$out")" -ge 2 ] && break
    sleep 0.1
  done

  # The auth tier closes connections idle for SLUICE_AUTH_DB_IDLE_TIMEOUT_MS (10 s).
  local pg_later idle_start=$SECONDS
  for _ in $(seq 1 300); do
    pg_later="$(pg_connections)"
    [ "$pg_later" -eq 0 ] && break
    sleep 0.1
  done
  exec 7>&-
  wait "$load_pid" || true
  stop_process "$gateway_pid" TERM
  stop_process "$broker_pid" TERM
  stop_process "$auth_pid" TERM
  printf '{"instances":%s,"clients_per_instance":%s,"clients":%s,"published":%s,"verification":%s,"gateway_rss_kib":{"idle":%s,"loaded":%s},"auth_rss_kib":{"idle":%s,"loaded":%s},"broker_rss_kib":{"idle":%s,"loaded":%s},"postgres_connections":{"most_during_lookups":%s,"loaded":%s,"after_idle_timeout":%s},"redis_clients_per_server":[%s],"first_redis_channels":{"want":%s,"subscribed":%s},"seconds_until_postgres_idle":%s}\n' \
    "$count" "$clients" "$(head -1 "$out")" "$published" "$(sed -n 2p "$out")" "$gateway_idle" "$gateway_busy" "$auth_idle" "$auth_busy" \
    "$broker_idle" "$broker_busy" "$pg_most" "$pg_now" "$pg_later" "$redis_list" "$want" "$subscribed" \
    "$((SECONDS - idle_start))"
}

measure 1
measure "$tenants"
