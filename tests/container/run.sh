#!/usr/bin/env bash
# The container image end to end (the ctest sluice_container_image):
#  1. builds the image from the Dockerfile with scripts/build-image.sh (or reuses
#     SLUICE_TEST_IMAGE when set) and checks it runs as the non-root user 991 and
#     listens where Mastodon's streaming image does (BIND=0.0.0.0, PORT=4000);
#  2. starts a throwaway Redis and PostgreSQL (Mastodon's tables, one account and
#     token) on loopback, free ports (scripts/lib/throwaway.sh);
#  3. the all-in-one `sluice` in a container on the host network: health, readiness,
#     then an SSE stream receives exactly the event PUBLISHed to Redis;
#  4. the split tiers as three containers of the same image (sluice-broker,
#     sluice-auth, sluice-gateway): the same SSE check;
#  5. `podman kube play --network host` of the rendered k8s/overlays/test-loopback
#     Deployments (ports rewritten to free ones, names made unique): the same SSE
#     check, then `podman kube down`.
# Containers run without --rm so that a crashed one still shows its logs; every
# container and process it started is removed on exit. Needs root and podman
# (../shared/tools/container-setup.sh on this kind of machine).
#   tests/container/run.sh [repository root]
# Environment: SLUICE_TEST_IMAGE=TAG reuses a built image instead of building one;
# SLUICE_TEST_IMAGE_TAG (default localhost/sluice:test) names the image it builds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${1:-$here/../..}" && pwd)"
# shellcheck source=SCRIPTDIR/../../scripts/lib/throwaway.sh
source "$root/scripts/lib/throwaway.sh"

step() { echo "== $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

for tool in podman kubectl redis-cli psql curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is missing (podman: run ../shared/tools/container-setup.sh)"
done
[ "$(id -u)" -eq 0 ] || fail "run as root (rootful podman, PostgreSQL as the postgres user)"

run_id="ct$$"
scratch="$(mktemp -d /tmp/sluice-container-XXXXXX)"
containers=()
kube_file=""
server_pids=()
stream_pids=()
cleanup() {
  local status=$?
  set +e
  for pid in "${stream_pids[@]}"; do kill "$pid" 2>/dev/null; done
  if [ -n "$kube_file" ]; then podman kube down "$kube_file" >/dev/null 2>&1; fi
  # A pod whose start failed, and the podman secrets made from the Secrets, outlive kube down.
  podman pod ls --format '{{.Name}}' | grep -- "-$run_id-pod-" | xargs -r podman pod rm -f >/dev/null 2>&1
  podman secret ls --format '{{.Name}}' | grep -- "-$run_id\$" | xargs -r podman secret rm >/dev/null 2>&1
  for container in "${containers[@]}"; do podman rm -f -t 2 "$container" >/dev/null 2>&1; done
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null; done
  stop_postgres "$scratch"
  wait 2>/dev/null
  rm -rf "$scratch"
  if [ "$status" -eq 0 ]; then
    echo "PASS: sluice_container_image (image $image: all-in-one, split tiers, podman kube play)"
  else
    echo "FAIL: sluice_container_image (exit $status)"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Every loopback port the test needs, distinct (all bound at once, then released).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))
PY
}
read -r redis_port pg_port port admin_port broker_port auth_port broker_admin auth_admin gateway_port \
  gateway_admin kube_gateway kube_broker kube_auth kube_gateway_admin kube_broker_admin kube_auth_admin \
  <<<"$(free_ports 16)"
[ -n "$kube_auth_admin" ] || fail "cannot find free ports"

# --- 1. the image -----------------------------------------------------------------
if [ -n "${SLUICE_TEST_IMAGE:-}" ]; then
  image="$SLUICE_TEST_IMAGE"
  step "reusing image $image"
  podman image exists "$image" || fail "image $image does not exist"
else
  image="${SLUICE_TEST_IMAGE_TAG:-localhost/sluice:test}"
  step "building image $image"
  started=$SECONDS
  "$root/scripts/build-image.sh" "$image" || fail "the image build failed"
  echo "image built in $((SECONDS - started)) s"
fi
case "$image" in */*) ;; *) image="localhost/$image" ;; esac

user="$(podman image inspect --format '{{.Config.User}}' "$image")"
[ "$user" = "991:991" ] || fail "image user is '$user', expected 991:991"
# A drop-in for Mastodon's streaming image, which listens on 0.0.0.0:4000 unless told
# otherwise: a container listening on its own loopback serves nobody.
image_env="$(podman image inspect --format '{{range .Config.Env}}{{.}} {{end}}' "$image")"
for setting in BIND=0.0.0.0 PORT=4000 NODE_ENV=production; do
  case " $image_env " in *" $setting "*) ;; *) fail "the image does not set $setting (its environment: $image_env)" ;; esac
done
uid="$(podman run --rm --network=host --entrypoint /usr/bin/id "$image" -u)"
[ "$uid" = "991" ] || fail "a container runs as uid $uid, expected 991"
for binary in sluice sluice-gateway sluice-broker sluice-auth; do
  podman run --rm --network=host --entrypoint /bin/sh "$image" -c \
    "test -x /usr/local/bin/$binary && ! ldd /usr/local/bin/$binary | grep 'not found'" \
    || fail "/usr/local/bin/$binary is missing or has unresolved libraries"
done
base_size="$(podman image inspect --format '{{.Size}}' docker.io/library/debian:12-slim 2>/dev/null || echo 0)"
image_size="$(podman image inspect --format '{{.Size}}' "$image")"
echo "image $image: $image_size bytes, user $user; over debian:12-slim ($base_size bytes): $(((image_size - base_size) / 1048576)) MiB"

# --- 2. Redis and PostgreSQL --------------------------------------------------------
step "throwaway Redis on 127.0.0.1:$redis_port and PostgreSQL on 127.0.0.1:$pg_port"
start_redis "$scratch" "$redis_port"
server_pids+=($!)
wait_for_port "$redis_port" Redis || fail "Redis did not start"
start_postgres "$scratch" "$pg_port" mastodon_production || fail "PostgreSQL did not start"
server_pids+=("$postgres_wrapper_pid")
token="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# The k8s overlay connects as the role `mastodon` (DB_USER); the containers below as postgres.
psql -h 127.0.0.1 -p "$pg_port" -U postgres -d mastodon_production -q -v ON_ERROR_STOP=1 >/dev/null <<SQL \
  || fail "cannot create the test account"
CREATE ROLE mastodon LOGIN SUPERUSER;
INSERT INTO accounts (id, username) VALUES (1, 'container');
INSERT INTO users (id, email, account_id) VALUES (1, 'container@localhost', 1);
INSERT INTO oauth_access_tokens (token, scopes, resource_owner_id) VALUES ('$token', 'read write follow', 1);
SQL
redis_url="redis://127.0.0.1:$redis_port"
database_url="postgres://postgres@127.0.0.1:$pg_port/mastodon_production"

# --- helpers ------------------------------------------------------------------------
show_logs() {
  local container
  for container in "$@"; do
    echo "--- podman logs $container (last 40 lines)" >&2
    podman logs --tail 40 "$container" >&2 2>&1 || true
  done
}

# wait_http URL WHAT [CONTAINERS...]: 200 within 60 s.
wait_http() {
  local url="$1" what="$2"
  shift 2
  for _ in $(seq 1 300); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url")" = "200" ]; then return 0; fi
    sleep 0.2
  done
  show_logs "$@"
  fail "$what: $url did not answer 200 within 60 s"
}

# check_uid CONTAINER: its main process runs as uid 991 on the host.
check_uid() {
  local pid uid
  pid="$(podman inspect --format '{{.State.Pid}}' "$1")"
  if [ -z "$pid" ] || [ "$pid" = "0" ]; then fail "container $1 is not running"; fi
  uid="$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")"
  [ "$uid" = "991" ] || fail "container $1 runs as uid $uid, expected 991"
}

# sse_event PORT WHAT [CONTAINERS...]: opens /api/v1/streaming/public with the token,
# waits until the broker subscribed timeline:public in Redis, PUBLISHes a delete and
# expects exactly `event: delete` / `data: <id>` once on the stream.
sse_event() {
  local port="$1" what="$2"
  shift 2
  local out="$scratch/sse-$port.txt" id="$((RANDOM * 32768 + RANDOM))$port" pid subscribers
  : >"$out"
  curl -sS -N --max-time 60 -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$port/api/v1/streaming/public" >"$out" 2>"$out.err" &
  pid=$!
  stream_pids+=("$pid")
  for _ in $(seq 1 150); do
    subscribers="$(redis-cli -p "$redis_port" --raw PUBSUB NUMSUB timeline:public | sed -n 2p)"
    [ "${subscribers:-0}" -ge 1 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  [ "${subscribers:-0}" -ge 1 ] || {
    cat "$out" "$out.err" >&2
    show_logs "$@"
    fail "$what: nothing subscribed timeline:public after the SSE request"
  }
  # The event, then a second one: once the second is in, a copy of the first would be
  # in too (one channel's events arrive in order).
  local marker="${id}0"
  redis-cli -p "$redis_port" PUBLISH timeline:public "{\"event\":\"delete\",\"payload\":\"$id\"}" >/dev/null
  redis-cli -p "$redis_port" PUBLISH timeline:public "{\"event\":\"delete\",\"payload\":\"$marker\"}" >/dev/null
  for _ in $(seq 1 100); do
    grep -qFx "data: $marker" "$out" && break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local found
  found="$(awk -v id="$id" 'prev == "event: delete" && $0 == "data: " id {n++} {prev = $0} END {print n + 0}' "$out")"
  if [ "$found" != "1" ] || [ "$(grep -c "^data: " "$out")" != "2" ] || [ "$(grep "^data: " "$out" | tail -1)" != "data: $marker" ]; then
    echo "--- stream received:" >&2
    cat -A "$out" >&2
    cat "$out.err" >&2
    show_logs "$@"
    fail "$what: expected exactly 'event: delete' / 'data: $id', then the marker 'data: $marker', on the SSE stream"
  fi
  echo "$what: SSE delivered event: delete / data: $id"
}

# --- 3. all-in-one ------------------------------------------------------------------
allinone="sluice-allinone-$run_id"
step "all-in-one container $allinone on 127.0.0.1:$port"
containers+=("$allinone")
podman run -d --network=host --read-only --name "$allinone" \
  -e PORT="$port" -e BIND=127.0.0.1 -e LOG_LEVEL=info -e SLUICE_GATEWAY_ADMIN_LISTEN="127.0.0.1:$admin_port" \
  -e REDIS_URL="$redis_url" -e DATABASE_URL="$database_url" \
  "$image" >/dev/null || fail "cannot start the all-in-one container"
wait_http "http://127.0.0.1:$port/api/v1/streaming/health" "all-in-one health" "$allinone"
wait_http "http://127.0.0.1:$admin_port/readyz" "all-in-one readiness" "$allinone"
check_uid "$allinone"
sse_event "$port" "all-in-one" "$allinone"
podman rm -f -t 5 "$allinone" >/dev/null

# --- 4. split tiers -----------------------------------------------------------------
internal_token="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
broker="sluice-broker-$run_id" auth="sluice-auth-$run_id" gateway="sluice-gateway-$run_id"
step "split tiers: $broker (:$broker_port), $auth (:$auth_port), $gateway (:$gateway_port)"
common=(-d --network=host --read-only -e LOG_LEVEL=info -e SLUICE_INTERNAL_TOKEN="$internal_token")
containers+=("$broker")
podman run "${common[@]}" --name "$broker" \
  -e REDIS_URL="$redis_url" -e SLUICE_BROKER_LISTEN="127.0.0.1:$broker_port" \
  -e SLUICE_BROKER_ADMIN_LISTEN="127.0.0.1:$broker_admin" \
  "$image" /usr/local/bin/sluice-broker >/dev/null || fail "cannot start $broker"
containers+=("$auth")
podman run "${common[@]}" --name "$auth" \
  -e DATABASE_URL="$database_url" -e SLUICE_AUTH_LISTEN="127.0.0.1:$auth_port" \
  -e SLUICE_AUTH_ADMIN_LISTEN="127.0.0.1:$auth_admin" -e SLUICE_BROKER_ADDR="127.0.0.1:$broker_port" \
  "$image" /usr/local/bin/sluice-auth >/dev/null || fail "cannot start $auth"
containers+=("$gateway")
podman run "${common[@]}" --name "$gateway" \
  -e PORT="$gateway_port" -e BIND=127.0.0.1 -e SLUICE_GATEWAY_ADMIN_LISTEN="127.0.0.1:$gateway_admin" \
  -e SLUICE_BROKER_ADDR="127.0.0.1:$broker_port" -e SLUICE_AUTH_ADDR="127.0.0.1:$auth_port" \
  "$image" /usr/local/bin/sluice-gateway >/dev/null || fail "cannot start $gateway"
wait_http "http://127.0.0.1:$broker_admin/healthz" "broker admin" "$broker"
wait_http "http://127.0.0.1:$auth_admin/healthz" "auth admin" "$auth"
wait_http "http://127.0.0.1:$gateway_port/api/v1/streaming/health" "gateway health" "$gateway"
wait_http "http://127.0.0.1:$gateway_admin/readyz" "gateway readiness" "$gateway" "$broker"
for container in "$broker" "$auth" "$gateway"; do check_uid "$container"; done
sse_event "$gateway_port" "split tiers" "$gateway" "$auth" "$broker"
podman rm -f -t 5 "$gateway" "$auth" "$broker" >/dev/null

# --- 5. podman kube play of k8s/overlays/test-loopback -------------------------------
kube_file="$scratch/sluice-kube.yaml"
step "podman kube play of k8s/overlays/test-loopback (gateway :$kube_gateway, broker :$kube_broker, auth :$kube_auth)"
kubectl kustomize "$root/k8s/overlays/test-loopback" >"$scratch/rendered.yaml" || fail "kubectl kustomize failed"
# Services are not emulated and every pod shares the host's network: the overlay's
# fixed ports become free ones, its image the one under test, and every object name
# gets a suffix so that concurrent runs do not collide. podman refuses port mappings
# on the host network, so the containers' `ports` go (with host networking they only
# document what the process listens on) and probes name their port by number.
# Secrets become podman secrets created here, in the JSON form (key: base64 value)
# that secretKeyRef reads: podman 4.3 stores a played Secret as YAML, then cannot
# read it back ("secret ... is not valid JSON").
python3 - "$scratch/rendered.yaml" "$kube_file" "$image" "$run_id" \
  4000="$kube_gateway" 50051="$kube_broker" 50052="$kube_auth" 9090="$kube_gateway_admin" \
  9091="$kube_broker_admin" 9092="$kube_auth_admin" 5432="$pg_port" 6379="$redis_port" <<'PY' \
  || fail "cannot rewrite the rendered manifests"
import json, re, sys
import yaml
source, target, image, run_id, *pairs = sys.argv[1:]
text = open(source).read()
for pair in pairs:
    old, new = pair.split("=")
    text, count = re.subn(r"(?<![0-9A-Za-z])%s(?![0-9A-Za-z])" % old, new, text)
    if count == 0:
        sys.exit("port %s does not occur in the rendered overlay" % old)
text = re.sub(r"(?m)^(\s*(?:- )?name: sluice-[a-z]+(?:-[a-z0-9]{10})?)$", r"\1-" + run_id, text)
documents = [d for d in yaml.safe_load_all(text) if d]
secrets = {d["metadata"]["name"]: d.get("data") or {} for d in documents if d["kind"] == "Secret"}
documents = [d for d in documents if d["kind"] != "Secret"]
with open(target + ".secrets", "w") as out:
    for name, data in secrets.items():
        out.write("%s %s\n" % (name, json.dumps(data)))
deployments = 0
for document in documents:
    if document["kind"] != "Deployment":
        continue
    deployments += 1
    spec = document["spec"]["template"]["spec"]
    if not spec.get("hostNetwork"):
        sys.exit("%s does not use the host network" % document["metadata"]["name"])
    for container in spec["containers"]:
        container["image"] = image
        ports = {p["name"]: p["containerPort"] for p in container.pop("ports", []) if "name" in p}
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            for handler in ("httpGet", "grpc", "tcpSocket"):
                action = container.get(probe, {}).get(handler)
                if action and isinstance(action.get("port"), str):
                    action["port"] = ports[action["port"]]
if deployments != 3:
    sys.exit("expected 3 Deployments, found %d" % deployments)
with open(target, "w") as out:
    yaml.safe_dump_all(documents, out, sort_keys=False)
PY
while read -r name data; do
  printf '%s' "$data" | podman secret create "$name" - >/dev/null || fail "cannot create the podman secret $name"
done <"$kube_file.secrets"
podman kube play --network host "$kube_file" >"$scratch/kube-play.log" 2>&1 || {
  cat "$scratch/kube-play.log" >&2
  fail "podman kube play failed"
}
mapfile -t kube_containers < <(podman ps -a --format '{{.Names}}' | grep -E "^sluice-(broker|auth|gateway)-$run_id-pod-0-(broker|auth|gateway)$")
[ "${#kube_containers[@]}" -eq 3 ] || {
  podman ps -a >&2
  fail "expected 3 containers from podman kube play, found ${#kube_containers[@]}"
}
wait_http "http://127.0.0.1:$kube_broker_admin/healthz" "kube broker admin" "${kube_containers[@]}"
wait_http "http://127.0.0.1:$kube_auth_admin/healthz" "kube auth admin" "${kube_containers[@]}"
wait_http "http://127.0.0.1:$kube_gateway/api/v1/streaming/health" "kube gateway health" "${kube_containers[@]}"
wait_http "http://127.0.0.1:$kube_gateway_admin/readyz" "kube gateway readiness" "${kube_containers[@]}"
for container in "${kube_containers[@]}"; do check_uid "$container"; done
sse_event "$kube_gateway" "kube play" "${kube_containers[@]}"
# (podman without systemd logs that it has no healthcheck timers to remove.)
podman kube down "$kube_file" >"$scratch/kube-down.log" 2>&1 || {
  cat "$scratch/kube-down.log" >&2
  fail "podman kube down failed"
}
kube_file=""
if podman ps -a --format '{{.Names}}' | grep -- "-$run_id-"; then fail "containers left after podman kube down"; fi
