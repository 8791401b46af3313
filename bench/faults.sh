#!/usr/bin/env bash
# The fault matrix of docs/reliability.md#faults: Sluice split over 3 gateways (one port,
# SO_REUSEPORT), 2 brokers and 2 auth replicas, against a throwaway Redis and
# PostgreSQL. For each fault, sluice-bench holds a steady load (distinct tokens, SSE and
# WebSocket, user/public/hashtag streams, every event verified per client: sequence,
# name, payload) while one component is killed or stopped and then started again, and
# bench/fault_probe.py opens new connections throughout. One row per fault:
#
#   disconnected  clients the server cut (sluice-bench "dropped"; no client reconnects)
#   cuts spread   first cut to last cut (a draining gateway spreads them)
#   (counts are per run, "a / b / c"; timings are medians)
#   lost          events missing, on every client / on clients never cut
#   dup, reord    events received twice / out of order
#   longest       the longest publish-to-receive delay of any event
#   gap           the longest any client waited between two consecutive events (the
#                 publishing interval, 500 ms, included)
#   recovery      broker: restart -> every gateway and auth stream back on it;
#                 auth, gateway: restart -> ready; PostgreSQL: start -> first unseen
#                 token admitted; Redis: redis-server started -> every channel
#                 subscribed again (events flow)
#   new conns     probe answers during the fault window (fault -> recovery + 2 s),
#                 seen tokens (in the auth caches) and unseen ones (never looked up)
#
#   bench/faults.sh [--build-dir DIR] [--no-build] [--clients N] [--rate R] [--seconds S]
#                   [--repeat K] [--faults LIST] [--ci] [--keep DIR]
#
#   --faults LIST  comma list of: broker-kill, broker-term, broker2-kill, auth-kill,
#                  auth2-kill, redis-restart, postgres-stop, gateway-term, gateway-kill
#                  (default: all of them)
#   --repeat K     runs per fault (default 3; timings are reported as medians)
#   --ci           small and strict: 300 clients, broker-kill, broker-term, auth-kill,
#                  redis-restart; exits 1 when an event is lost, duplicated or
#                  reordered or a client is cut where the design promises none
#                  (docs/scale-out.md); timings are not judged
#
# Redis restart: sluice-bench runs with --redis-outages, so events Redis never had
# (published while it was down, in flight when it went, or before any broker had
# re-subscribed) are not required; every other event must arrive.
# Exit status: 0, or 1 when a zero-loss promise was broken (with --ci, or always for
# broker and auth faults), 2 usage, 3 setup.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

build_dir="$root/build-release"
build=1
clients=5000
rate=2
seconds=45
repeat=3
faults="broker-kill,broker-term,broker2-kill,auth-kill,auth2-kill,redis-restart,postgres-stop,gateway-term,gateway-kill"
ci=0
keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="$(cd "$2" && pwd)"; shift ;;
    --no-build) build=0 ;;
    --clients) clients="$2"; shift ;;
    --rate) rate="$2"; shift ;;
    --seconds) seconds="$2"; shift ;;
    --repeat) repeat="$2"; shift ;;
    --faults) faults="$2"; shift ;;
    --ci) ci=1; clients=300; repeat=1; seconds=25; faults="broker-kill,broker-term,auth-kill,redis-restart" ;;
    --keep) keep="$2"; shift ;;
    -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "faults.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
IFS=',' read -r -a fault_list <<<"$faults"
for fault in "${fault_list[@]}"; do
  case "$fault" in
    broker-kill|broker-term|broker2-kill|auth-kill|auth2-kill|redis-restart|postgres-stop|gateway-term|gateway-kill) ;;
    *) echo "faults.sh: unknown fault $fault" >&2; exit 2 ;;
  esac
done

if [ "$build" -eq 1 ]; then
  if [ ! -f "$build_dir/build.ninja" ]; then
    nice cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF >/dev/null
  fi
  nice cmake --build "$build_dir" --target sluice-bench sluice-gateway sluice-broker sluice-auth >&2
fi
bin="$build_dir/bin"
for exe in sluice-bench sluice-gateway sluice-broker sluice-auth; do
  [ -x "$bin/$exe" ] || { echo "faults.sh: $bin/$exe is missing" >&2; exit 2; }
done

scratch="$(mktemp -d /tmp/sluice-faults-XXXXXX)"
chmod 755 "$scratch"
# shellcheck source=../scripts/lib/throwaway.sh
source "$root/scripts/lib/throwaway.sh"
pids=()
declare -A proc_pid proc_cmd

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for name in "${!proc_pid[@]}"; do stop_process "${proc_pid[$name]}" KILL; done
  stop_bench_processes
  if [ -n "$keep" ]; then mkdir -p "$keep"; cp -r "$scratch"/*.log "$scratch"/runs "$keep"/ 2>/dev/null || true; fi
  rm -rf "$scratch"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_bench_servers "$scratch" mastodon_faults
redis_pid="${pids[0]}"  # start_bench_servers starts Redis first
pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
# Load tokens, then fresh tokens for the probes (unseen: never looked up before).
unseen_per_run=200
create_bench_accounts "$pg_port" mastodon_faults $((clients + unseen_per_run * ${#fault_list[@]} * repeat)) "$scratch/all-tokens.txt"
head -n "$clients" "$scratch/all-tokens.txt" >"$scratch/tokens.txt"
# The probes' seen tokens: some the load connected with (looked up once, at its start).
head -n 50 "$scratch/tokens.txt" >"$scratch/seen.txt"
tail -n +$((clients + 1)) "$scratch/all-tokens.txt" >"$scratch/unseen-pool.txt"
database_url="postgres://postgres@127.0.0.1:$pg_port/mastodon_faults"

port="$(free_port)"
broker_ports=("$(free_port)" "$(free_port)")
auth_ports=("$(free_port)" "$(free_port)")
broker_admin=("$(free_port)" "$(free_port)")
auth_admin=("$(free_port)" "$(free_port)")
gateway_admin=("$(free_port)" "$(free_port)" "$(free_port)")
brokers="127.0.0.1:${broker_ports[0]},127.0.0.1:${broker_ports[1]}"
auths="ipv4:127.0.0.1:${auth_ports[0]},127.0.0.1:${auth_ports[1]}"
common_env=(REDIS_HOST=127.0.0.1 REDIS_PORT="$redis_port" LOG_LEVEL=warn NODE_ENV=production)

# define NAME ENV... -- COMMAND: how to (re)start one process; launch NAME starts it.
define() {
  local name="$1"; shift
  local line="" word
  for word in "$@"; do [ "$word" = "--" ] && continue; line+="$(printf '%q ' "$word")"; done
  proc_cmd[$name]="env $line"
}
launch() {
  # exec: $! is the server itself, so that a signal reaches it and not a subshell.
  eval "exec ${proc_cmd[$1]}" >>"$scratch/$1.log" 2>&1 &
  proc_pid[$1]=$!
}
for i in 0 1; do
  define "broker$((i + 1))" "${common_env[@]}" SLUICE_BROKER_LISTEN="127.0.0.1:${broker_ports[i]}" \
    SLUICE_BROKER_ADMIN_LISTEN="127.0.0.1:${broker_admin[i]}" -- "$bin/sluice-broker"
  define "auth$((i + 1))" "${common_env[@]}" DATABASE_URL="$database_url" SLUICE_AUTH_LISTEN="127.0.0.1:${auth_ports[i]}" \
    SLUICE_AUTH_ADMIN_LISTEN="127.0.0.1:${auth_admin[i]}" SLUICE_BROKER_ADDR="$brokers" -- "$bin/sluice-auth"
done
for g in 0 1 2; do
  define "gateway$((g + 1))" "${common_env[@]}" PORT="$port" BIND=127.0.0.1 SLUICE_REUSE_PORT=true \
    SLUICE_GATEWAY_THREADS=1 SLUICE_DRAIN_SECONDS=10 SLUICE_GATEWAY_ADMIN_LISTEN="127.0.0.1:${gateway_admin[g]}" \
    SLUICE_BROKER_ADDR="$brokers" SLUICE_AUTH_ADDR="$auths" -- "$bin/sluice-gateway"
done

http_ok() { curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$1$2"; }
metric() { curl -s --max-time 1 "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2; exit}'; }
streams_on_broker() { metric "${broker_admin[$1]}" sluice_broker_gateway_streams; }
now_ms() { date +%s%3N; }
# wait_until SECONDS COMMAND...: polls every 50 ms; prints the milliseconds it took.
wait_until() {
  local limit=$(($1 * 1000)) start; shift
  start="$(now_ms)"
  until "$@" 2>/dev/null; do
    [ $(($(now_ms) - start)) -gt "$limit" ] && { echo -1; return 1; }
    sleep 0.05
  done
  echo $(($(now_ms) - start))
}
broker_has_everyone() { [ "$(streams_on_broker "$1")" = "5" ]; }  # 3 gateways + 2 auth
all_ready() {
  for i in 0 1; do broker_has_everyone "$i" || return 1; http_ok "${auth_admin[i]}" /readyz || return 1; done
  for g in 0 1 2; do http_ok "${gateway_admin[g]}" /readyz || return 1; done
}
ensure_running() {
  for name in broker1 broker2 auth1 auth2 gateway1 gateway2 gateway3; do
    if [ -z "${proc_pid[$name]:-}" ] || ! kill -0 "${proc_pid[$name]}" 2>/dev/null; then launch "$name"; fi
  done
  wait_until 60 all_ready >/dev/null || { echo "faults.sh: the cluster did not become ready" >&2; tail -n 5 "$scratch"/*.log >&2; exit 3; }
}
pg_stop() { stop_postgres "$scratch"; }
pg_start() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$pg_bin/postgres" -D "$scratch/pg" -p "$pg_port" -k "$scratch" -c listen_addresses=127.0.0.1 \
      -c fsync=off -c max_connections=200 >>"$scratch/postgres.log" 2>&1 &
  else
    "$pg_bin/postgres" -D "$scratch/pg" -p "$pg_port" -k "$scratch" -c listen_addresses=127.0.0.1 -c fsync=off \
      -c max_connections=200 >>"$scratch/postgres.log" 2>&1 &
  fi
  pids+=($!)
}
redis_answers() { [ "$(redis-cli -p "$redis_port" PING 2>/dev/null)" = PONG ]; }
redis_channels() { redis-cli -p "$redis_port" PUBSUB CHANNELS 2>/dev/null | grep -c . || true; }
redis_channels_at_least() { [ "$(redis_channels)" -ge "$1" ]; }
pg_answers() { psql -h 127.0.0.1 -p "$pg_port" -U postgres -d mastodon_faults -qtAc "SELECT 1" >/dev/null 2>&1; }

ensure_running
echo "faults.sh: 3 gateways on 127.0.0.1:$port, brokers $brokers, auth $auths; Redis :$redis_port, PostgreSQL :$pg_port; $clients clients" >&2

mkdir -p "$scratch/runs"
events=$((rate * seconds))
results="$scratch/runs/results.jsonl"
: >"$results"
run_index=0
for fault in "${fault_list[@]}"; do
  for rep in $(seq 1 "$repeat"); do
    run_index=$((run_index + 1))
    ensure_running
    run="$scratch/runs/$fault-$rep"
    mkdir -p "$run"
    sed -n "$(((run_index - 1) * unseen_per_run + 1)),$((run_index * unseen_per_run))p" "$scratch/unseen-pool.txt" >"$run/unseen.txt"
    outages_flag=()
    [ "$fault" = redis-restart ] && outages_flag=(--redis-outages)
    server_pid_args=()
    for name in gateway1 gateway2 gateway3; do server_pid_args+=(--server-pid "${proc_pid[$name]}"); done
    "$bin/sluice-bench" --host 127.0.0.1 --port "$port" --redis-host 127.0.0.1 --redis-port "$redis_port" \
      --tokens-file "$scratch/tokens.txt" --clients "$clients" --transport mixed --stream "user,public,hashtag:faults" \
      --event-mix update,delete --events "$events" --rate "$rate" --drain-ms 15000 --linger-ms 3000 --connect-rate 1000 \
      ${outages_flag[@]+"${outages_flag[@]}"} >"$run/bench.out" 2>"$run/bench.err" &
    bench_pid=$!
    # Faults start once events flow, after a few seconds of clean delivery.
    until grep -q '\[publish\]' "$run/bench.err" 2>/dev/null; do
      kill -0 "$bench_pid" 2>/dev/null || break
      sleep 0.2
    done
    sleep 5
    python3 "$root/bench/fault_probe.py" --port "$port" --seen "$scratch/seen.txt" --unseen "$run/unseen.txt" \
      --stop-file "$run/stop-probe" >"$run/probe.txt" &
    probe_pid=$!
    fault_at="$(now_ms)"
    recovery=-1
    case "$fault" in
      broker-kill|broker-term|broker2-kill)
        name=broker1; index=0; signal=KILL
        [ "$fault" = broker2-kill ] && { name=broker2; index=1; }
        [ "$fault" = broker-term ] && signal=TERM
        stop_process "${proc_pid[$name]}" "$signal"
        sleep 5
        launch "$name"
        recovery="$(wait_until 60 broker_has_everyone "$index")" || true
        ;;
      auth-kill|auth2-kill)
        name=auth1; index=0
        [ "$fault" = auth2-kill ] && { name=auth2; index=1; }
        stop_process "${proc_pid[$name]}" KILL
        sleep 5
        launch "$name"
        recovery="$(wait_until 60 http_ok "${auth_admin[index]}" /readyz)" || true
        ;;
      redis-restart)
        # Every channel the cluster holds (the load's and the system channels).
        baseline="$(redis_channels)"
        stop_process "$redis_pid" TERM
        sleep 5
        start_redis "$scratch" "$redis_port"
        redis_pid=$!
        pids+=("$redis_pid")
        # Recovery: from redis-server's start until every channel has a subscriber again.
        recovery="$(wait_until 30 redis_channels_at_least "$baseline")" || true
        ;;
      postgres-stop)
        pg_stop
        sleep 20
        pg_start
        started="$(now_ms)"
        wait_until 60 pg_answers >/dev/null || true
        # Recovery: the first unseen token admitted after PostgreSQL started.
        for _ in $(seq 1 600); do
          first="$(awk -v t="$started" '$1 >= t && $2 == "unseen" && $3 == "200" {print $1; exit}' "$run/probe.txt")"
          [ -n "$first" ] && { recovery=$((first - started)); break; }
          sleep 0.1
        done
        ;;
      gateway-term|gateway-kill)
        signal=TERM; [ "$fault" = gateway-kill ] && signal=KILL
        # SIGTERM: the gateway spreads its clients' ends over SLUICE_DRAIN_SECONDS (10)
        # and exits after a 2 s grace (docs/drain.md); let it finish.
        stop_process "${proc_pid[gateway1]}" "$signal" 30
        launch gateway1
        recovery="$(wait_until 60 http_ok "${gateway_admin[0]}" /readyz)" || true
        ;;
    esac
    sleep 2
    window_end="$(now_ms)"
    touch "$run/stop-probe"
    wait "$probe_pid" 2>/dev/null || true
    wait "$bench_pid" || true
    python3 - "$run" "$fault" "$fault_at" "$window_end" "$recovery" >>"$results" <<'PY'
import json, sys
run, fault, fault_at, window_end, recovery = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
result = None
for line in open(run + "/bench.out"):
    if line.startswith("SLUICE_BENCH_RESULT "):
        result = json.loads(line.split(" ", 1)[1])
probes = {"seen": {}, "unseen": {}}
for line in open(run + "/probe.txt"):
    t, kind, status = line.split()
    if fault_at <= int(t) <= window_end:
        probes[kind][status] = probes[kind].get(status, 0) + 1
row = {"fault": fault, "recovery_ms": recovery, "probes": probes}
if result is None:
    row["error"] = "sluice-bench printed no result"
else:
    d = result["delivery"]
    row.update({
        "clients": result["connections"]["ok"], "disconnected": result["connections"]["dropped"],
        "cuts_spread_ms": result["connections"].get("drops_spread_ms"),
        "failed_connections": result["connections"]["failed"],
        "expected": d["expected"], "lost": d["missing"], "lost_never_dropped": d.get("missing_never_dropped"),
        "duplicated": d["duplicated"], "reordered": d["reordered"],
        "wrong": d["wrong_event"] + d["wrong_payload"] + d["wrong_filtered"] + d["wrong_stream"] + d["unexpected"],
        "longest_ms": result["latency_ms"]["max"], "p99_ms": result["latency_ms"]["p99"],
        "longest_gap_ms": result.get("longest_gap_ms"),
        "aborted": result["aborted"]})
    e = result["events"]
    if e.get("redis_outages"):
        row.update({"publishes_unknown": e["publishes_unknown"], "publishes_unsent": e["publishes_unsent"],
                    "publishes_without_subscriber": e["publishes_without_subscriber"],
                    "redis_outages": e["redis_outages"], "outages_unresolved": e["outages_unresolved"]})
print(json.dumps(row))
PY
    tail -n 1 "$results" >&2
  done
done

# Sanitizer builds (the CI run) report memory errors and leaks in the server logs.
sanitizer="$(grep -hE "$sanitizer_report" "$scratch"/*.log 2>/dev/null | head -n 5 || true)"
if [ -n "$sanitizer" ]; then
  echo "faults.sh: sanitizer reports in the server logs:" >&2
  echo "$sanitizer" >&2
  echo '{"fault": "sanitizer", "error": "sanitizer report in a server log", "probes": {"seen": {}, "unseen": {}}}' >>"$results"
fi

# The table (markdown), and the verdict on the zero-loss promises.
python3 - "$results" "$ci" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ci = sys.argv[2] == "1"
# redis-restart: zero loss of what Redis delivered to a subscriber (sluice-bench --redis-outages).
zero_loss = {"broker-kill", "broker-term", "broker2-kill", "auth-kill", "auth2-kill", "postgres-stop", "redis-restart"}
by_fault = {}
for r in rows:
    by_fault.setdefault(r["fault"], []).append(r)
def joined(rs, key):
    return " / ".join(str(r.get(key, "?")) for r in rs)
def median(rs, key):
    values = [r[key] for r in rs if isinstance(r.get(key), (int, float)) and r[key] >= 0]
    return "%.0f" % statistics.median(values) if values else "n/a"
def probes(rs, kind):
    total, statuses = 0, {}
    for r in rs:
        for status, n in r["probes"][kind].items():
            total += n
            statuses[status] = statuses.get(status, 0) + n
    return "%d: " % total + ", ".join("%s×%d" % (s, n) for s, n in sorted(statuses.items())) if total else "0"
print("| fault | runs | clients cut | cuts spread over ms (median) | events lost (of them on clients never cut) | duplicated | reordered | longest delay ms (median) | longest gap ms (median) | recovery ms (median) | new conns, seen tokens | new conns, unseen tokens |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
broken = []
for fault, rs in by_fault.items():
    lost = " / ".join("%s (%s)" % (r.get("lost", "?"), r.get("lost_never_dropped", "?")) for r in rs)
    print("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        fault, len(rs), joined(rs, "disconnected"), median(rs, "cuts_spread_ms"), lost, joined(rs, "duplicated"), joined(rs, "reordered"),
        median(rs, "longest_ms"), median(rs, "longest_gap_ms"), median(rs, "recovery_ms"), probes(rs, "seen"), probes(rs, "unseen")))
    for r in rs:
        if "error" in r or r.get("aborted"):
            broken.append("%s: %s" % (fault, r.get("error") or r.get("aborted")))
            continue
        # Clients that never connected would hide their losses from every count below.
        if r["failed_connections"]:
            broken.append("%s: %d clients never connected" % (fault, r["failed_connections"]))
        # docs/scale-out.md#auth-replicas: with one auth replica down, the other answers
        # every new connection.
        if fault in ("auth-kill", "auth2-kill"):
            refused = {s: n for kind in ("seen", "unseen") for s, n in r["probes"][kind].items() if s != "200"}
            if refused:
                broken.append("%s: new connections answered %s" % (fault, refused))
        if r["duplicated"] or r["reordered"] or r["wrong"]:
            broken.append("%s: %d duplicated, %d reordered, %d wrong" % (fault, r["duplicated"], r["reordered"], r["wrong"]))
        if fault in zero_loss and (r["lost"] or r["disconnected"]):
            broken.append("%s: %d lost, %d clients cut" % (fault, r["lost"], r["disconnected"]))
        # Channels never subscribed again would hide behind excused publishes: always
        # broken. The 1 s target is judged in the full run only (CI hosts are slow).
        if fault == "redis-restart" and (r["recovery_ms"] < 0 or (not ci and r["recovery_ms"] > 1000)):
            broken.append("%s: channels subscribed again after %d ms (-1: not within 30 s; target 1000)" % (fault, r["recovery_ms"]))
        # The tool excuses a channel's events until its subscriber hears one again: an
        # outage still open at the end hid a channel that never came back.
        if r.get("outages_unresolved"):
            broken.append("%s: %d Redis outage(s) never over (some channel never heard again)" % (fault, r["outages_unresolved"]))
        if fault.startswith("gateway") and r["lost_never_dropped"]:
            broken.append("%s: %d events lost by clients of other gateways" % (fault, r["lost_never_dropped"]))
if broken:
    print("\nfaults.sh: promises broken:\n  " + "\n  ".join(broken))
    sys.exit(1)
print("\nfaults.sh: every zero-loss promise held")
PY
